"""Post-processing: a chain of pure filters, each with golden tests in tests/postprocess/golden/."""

from __future__ import annotations

from nearcode.lsp.postprocess.base import Candidate, Filter, PostContext
from nearcode.lsp.postprocess.blank import drop_blank, trailing_whitespace
from nearcode.lsp.postprocess.block_scope import block_scope
from nearcode.lsp.postprocess.limit_lines import limit_lines
from nearcode.lsp.postprocess.repetition import repetition
from nearcode.lsp.postprocess.suffix_overlap import suffix_overlap

FILTERS: dict[str, Filter] = {
    "limit_lines": limit_lines,
    "block_scope": block_scope,
    "repetition": repetition,
    "suffix_overlap": suffix_overlap,
    "trailing_whitespace": trailing_whitespace,
    "drop_blank": drop_blank,
}

DEFAULT_CHAIN: tuple[Filter, ...] = tuple(FILTERS.values())


def postprocess(text: str, ctx: PostContext, chain: tuple[Filter, ...] = DEFAULT_CHAIN) -> Candidate:
    candidate = Candidate(text)
    for step in chain:
        candidate = step(candidate, ctx)
        if candidate.dropped:
            break
    return candidate


__all__ = ["DEFAULT_CHAIN", "FILTERS", "Candidate", "PostContext", "postprocess"]
