"""A multi-line suggestion ends where the code leaves the cursor's block (a line indented less).

The model writes past the end of the function it was asked to fill (the 0.5B model invents whole
new functions): what comes after a dedent is not what the user asked for.
"""

from nearcode.lsp.postprocess.base import Candidate, PostContext, indentation


def block_scope(candidate: Candidate, ctx: PostContext) -> Candidate:
    if ctx.mode != "multi":
        return candidate
    line_prefix = ctx.line_prefix
    block_indent = len(line_prefix) if not line_prefix.strip() else indentation(line_prefix)
    lines = candidate.text.split("\n")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() and indentation(line) < block_indent:
            return candidate.cut("\n".join(lines[:i]).rstrip(), "block end")
    return candidate
