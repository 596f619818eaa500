"""What every language's extractor shares: the collector, one-line signatures, doc comments."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from tree_sitter import Node

from nearcode.daemon.workspace.model import DefinitionKind, DefinitionRow, ImportRow

SIGNATURE_CHARS = 300  # a signature longer than this is cut (with "...")
VALUE_CHARS = 100  # of a constant's value, what the signature keeps
COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})

_SPACES = re.compile(r"\s+")
_AFTER_OPEN = re.compile(r"([(\[]) ")
_BEFORE_CLOSE = re.compile(r" ([)\]])")
_TRAILING_COMMA = re.compile(r",([)\]])")
_CONSTANT_NAME = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


def text(node: Node | None) -> str:
    return node.text.decode("utf-8", errors="replace") if node is not None and node.text is not None else ""


def one_line(source: str, limit: int = SIGNATURE_CHARS) -> str:
    """A header spread over lines as one line: `def f(\\n    a,\\n)` -> `def f(a)`."""
    line = _SPACES.sub(" ", source).strip()
    line = _TRAILING_COMMA.sub(r"\1", _BEFORE_CLOSE.sub(r"\1", _AFTER_OPEN.sub(r"\1", line)))
    return line if len(line) <= limit else line[: limit - 4].rstrip() + " ..."


def constant_like(name: str) -> bool:
    return bool(_CONSTANT_NAME.match(name))


def doc_line(comment: str) -> str:
    """The first line of a doc comment or docstring that says something (not an @tag)."""
    for raw in comment.splitlines():
        line = raw.strip()
        for opener in ("/**", "/*!", "/*", "//!", "///", "//"):
            if line.startswith(opener):
                line = line[len(opener) :]
                break
        line = line.removesuffix("*/").strip().lstrip("*").strip()
        if line and not line.startswith("@"):
            return line
    return ""


class Collector:
    """Definitions and imports of one file, in source order, capped."""

    def __init__(self, source: bytes, max_definitions: int) -> None:
        self.source = source
        self.max_definitions = max_definitions
        self.definitions: list[DefinitionRow] = []
        self.imports: list[ImportRow] = []
        self.package = ""

    @property
    def full(self) -> bool:
        return len(self.definitions) >= self.max_definitions

    def add(
        self, name: str, kind: DefinitionKind, node: Node, signature: str, doc: str = "", scope: str = ""
    ) -> None:
        if not name or self.full:
            return
        qualified = f"{scope}.{name}" if scope else name
        # Names repeat across files (`__init__`, `get`, `id`): one copy of each in memory.
        name = sys.intern(name)
        self.definitions.append((name, qualified if scope else name, kind, node.start_point[0], signature, doc))

    def add_import(self, module: str, names: Iterable[str], alias: str, level: int, node: Node) -> None:
        self.imports.append((module, tuple(names), alias, level, node.start_point[0]))

    def header(self, node: Node, end: Node | None, start: Node | None = None, limit: int = SIGNATURE_CHARS) -> str:
        """The source from `start` (default: the node) to `end` (default: the node's end), comments
        left out, as one line."""
        start_byte = (start or node).start_byte
        end_byte = end.start_byte if end is not None else node.end_byte
        pieces, position = [], start_byte
        for comment in _comments_before(node, end_byte):
            if comment.start_byte >= position:
                pieces.append(self.source[position : comment.start_byte])
                position = comment.end_byte
        pieces.append(self.source[position:end_byte])
        return one_line(b"".join(pieces).decode("utf-8", errors="replace"), limit)

    def assignment(self, node: Node, value: Node | None, start: Node | None = None) -> str:
        """`NAME: T = value` with the value cut to its first line and VALUE_CHARS."""
        if value is None:
            return self.header(node, None, start)
        head = self.header(node, value, start)
        shown = text(value)
        first = shown.split("\n", 1)[0].rstrip()
        cut = len(first) < len(shown.rstrip()) or len(first) > VALUE_CHARS
        first = first[:VALUE_CHARS].rstrip()
        return f"{head} {first}{' ...' if cut else ''}".strip()


def _comments_before(node: Node, end_byte: int) -> list[Node]:
    """Comment nodes inside `node` that start before end_byte (a header's parameters, mostly)."""
    found: list[Node] = []
    stack = [child for child in node.children if child.start_byte < end_byte]
    while stack:
        current = stack.pop()
        if current.type in COMMENT_TYPES:
            found.append(current)
        else:
            stack.extend(child for child in current.children if child.start_byte < end_byte)
    return sorted(found, key=lambda c: c.start_byte)


def _last_row(node: Node) -> int:
    """The last line a node covers: a line comment may end at column 0 of the next line."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


def leading_doc(anchor: Node, prefixes: tuple[str, ...], skip: frozenset[str] = frozenset()) -> str:
    """The doc comment right above `anchor` (no blank line between), skipping attribute-like
    siblings (`skip`). A run of line comments reads from its first line; a block comment alone."""
    sibling = anchor.prev_named_sibling
    expected = anchor.start_point[0] - 1
    while sibling is not None and sibling.type in skip:
        expected = sibling.start_point[0] - 1
        sibling = sibling.prev_named_sibling
    top: Node | None = None
    while sibling is not None and sibling.type in COMMENT_TYPES and _last_row(sibling) == expected:
        comment = text(sibling)
        if not comment.startswith(prefixes):
            break
        top = sibling
        if comment.startswith("/*"):
            break
        expected = sibling.start_point[0] - 1
        sibling = sibling.prev_named_sibling
    return doc_line(text(top)) if top is not None else ""
