"""Small models loop: a line that repeats the line before it ends the suggestion there, and a
suggestion whose first line repeats the line just above the cursor is dropped."""

from nearcode.lsp.postprocess.base import Candidate, PostContext

_MIN_REPEAT_CHARS = 4  # shorter lines (`}`, `end`, `pass`) legitimately repeat


def repetition(candidate: Candidate, ctx: PostContext) -> Candidate:
    lines = candidate.text.split("\n")
    previous = [line for line in ctx.prefix.split("\n")[:-1] if line.strip()]
    first = (ctx.line_prefix + lines[0]).strip()
    if previous and len(first) >= _MIN_REPEAT_CHARS and first == previous[-1].strip():
        return candidate.drop("repeats the previous line")
    for i in range(1, len(lines)):
        line = lines[i].strip()
        if len(line) >= _MIN_REPEAT_CHARS and line == lines[i - 1].strip():
            return candidate.cut("\n".join(lines[:i]), "repetition")
    return candidate
