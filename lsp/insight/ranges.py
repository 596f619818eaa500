"""Where a piece of text is after the edits that came since: positions through LSP content changes.

Accepted text is followed through later edits (like Cody's persistence tracker) without keeping a
copy of the document: each `didChange` range moves the tracked start and end. Text inserted right
before the tracked range pushes it along; text inserted right after it stays outside; an edit
inside or across it becomes part of it (so a rewrite shows as a large edit distance later).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Code units of a text in the client's position encoding (LSP default UTF-16).
Units = Callable[[str], int]
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def units_for(encoding: str | None) -> Units:
    if encoding == "utf-8":
        return lambda text: len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len
    return utf16_units


@dataclass(frozen=True, order=True)
class Pos:
    line: int
    character: int


@dataclass(frozen=True)
class Change:
    """One incremental content change: `text` replaced [start, end)."""

    start: Pos
    end: Pos
    text: str


def advance(start: Pos, text: str, units: Units = utf16_units) -> Pos:
    """Where `text` ends when written at `start`."""
    lines = _LINE_BREAK.split(text)
    if len(lines) == 1:
        return Pos(start.line, start.character + units(text))
    return Pos(start.line + len(lines) - 1, units(lines[-1]))


def map_position(pos: Pos, change: Change, is_end: bool, units: Units = utf16_units) -> Pos:
    """`pos` after `change`; `is_end` for a range's end (insertions exactly there stay outside)."""
    if pos < change.start or (is_end and pos == change.start == change.end):
        return pos
    new_end = advance(change.start, change.text, units)
    if pos >= change.end:
        if pos.line == change.end.line:
            return Pos(new_end.line, new_end.character + pos.character - change.end.character)
        return Pos(pos.line + new_end.line - change.end.line, pos.character)
    return new_end if is_end else change.start  # inside the replaced text


def map_anchor(pos: Pos, change: Change, units: Units = utf16_units) -> Pos:
    """Where something that starts at `pos` and grows from there (a suggestion being typed or
    accepted) starts after `change`: edits at or after it are its own, edits before move it."""
    return pos if change.start >= pos else map_position(pos, change, False, units)


@dataclass
class TrackedRange:
    start: Pos
    end: Pos

    def apply(self, change: Change, units: Units = utf16_units) -> None:
        self.start = map_position(self.start, change, False, units)
        self.end = max(self.start, map_position(self.end, change, True, units))
