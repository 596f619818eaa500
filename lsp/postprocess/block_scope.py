"""A multi-line suggestion ends where the code leaves the cursor's block (a line indented less).

The model writes past the end of the function it was asked to fill (the 0.5B model invents whole
new functions): what comes after a dedent is not what the user asked for. The rule itself lives in
nearcode/shared/completion_end.py, which the daemon also applies while tokens stream.
"""

from nearcode.lsp.postprocess.base import Candidate, PostContext
from nearcode.shared.completion_end import block_end, block_indent_at


def block_scope(candidate: Candidate, ctx: PostContext) -> Candidate:
    if ctx.mode != "multi":
        return candidate
    cut = block_end(candidate.text, block_indent_at(ctx.line_prefix))
    return candidate if cut is None else candidate.cut(candidate.text[:cut].rstrip(), "block end")
