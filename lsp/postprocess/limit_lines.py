"""Single-line mode keeps the first line; multi-line mode at most `max_lines` lines."""

from nearcode.lsp.postprocess.base import Candidate, PostContext


def limit_lines(candidate: Candidate, ctx: PostContext) -> Candidate:
    lines = candidate.text.split("\n")
    keep = 1 if ctx.mode == "single" else ctx.max_lines
    if len(lines) <= keep:
        return candidate
    return candidate.cut("\n".join(lines[:keep]), "line limit")
