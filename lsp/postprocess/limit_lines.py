"""Single-line mode keeps the first line; multi-line mode at most `max_lines` lines (the rule:
nearcode/shared/completion_end.py, also applied by the daemon while tokens stream)."""

from nearcode.lsp.postprocess.base import Candidate, PostContext
from nearcode.shared.completion_end import line_limit_end


def limit_lines(candidate: Candidate, ctx: PostContext) -> Candidate:
    cut = line_limit_end(candidate.text, 1 if ctx.mode == "single" else ctx.max_lines)
    return candidate if cut is None else candidate.cut(candidate.text[:cut], "line limit")
