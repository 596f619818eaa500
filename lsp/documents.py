"""The editor's documents as the editor sees them, and the checks every request's input passes.

pygls keeps documents in a Workspace of TextDocuments that split lines with `str.splitlines` (which
also breaks at form feed, \\x85, U+2028, ...) and clamp some positions to the wrong place. Here the
same objects follow LSP's rules (nearcode/shared/text.py): lines end at \\n, \\r\\n or \\r, columns
are UTF-16 units, an edit's range is clamped the way editors clamp it, and a request's position
that names no place is a clear JSON-RPC error. The server installs them at `initialize`
(lsp/rpc.py), so every handler and every pygls helper sees the editor's text.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument, Workspace

from nearcode.lsp.completion import CursorText, cursor_text
from nearcode.shared.languages import language_for_path
from nearcode.shared.protocol.daemon_api import PREFIX_WINDOW_CHARS, SUFFIX_WINDOW_CHARS
from nearcode.shared.text import (
    LineIndex,
    PositionError,
    TextPosition,
    first_lone_surrogate,
    split_lines,
)

log = logging.getLogger("nearcode.lsp")

MAX_DOCUMENT_CHARS = 20_000_000  # beyond this nothing is offered: nobody edits such a file by hand
# Code actions parse the whole document with tree-sitter (~0.2 s a megabyte here, holding the GIL
# between read callbacks); beyond this size they are not offered.
MAX_PARSE_CHARS = 2_000_000


class InvalidInput(JsonRpcInvalidParams):
    """A request whose input names nothing in the document; the message says what and why."""


class EditorDocument(TextDocument):
    """A pygls TextDocument with LSP's line breaks and UTF-16 columns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index: LineIndex | None = None

    @property
    def index(self) -> LineIndex:
        source = self.source
        if self._index is None or self._index.text is not source:
            self._index = LineIndex(source)
        return self._index

    @property
    def lines(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(split_lines(self.source))

    def apply_change(self, change: types.TextDocumentContentChangeEvent) -> None:
        super().apply_change(change)
        self._index = None

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        # Clamped, never rejected: a notification cannot be answered with an error, and an editor
        # applies an edit past a line's end at the line's end (LSP), past the last line at the end.
        index, source = self.index, self.source
        start = index.offset(_position(change.range.start), strict=False)
        end = index.offset(_position(change.range.end), strict=False)
        start, end = min(start, end), max(start, end)
        self._source = source[:start] + change.text + source[end:]

    def offset_at_position(self, client_position: types.Position) -> int:
        """Code-point offset of a position, clamped to the document as editors clamp (pygls's
        contract, for helpers that take a range's ends); requests' cursors go through `offset_at`."""
        return self.index.offset(_position(client_position), strict=False)

    def offset_at(self, position: types.Position) -> int:
        """Code-point offset of a request's position; one that names no place (negative, past the
        last line, inside a surrogate pair) is a clear invalid-params error."""
        try:
            return self.index.offset(_position(position))
        except PositionError as exc:
            raise InvalidInput(f"nearcode: {exc} in {self.uri}") from exc

    def client_position_at_offset(self, offset: int) -> types.Position:
        position = self.index.position(offset)
        return types.Position(line=position.line, character=position.character)


def _position(position: types.Position) -> TextPosition:
    return TextPosition(position.line, position.character)


class EditorWorkspace(Workspace):
    """pygls's Workspace holding EditorDocuments; a change to a document that is not open is
    logged and dropped (an editor's bookkeeping slip must not surface as a server error)."""

    @classmethod
    def adopt(cls, workspace: Workspace) -> EditorWorkspace:
        """The same workspace (root, folders, sync kind) with EditorDocuments."""
        adopted = cls(
            workspace.root_uri,
            workspace._sync_kind,
            list(workspace.folders.values()),
            workspace.position_encoding,
        )
        for uri, document in workspace.text_documents.items():
            adopted._text_documents[uri] = adopted._create_text_document(
                uri, document.source, document.version, document.language_id
            )
        return adopted

    def _create_text_document(
        self, doc_uri: str, source: str | None = None, version: int | None = None, language_id: str | None = None
    ) -> TextDocument:
        return EditorDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self._position_codec,
        )

    def update_text_document(
        self, text_doc: types.VersionedTextDocumentIdentifier, change: types.TextDocumentContentChangeEvent
    ) -> None:
        if text_doc.uri not in self.text_documents:
            log.warning("ignored a change to %s, which is not open", text_doc.uri)
            return
        super().update_text_document(text_doc, change)


def open_document(workspace: Workspace, uri: str) -> EditorDocument:
    """The open document `uri`, or a clear invalid-params error."""
    if uri not in workspace.text_documents:
        raise InvalidInput(f"nearcode: document {uri} is not open (send textDocument/didOpen first)")
    document = workspace.get_text_document(uri)
    if not isinstance(document, EditorDocument):  # only before initialize installed ours
        raise InvalidInput("nearcode: the server is not initialized")
    return document


def require_valid_unicode(document: EditorDocument, text: str, start: int, what: str) -> None:
    """Raise a clear error when `text` (the document's text from offset `start`) holds a lone
    surrogate: it is not Unicode, and neither the model nor the parser can take it."""
    found = first_lone_surrogate(text)
    if found is None:
        return
    where = document.index.position(start + found)
    char = f"U+{ord(text[found]):04X}"
    raise InvalidInput(
        f"nearcode: {document.uri} has a lone UTF-16 surrogate ({char}) at {where.line}:{where.character}, "
        f"which is not valid Unicode; {what} cannot use it. Remove or fix that character."
    )


def cursor_at(workspace: Workspace, uri: str, position: types.Position) -> CursorText:
    document = open_document(workspace, uri)
    source = document.source
    if len(source) > MAX_DOCUMENT_CHARS:
        raise InvalidInput(f"nearcode: document {uri} is too large to complete ({len(source)} characters)")
    # LSP: a character past the end of its line means the end of the line.
    offset = document.offset_at(position)
    path = to_fs_path(uri) or uri
    language = document.language_id or language_for_path(path)
    cursor = cursor_text(source, offset, uri, path, language)
    window_start = max(0, offset - PREFIX_WINDOW_CHARS)
    require_valid_unicode(document, source[window_start : offset + SUFFIX_WINDOW_CHARS], window_start, "completion")
    return cursor


def parseable_document(workspace: Workspace, uri: str) -> EditorDocument:
    """The open document `uri` if code actions may parse it: not too large, valid Unicode."""
    document = open_document(workspace, uri)
    source = document.source
    if len(source) > MAX_PARSE_CHARS:
        raise InvalidInput(
            f"nearcode: {uri} is too large for code actions ({len(source)} characters; "
            f"the limit is {MAX_PARSE_CHARS})"
        )
    require_valid_unicode(document, source, 0, "code actions")
    return document


def text_and_offset(workspace: Workspace, uri: str, position: types.Position | None) -> tuple[str, int] | None:
    """A document's text and the offset of `position` in it (its end when None), or None when the
    document is not open or the position is gone."""
    if uri not in workspace.text_documents:
        return None
    document = workspace.get_text_document(uri)
    source = document.source
    if position is None:
        return source, len(source)
    line = getattr(position, "line", None)
    character = getattr(position, "character", None)
    if isinstance(position, dict):
        line, character = position.get("line"), position.get("character")
    if not isinstance(line, int) or not isinstance(character, int) or line < 0 or line >= len(document.lines) + 1:
        return None
    return source, document.offset_at_position(types.Position(line=line, character=max(0, character)))
