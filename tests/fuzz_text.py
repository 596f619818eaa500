"""The fuzzer's text: random document pieces, its own copy of each document under LSP's rules, and
malformed frames. The rules are implemented here on their own (a character loop for lines, Python's
UTF-16 codec for columns), not with nearcode/shared/text.py, so a shared mistake cannot hide.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

PIECES = [
    "def f(x):", "return x", "    ", "\t", "if a:", "y = 1", "(", ")", "[", "]", "{", "}", ":", ",", "'", '"',
    "#", " ", "  ", "é", "中文", "ß", "λ", "😀", "𝔘", "👍🏽", "\n", "\n", "\n", "\r\n", "\r",  # line breaks
    "\x0c", "\x85", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x0b",  # str.splitlines breaks, LSP does not
]
LONE_SURROGATE = "\ud800"


def random_text(rng: random.Random, max_pieces: int) -> str:
    pieces = [rng.choice(PIECES) for _ in range(rng.randint(0, max_pieces))]
    if pieces and rng.random() < 0.02:
        pieces.insert(rng.randrange(len(pieces)), LONE_SURROGATE)  # invalid, but JSON can carry it
    return "".join(pieces)


def lines_of(text: str) -> list[tuple[int, int]]:
    """(start, end of content) of each LSP line: breaks at \\n, \\r\\n and \\r only."""
    lines, start, i = [], 0, 0
    while i < len(text):
        char = text[i]
        if char in "\r\n":
            lines.append((start, i))
            i += 2 if text[i : i + 2] == "\r\n" else 1
            start = i
        else:
            i += 1
    lines.append((start, len(text)))
    return lines


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def code_points_in(text: str, units: int) -> int:
    """How many code points the first `units` UTF-16 units of `text` hold (units on a boundary)."""
    return len(text.encode("utf-16-le", "surrogatepass")[: 2 * units].decode("utf-16-le", "surrogatepass"))


@dataclass
class Mirror:
    """The fuzzer's own copy of one open document."""

    uri: str
    language: str
    text: str
    version: int

    def offset(self, position: dict[str, int]) -> int:
        """Where an edit at `position` applies: a column past the line's end means its end, a line
        past the last means the end of the document (as editors clamp)."""
        lines = lines_of(self.text)
        if position["line"] >= len(lines):
            return len(self.text)
        start, end = lines[position["line"]]
        content = self.text[start:end]
        return start + code_points_in(content, min(position["character"], utf16_units(content)))

    def random_position(self, rng: random.Random) -> tuple[int, int]:
        """A real place: a line, and a column on a character boundary (sometimes past the end)."""
        lines = lines_of(self.text)
        line = rng.randrange(len(lines))
        start, end = lines[line]
        content = self.text[start:end]
        column = utf16_units(content[: rng.randint(0, len(content))])
        if rng.random() < 0.1:
            column = utf16_units(content) + rng.randint(1, 40)  # past the end: the end of the line
        return line, column

    def random_range(self, rng: random.Random) -> tuple[dict[str, int], dict[str, int]]:
        a, b = ({"line": line, "character": column} for line, column in (self.random_position(rng), self.random_position(rng)))
        if rng.random() < 0.5:
            b = a  # an insertion
        return (a, b) if self.offset(a) <= self.offset(b) else (b, a)

    def invalid_position(self, rng: random.Random) -> dict[str, Any]:
        lines = lines_of(self.text)
        inside_pair = [
            (n, utf16_units(self.text[s : s + k]) + 1)
            for n, (s, e) in enumerate(lines) for k in range(e - s) if ord(self.text[s + k]) > 0xFFFF
        ]
        choices: list[dict[str, Any]] = [
            {"line": len(lines) + rng.randint(0, 5), "character": 0},  # past the last line
            {"line": len(lines) - 1 + rng.randint(1, 3), "character": rng.randint(1, 9)},
        ]
        if inside_pair:
            line, column = rng.choice(inside_pair)
            choices.append({"line": line, "character": column})  # between the halves of a pair
        return rng.choice(choices)

    def apply(self, start: dict[str, int], end: dict[str, int], text: str) -> None:
        a, b = self.offset(start), self.offset(end)
        self.text = self.text[:a] + text + self.text[b:]

    def has_lone_surrogate(self) -> bool:
        return any(0xD800 <= ord(char) <= 0xDFFF for char in self.text)


# (name, frame body with $ID for a fresh request id, whether the server must answer that id)
MALFORMED: list[tuple[str, bytes, bool]] = [
    ("truncated", b'{"jsonrpc": "2.0", "id": $ID, "method": "textDocument/inlineCompletion", "params": {', False),
    ("not json", b"this is not json", False),
    ("array", b"[1, 2, 3]", False),
    ("number", b"42", False),
    ("null", b"null", False),
    ("empty object", b"{}", False),
    ("no method", b'{"jsonrpc": "2.0", "id": $ID}', False),
    ("old version", b'{"jsonrpc": "1.0", "id": $ID, "method": "workspace/executeCommand", "params": {}}', False),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, False),
    ("bad utf-8", b'{"jsonrpc": "2.0", "method": "x", "params": "\xff\xfe"}', False),
    ("unknown method", b'{"jsonrpc": "2.0", "id": $ID, "method": "nearcode/noSuchThing", "params": {}}', True),
    ("wrong types", b'{"jsonrpc": "2.0", "id": $ID, "method": "textDocument/inlineCompletion", "params": '
     b'{"textDocument": {"uri": 7}, "position": {"line": "a", "character": null}, "context": {}}}', True),
    ("negative position", b'{"jsonrpc": "2.0", "id": $ID, "method": "textDocument/inlineCompletion", "params": '
     b'{"textDocument": {"uri": "file:///tmp/x.py"}, "position": {"line": -1, "character": -5}, '
     b'"context": {"triggerKind": 1}}}', True),
    ("missing params", b'{"jsonrpc": "2.0", "id": $ID, "method": "textDocument/codeAction"}', True),
    ("bad change", b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": '
     b'{"uri": "file:///tmp/nc-fuzz/x.py", "version": "v"}, "contentChanges": "nope"}}', False),
    ("bad open", b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": 5}}', False),
]
