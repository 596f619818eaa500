"""Insight for one language server: LSP messages in, tracker events out, rows to the database.

The server's handlers call these with what they received; this module turns LSP types into the
tracker's (positions, content changes, item ids) and reads the server's open documents for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.workspace import Workspace

from nearcode.lsp.completion import CompletionOutcome, CursorText
from nearcode.lsp.insight.ranges import Change, Pos, units_for
from nearcode.lsp.insight.recorder import InsightRecorder
from nearcode.lsp.insight.store import turned_off
from nearcode.lsp.insight.tracker import InsightTracker, Offer, checkpoints_from_environment

log = logging.getLogger("nearcode.lsp")


class WorkspaceReader:
    """The tracker's view of the server's open documents."""

    def __init__(self, workspace: Callable[[], Workspace]) -> None:
        self._workspace = workspace

    def _offset(self, uri: str, pos: Pos) -> tuple[str, int] | None:
        workspace = self._workspace()
        if uri not in workspace.text_documents:
            return None
        document = workspace.get_text_document(uri)
        lines = document.lines
        if pos.line > len(lines):
            return document.source, len(document.source)
        return document.source, document.offset_at_position(types.Position(pos.line, pos.character))

    def text_from(self, uri: str, start: Pos, length: int) -> str | None:
        found = self._offset(uri, start)
        return None if found is None else found[0][found[1] : found[1] + length]

    def text_between(self, uri: str, start: Pos, end: Pos) -> str | None:
        first, last = self._offset(uri, start), self._offset(uri, end)
        return None if first is None or last is None else first[0][first[1] : last[1]]


def item_id(item: Any) -> str | None:
    """The id in an InlineCompletionItem's accept command (dicts or lsprotocol objects)."""
    command = item.get("command") if isinstance(item, dict) else getattr(item, "command", None)
    arguments = command.get("arguments") if isinstance(command, dict) else getattr(command, "arguments", None)
    if not arguments:
        return None
    first = arguments[0]
    return str(first) if isinstance(first, (str, int)) else None


def changes_of(params: types.DidChangeTextDocumentParams) -> list[Change | None]:
    out: list[Change | None] = []
    for change in params.content_changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            start, end = change.range.start, change.range.end
            out.append(Change(Pos(start.line, start.character), Pos(end.line, end.character), change.text))
        else:
            out.append(None)
    return out


class InsightSession:
    def __init__(self, workspace: Callable[[], Workspace], enabled_setting: Callable[[], bool]) -> None:
        self.recorder = InsightRecorder()
        self._enabled_setting = enabled_setting
        self.tracker = InsightTracker(
            self.recorder, WorkspaceReader(workspace), self.enabled, checkpoints_from_environment()
        )
        self._workspace = workspace

    def enabled(self) -> bool:
        return self._enabled_setting() and not self.recorder.failed and not turned_off()

    def use_position_encoding(self, encoding: str | None) -> None:
        self.tracker.units = units_for(encoding)

    def offered(
        self, position: types.Position, cursor: CursorText, outcome: CompletionOutcome, invoked: bool,
        engine: str, model: str,
    ) -> None:
        self._guard(self.tracker.offered, Offer(
            completion_id=outcome.completion_id, uri=cursor.uri, position=Pos(position.line, position.character),
            texts=[outcome.text, *outcome.alternatives], after=cursor.suffix, language=cursor.language,
            engine=engine, model=model, source=outcome.source, invoked=invoked, latency_ms=outcome.latency_ms,
        ))

    def shown(self, item: Any) -> None:
        if (ident := item_id(item)) is not None:
            self._guard(self.tracker.shown, ident)

    def partially_accepted(self, item: Any, accepted_length: int, kind: str) -> None:
        if (ident := item_id(item)) is not None:
            self._guard(self.tracker.partially_accepted, ident, accepted_length, kind)

    def accepted(self, completion_id: Any) -> None:
        if isinstance(completion_id, (str, int)):
            self._guard(self.tracker.accepted, str(completion_id))

    def changed(self, params: types.DidChangeTextDocumentParams) -> None:
        self._guard(self.tracker.changed, params.text_document.uri, changes_of(params))

    def closed(self, uri: str) -> None:
        self._guard(self.tracker.closed, uri)

    def close(self) -> None:
        self._guard(self.tracker.close)
        self.recorder.flush()
        self.recorder.close()

    def _guard(self, method: Callable[..., None], *args: Any) -> None:
        # Statistics must never break completion: a bug here is logged, not raised to the editor.
        try:
            method(*args)
        except Exception:
            log.exception("insight: %s failed", getattr(method, "__name__", method))

