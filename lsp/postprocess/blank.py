"""Trailing whitespace goes; an empty or whitespace-only suggestion is never offered."""

from nearcode.lsp.postprocess.base import Candidate, PostContext


def trailing_whitespace(candidate: Candidate, ctx: PostContext) -> Candidate:
    return candidate.cut(candidate.text.rstrip(), "trailing whitespace")


def drop_blank(candidate: Candidate, ctx: PostContext) -> Candidate:
    return candidate.drop("empty") if not candidate.text.strip() else candidate
