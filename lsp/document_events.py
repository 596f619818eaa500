"""What the editor says about its documents: opened, changed, closed, focused.

The documents themselves are pygls's (lsp/documents.py's EditorDocuments, already updated when
these run); the handlers pass the news on to the workspace sync, read-ahead, streamed edits,
insight and the coordinator. lsp/server.py registers them.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from nearcode.lsp.documents import text_and_offset
from nearcode.lsp.rpc import message_field
from nearcode.lsp.server_state import NearcodeServer


def did_open(ls: NearcodeServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    ls.workspace_sync.opened(doc.uri)  # the daemon's index sees the buffer
    ls.read_ahead.opened(doc.uri, to_fs_path(doc.uri) or doc.uri, doc.language_id, doc.text, ls.settings)


def did_change(ls: NearcodeServer, params: types.DidChangeTextDocumentParams) -> None:
    # pygls has applied the changes to its copy already.
    ls.watchers.changed(params)  # streamed docstrings move with the user's edits
    ls.workspace_sync.changed(params.text_document.uri)
    ls.insight.changed(params)  # insight follows suggestions through them


def did_close(ls: NearcodeServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.coordinator.forget(params.text_document.uri)
    ls.insight.closed(params.text_document.uri)
    ls.workspace_sync.closed(params.text_document.uri)
    ls.read_ahead.cancel(params.text_document.uri)


def did_focus(ls: NearcodeServer, params: Any) -> None:
    """An editor shows a document (and maybe where its cursor is): read its prompt's stable part ahead."""
    uri = str(message_field(message_field(params, "textDocument", {}), "uri", "") or "")
    position = message_field(params, "position")
    now = text_and_offset(ls.workspace, uri, position) if uri else None
    if now is not None:
        document = ls.workspace.get_text_document(uri)
        text, offset = now
        ls.read_ahead.opened(uri, to_fs_path(uri) or uri, document.language_id or "", text, ls.settings,
                             offset if position is not None else None)

