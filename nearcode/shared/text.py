"""Text the way editors see it: LSP's lines and UTF-16 positions over Python strings.

LSP ends a line at `\\n`, `\\r\\n` or `\\r` and nothing else; Python's `str.splitlines` also breaks at
form feed, `\\x1c`-`\\x1e`, `\\x85`, U+2028 and U+2029, so a document split that way has more lines
than the editor's and every position after such a character lands on the wrong line. A position's
`character` counts UTF-16 code units: a character beyond U+FFFF is two of them, one Python code
point. A surrogate code point in a Python string never pairs (JSON's `\\ud83d\\ude00` decodes to one
code point): it is a lone surrogate, one UTF-16 unit, and not valid Unicode.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from dataclasses import dataclass

LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LONE_CR = re.compile(r"\r(?!\n)")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")


def line_starts(text: str) -> list[int]:
    """Offset (in code points) where each LSP line starts; always at least [0]."""
    if "\r" in text:
        # Same length, breaks only at \n: a lone \r becomes \n, and \r\n already ends at its \n.
        text = _LONE_CR.sub("\n", text)
    parts = text.split("\n")
    # Each line's length plus its \n, summed up: all in C, tens of milliseconds for a 5 MB file.
    starts = list(itertools.accumulate(map((1).__add__, map(len, parts)), initial=0))
    starts.pop()  # where a line after the last would start
    return starts


def split_lines(text: str) -> list[str]:
    """The document's LSP lines, each with its line break (the last one has none)."""
    starts = line_starts(text)
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def utf16_length(text: str) -> int:
    """UTF-16 code units of `text` (a lone surrogate is one unit, as in the editor's string)."""
    return len(text) + len(_ASTRAL.findall(text))


def utf16_to_index(line: str, units: int) -> int | None:
    """The code-point index of UTF-16 column `units` in `line` (no line break), clamped to the
    line's end as LSP says; None when the column falls inside a character's surrogate pair."""
    if units <= 0:
        return 0
    if not _ASTRAL.search(line):
        return min(units, len(line))
    counted = 0
    for index, char in enumerate(line):
        if counted == units:
            return index
        counted += 2 if ord(char) > 0xFFFF else 1
        if counted > units:
            return None
    return len(line)


def index_to_utf16(line: str, index: int) -> int:
    """The UTF-16 column of code-point `index` in `line`."""
    return utf16_length(line[:index])


def first_lone_surrogate(text: str) -> int | None:
    """Index of the first lone surrogate in `text`, or None when it is valid Unicode."""
    match = _SURROGATE.search(text)
    return match.start() if match else None


@dataclass(frozen=True)
class TextPosition:
    """An LSP position: line, and column in UTF-16 code units."""

    line: int
    character: int


class PositionError(ValueError):
    """A position that names no place in the document; the message says why."""


class LineIndex:
    """Line starts of one text, for converting LSP positions to offsets and back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = line_starts(text)

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line_text(self, line: int) -> str:
        """Line `line` without its line break."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n") if end > start else ""

    def offset(self, position: TextPosition, strict: bool = True) -> int:
        """Code-point offset of `position`. A column past the line's end means the end (LSP).

        strict: a negative number, a line past the last or a column inside a surrogate pair raise
        PositionError (a request's position); otherwise they are clamped to the nearest place (an
        edit's range, which must apply somewhere, as editors apply it).
        """
        line, character = position.line, position.character
        if line < 0 or character < 0:
            if strict:
                raise PositionError(f"position {line}:{character} is negative")
            line, character = max(0, line), max(0, character)
        if line >= self.line_count:
            if strict:
                raise PositionError(
                    f"position {line}:{character} is outside the document ({self.line_count} lines)"
                )
            return len(self.text)
        text = self.line_text(line)
        index = utf16_to_index(text, character)
        if index is None:
            if strict:
                raise PositionError(f"position {line}:{character} falls inside a surrogate pair")
            index = utf16_to_index(text, character - 1) or 0
        return self.starts[line] + index

    def position(self, offset: int) -> TextPosition:
        """The LSP position of code-point `offset` (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return TextPosition(line, utf16_length(self.text[self.starts[line] : offset]))


def text_digest(text: str) -> str:
    """A short stable key for a text (cache keys that must not hold the text itself); lone
    surrogates, which editors can send, hash like any other code point."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
