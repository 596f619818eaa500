"""Several suggestions for one place: which of the model's choices are worth showing.

A sampled alternative is often the greedy answer again, or the same code with other spacing or a
one-character change: cycling to it shows the user nothing new. Kept: the first of each group of
texts that differ by more than NEAR_DUPLICATE after whitespace is normalized (Copilot's and
Tabby's cycling dedupe the same way).
"""

from __future__ import annotations

import re

from nearcode.lsp.edit_distance import difference

MAX_CHOICES = 3
NEAR_DUPLICATE = 0.15  # at most this normalized edit distance: the same suggestion
_SPACE = re.compile(r"\s+")


def alternative_id(completion_id: str, index: int) -> str:
    """The id of choice `index` of a completion (the first keeps the completion's own id)."""
    return completion_id if index == 0 else f"{completion_id}~{index}"


def completion_of(item_id: str) -> tuple[str, int]:
    """The completion id and choice index an item id stands for."""
    base, _, index = item_id.partition("~")
    return base, int(index) if index.isdigit() else 0


def normalized(text: str) -> str:
    """Whitespace runs as one space, none at either end: spacing alone makes no new suggestion."""
    return _SPACE.sub(" ", text).strip()


def distinct(texts: list[str]) -> list[str]:
    """`texts` without empty ones, exact duplicates and near-duplicates of an earlier one, in order."""
    kept: list[str] = []
    seen: list[str] = []
    for text in texts:
        key = normalized(text)
        if not key or any(difference(key, other) <= NEAR_DUPLICATE for other in seen):
            continue
        kept.append(text)
        seen.append(key)
    return kept[:MAX_CHOICES]
