"""Turning an LSP (uri, position) into the text around the cursor, with clear errors for bad input."""

from __future__ import annotations

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import to_fs_path
from pygls.workspace import Workspace

from nearcode.lsp.completion import CursorText, cursor_text
from nearcode.shared.languages import language_for_path

MAX_DOCUMENT_CHARS = 20_000_000  # beyond this nothing is offered: nobody edits such a file by hand


def cursor_at(workspace: Workspace, uri: str, position: types.Position) -> CursorText:
    if uri not in workspace.text_documents:
        raise JsonRpcInvalidParams(f"nearcode: document {uri} is not open (send textDocument/didOpen first)")
    document = workspace.get_text_document(uri)
    source = document.source
    if len(source) > MAX_DOCUMENT_CHARS:
        raise JsonRpcInvalidParams(f"nearcode: document {uri} is too large to complete ({len(source)} characters)")
    lines = document.lines
    if position.line < 0 or position.character < 0 or position.line > len(lines) or (
        position.line == len(lines) and position.character > 0
    ):
        raise JsonRpcInvalidParams(
            f"nearcode: position {position.line}:{position.character} is outside the document "
            f"({len(lines)} lines)"
        )
    # LSP: a character past the end of its line means the end of the line.
    offset = document.offset_at_position(position)
    path = to_fs_path(uri) or uri
    language = document.language_id or language_for_path(path)
    return cursor_text(source, offset, uri, path, language)


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
