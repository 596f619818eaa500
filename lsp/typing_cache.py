"""Typing-through cache: suggestions keyed by where the cursor is, reusable while the user types.

A suggestion is stored under the cursor's position in the text: a hash of the text before the
cursor's line, a hash of the text after the cursor, and the line's text before the cursor. A later
request in the same place whose line prefix extends the stored one by characters the suggestion
starts with gets the rest at once; one whose line prefix is shorter (the user deleted characters)
gets the deleted characters back in front of the stored suggestion. A multi-line suggestion is also
stored under each of its later lines, as they would stand once the lines before were accepted, so
accepting a line shows the next one without a model call (Copilot and Continue cache by typed
prefix the same way).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from nearcode.shared.text import text_digest

BEFORE_LINE_WINDOW = 4_000  # characters before the cursor's line that identify the place
AFTER_CURSOR_WINDOW = 2_000
MAX_ENTRIES = 256


@dataclass(frozen=True)
class Place:
    """Where in which document: everything but the cursor line's prefix."""

    uri: str
    before_line: str  # digest
    after_cursor: str  # digest


def place_of(uri: str, prefix: str, suffix: str) -> tuple[Place, str]:
    """The Place of a cursor, and the cursor line's text before the cursor."""
    line_start = prefix.rfind("\n") + 1
    before = prefix[:line_start][-BEFORE_LINE_WINDOW:]
    return Place(uri, text_digest(before), text_digest(suffix[:AFTER_CURSOR_WINDOW])), prefix[line_start:]


@dataclass(frozen=True)
class CacheHit:
    text: str
    reason: str  # "typed through", "deleted back", "same place", "next line"


class TypingCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[Place, str], tuple[str, str]] = OrderedDict()
        self.max_entries = max_entries

    def store(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        """Remember `text` as the suggestion at this cursor, and its later lines as accepted-line results."""
        if not text.strip():
            return
        place, line_prefix = place_of(uri, prefix, suffix)
        self._put(place, line_prefix, text, "same place")
        lines = text.split("\n")
        before_full = prefix[: prefix.rfind("\n") + 1][-BEFORE_LINE_WINDOW:]
        accepted = before_full + line_prefix
        for k in range(1, len(lines)):
            accepted += lines[k - 1] + "\n"
            rest = "\n".join(lines[k:])
            if not rest.strip():
                break
            next_place = Place(uri, text_digest(accepted[-BEFORE_LINE_WINDOW:]), place.after_cursor)
            self._put(next_place, "", rest, "next line")

    def lookup(self, uri: str, prefix: str, suffix: str) -> CacheHit | None:
        place, line_prefix = place_of(uri, prefix, suffix)
        # Most recent first: the latest suggestion at this place is what the user last saw.
        for (entry_place, entry_prefix), (text, kind) in reversed(self._entries.items()):
            if entry_place != place:
                continue
            if line_prefix.startswith(entry_prefix):
                typed = line_prefix[len(entry_prefix) :]
                if text.startswith(typed) and text[len(typed) :].strip():
                    reason = kind if not typed else "typed through"
                    return CacheHit(text[len(typed) :], reason)
            elif entry_prefix.startswith(line_prefix):
                return CacheHit(entry_prefix[len(line_prefix) :] + text, "deleted back")
        return None

    def _put(self, place: Place, line_prefix: str, text: str, kind: str) -> None:
        key = (place, line_prefix)
        self._entries.pop(key, None)
        self._entries[key] = (text, kind)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
