"""Editors' unsaved buffers of one workspace, and the ring of recently edited line ranges.

Several editors may have the same file open: each one's text is kept, the most recently changed
wins, and when the last one closes it the file on disk is what counts again. Edit ranges come
from comparing a buffer's new text with its previous one (the language server sends the whole
text, debounced), so they need nothing from the editor but its text.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

EDIT_RING = 8  # ranges kept per file
MERGE_LINES = 3  # an edit this close to the last one of its file extends it


@dataclass(frozen=True, slots=True)
class EditRange:
    start: int  # 0-based, inclusive, in the buffer's current text
    end: int
    time: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class Buffer:
    text: str
    version: int
    time: float


def changed_lines(old: str, new: str) -> tuple[int, int, int] | None:
    """(first changed line, last changed line in the new text, lines added) or None if equal."""
    if old == new:
        return None
    before, after = old.split("\n"), new.split("\n")
    start, common = 0, min(len(before), len(after))
    while start < common and before[start] == after[start]:
        start += 1
    end_before, end_after = len(before) - 1, len(after) - 1
    while end_before >= start and end_after >= start and before[end_before] == after[end_after]:
        end_before -= 1
        end_after -= 1
    return start, max(start, end_after), end_after - end_before


class OpenBuffers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[str, dict[str, Buffer]] = {}  # path -> client -> buffer
        self._edits: dict[str, deque[EditRange]] = {}

    def set(self, client: str, path: str, text: str, version: int = 0) -> None:
        now = time.monotonic()
        with self._lock:
            mine = self._buffers.setdefault(path, {})
            previous = mine.get(client)
            if previous is not None:
                self._record_edit(path, previous.text, text, now)
            mine[client] = Buffer(text, version, now)

    def close(self, client: str, path: str) -> bool:
        """Forget this editor's buffer; True when no editor has the file open any more."""
        with self._lock:
            mine = self._buffers.get(path, {})
            mine.pop(client, None)
            if mine:
                return False
            self._buffers.pop(path, None)
            return True

    def drop_client(self, client: str) -> list[str]:
        """Forget every buffer of an editor that left; the paths no editor has open any more."""
        with self._lock:
            closed = []
            for path, mine in list(self._buffers.items()):
                if mine.pop(client, None) is not None and not mine:
                    del self._buffers[path]
                    closed.append(path)
            return closed

    def text(self, path: str) -> str | None:
        with self._lock:
            mine = self._buffers.get(path)
            return max(mine.values(), key=lambda b: b.time).text if mine else None

    def paths(self) -> list[str]:
        """Open files, the most recently changed first."""
        with self._lock:
            latest = {path: max(b.time for b in mine.values()) for path, mine in self._buffers.items() if mine}
        return sorted(latest, key=lambda p: latest[p], reverse=True)

    def recent_edits(self, limit: int) -> list[tuple[str, int, int, float]]:
        with self._lock:
            edits = [(path, e.start, e.end, e.time) for path, ring in self._edits.items() for e in ring]
        edits.sort(key=lambda e: e[3], reverse=True)
        return edits[:limit]

    def forget_edits(self, path: str) -> None:
        with self._lock:
            self._edits.pop(path, None)

    def _record_edit(self, path: str, old: str, new: str, now: float) -> None:
        change = changed_lines(old, new)
        if change is None:
            return
        start, end, added = change
        ring = self._edits.setdefault(path, deque(maxlen=EDIT_RING))
        old_end = end - added
        # Ranges below the edit moved with it; the one it touched grows or shrinks with it.
        shifted = [
            EditRange(e.start + added, e.end + added, e.time) if e.start > old_end
            else EditRange(e.start, max(e.start, e.end + added), e.time) if e.end >= start
            else e
            for e in ring
        ]
        ring.clear()
        ring.extend(shifted)
        last = ring[-1] if ring else None
        if last is not None and last.start - MERGE_LINES <= end and start <= last.end + MERGE_LINES:
            ring[-1] = EditRange(min(last.start, start), max(last.end, end), now)
        else:
            ring.append(EditRange(start, end, now))
