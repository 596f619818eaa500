"""Windows of the other open files and recently edited ranges that share names with the text
around the cursor (Jaccard, as Copilot and llama.vscode rank theirs), as context candidates."""

from __future__ import annotations

import time
from collections.abc import Iterator

from nearcode.daemon.context.identifiers import identifier_set, jaccard, overlap
from nearcode.daemon.context.index_api import WorkspaceIndex
from nearcode.daemon.context.lookups import Check
from nearcode.daemon.context.window import Candidate, CursorWindow

SNIPPET_LINES = 20  # open files and edits are cut into windows of this many lines
SNIPPET_STRIDE = 10
MIN_SNIPPET_SIMILARITY = 0.08
SCORE_SNIPPET = 0.9  # times the snippet's Jaccard similarity (0..1), so only close ones compete


def snippets(index: WorkspaceIndex, window: CursorWindow, around: frozenset[str], check: Check) -> Iterator[Candidate]:
    """Windows of other open files and of recently edited ranges that share names with the cursor's
    surroundings, best first."""

    def other_lines(path: str) -> list[str]:
        check()
        text = index.text(path) if path != window.path else None
        return text.split("\n") if text else []

    scored: list[Candidate] = []
    for path in index.open_buffers():
        lines = other_lines(path)
        windows = [(jaccard(identifier_set("\n".join(lines[start:start + SNIPPET_LINES])), around), start)
                   for start in range(0, max(1, len(lines) - SNIPPET_LINES // 2), SNIPPET_STRIDE)] if lines else []
        similarity, start = max(windows, key=lambda w: w[0], default=(0.0, 0))
        if similarity >= MIN_SNIPPET_SIMILARITY:
            end = min(len(lines), start + SNIPPET_LINES) - 1
            scored.append(Candidate(
                "snippet", f"snip:{path}:{start}", path, start, end, "\n".join(lines[start:end + 1]),
                SCORE_SNIPPET * similarity, f"open in the editor, {similarity:.0%} of names shared with the cursor's surroundings",
            ))
    now = time.monotonic()
    for path, first, last, when in index.recent_edits(16):
        lines = other_lines(path)
        lo, hi = max(0, first - 3), min(len(lines) - 1, last + 3)
        piece = "\n".join(lines[lo:hi + 1])
        # An edit is a few lines: the share of its names found here (Jaccard would punish its size).
        similarity = overlap(identifier_set(piece), around)
        if similarity >= MIN_SNIPPET_SIMILARITY:
            scored.append(Candidate(
                "edit", f"edit:{path}:{lo}", path, lo, hi, piece, SCORE_SNIPPET * similarity,
                f"edited {max(0, now - when):.0f} s ago, {similarity:.0%} of names shared with the cursor's surroundings",
            ))
    scored.sort(key=lambda c: -c.score)
    yield from scored
