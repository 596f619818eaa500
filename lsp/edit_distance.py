"""Levenshtein distance, and the normalized form both users of it compare with.

Two users in the language server: alternatives (lsp/alternatives.py) drop a suggestion that is
nearly the same as one already offered, and insight (lsp/insight/) measures how much of accepted
text is still there minutes later, as Cody's persistence tracker does.
"""

from __future__ import annotations

# Texts longer than this are compared by their first and last parts only: a checkpoint must never
# stall the server on a huge range (an accepted suggestion is a few lines; a range that grew past
# this was rewritten anyway).
MAX_COMPARED_CHARS = 4_000


def levenshtein(a: str, b: str) -> int:
    """Insertions, deletions and substitutions that turn `a` into `b`."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def difference(a: str, b: str) -> float:
    """Edit distance over the longer length: 0.0 same text, 1.0 nothing in common."""
    a, b = _bounded(a), _bounded(b)
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0


def _bounded(text: str) -> str:
    if len(text) <= MAX_COMPARED_CHARS:
        return text
    half = MAX_COMPARED_CHARS // 2
    return text[:half] + text[-half:]
