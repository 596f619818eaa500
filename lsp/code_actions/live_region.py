"""Lines of a document the server rewrites while text streams in, following the user's edits.

The user keeps typing while a docstring streams (the stream even pauses for their keystrokes), so
the region is never addressed by line numbers fixed at the start:

- Every edit carries the document version it was computed for (a `TextDocumentEdit`): a client
  that has moved on refuses it, and the region tries again on the newer text.
- Every change the client reports (`textDocument/didChange`, replayed one content change at a
  time) moves the region: a change above shifts it, a change below leaves it, a change inside it
  (the user typed into the docstring) stops the region for good: it never writes over lines the
  user changed, not even to restore them.
- An edit counts as applied only when the document is seen to hold it (its echo in didChange),
  not when the client says so: Neovim 0.11 answers `applied: true` for a versioned edit it skipped
  as stale.
- `restore()` puts back exactly the lines the region replaced, wherever they are by then, after a
  failure, a cancel, a daemon that died, or an answer not worth offering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.workspace import TextDocument

if TYPE_CHECKING:
    from nearcode.lsp.code_actions.streaming import ActionContext

log = logging.getLogger("nearcode.lsp")

EDIT_INTERVAL_S = 0.25  # at most four streamed edits a second
ECHO_WAIT_S = 2.0  # how long an applied edit may take to show up in didChange
MAX_ATTEMPTS = 20  # tries for one edit while the user keeps typing
QUIET_S = 0.15  # a retry waits for this long without a change


def _lines(text: str) -> list[str]:
    return text.split("\n")


def follow(before: list[str], after: list[str], start: int, count: int) -> int | None:
    """Where lines [start, start + count) of `before` are in `after`, or None if the change
    between the two touched them. The change is the span between the longest common prefix and
    suffix of lines; the result is checked against the region's own lines, so an ambiguous
    span (a blank line typed among blank lines) can only ever be resolved right or refused."""
    limit = min(len(before), len(after))
    prefix = 0
    while prefix < limit and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    old_end, new_end = len(before) - suffix, len(after) - suffix
    if old_end <= start:
        moved = start + (new_end - old_end)  # the change is above (or right at) the region
    elif prefix >= start + count:
        moved = start  # below
    else:
        return None  # inside
    if after[moved : moved + count] != before[start : start + count]:
        return None
    return moved


@dataclass
class _Pending:
    text: str
    expected: str  # the document's text once the client has applied the edit
    version: int | None
    echoed: asyncio.Event = field(default_factory=asyncio.Event)


class DocumentWatchers:
    """Replays each didChange, one content change at a time, to the regions of that document."""

    def __init__(self) -> None:
        self._regions: dict[str, list[LiveRegion]] = {}
        self._shadows: dict[str, TextDocument] = {}

    def add(self, region: LiveRegion, document: TextDocument) -> None:
        if region.uri not in self._shadows:
            self._shadows[region.uri] = TextDocument(
                region.uri, document.source, document.version, position_codec=document.position_codec
            )
        self._regions.setdefault(region.uri, []).append(region)

    def remove(self, region: LiveRegion) -> None:
        regions = self._regions.get(region.uri, [])
        if region in regions:
            regions.remove(region)
        if not regions:
            self._regions.pop(region.uri, None)
            self._shadows.pop(region.uri, None)

    def changed(self, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        shadow = self._shadows.get(uri)
        if shadow is None:
            return
        for change in params.content_changes:
            before = shadow.source
            shadow.apply_change(change)
            after = shadow.source
            for region in list(self._regions.get(uri, [])):
                region.on_change(before, after)
        shadow.version = params.text_document.version
        for region in list(self._regions.get(uri, [])):
            region.version_seen(params.text_document.version)


class LiveRegion:
    """Whole lines [start_line, start_line + line_count) that stream edits replace."""

    def __init__(self, context: ActionContext, uri: str, start_line: int, end_line: int, original: str,
                 on_conflict: Callable[[], Any] | None = None) -> None:  # fmt: skip
        self.context = context
        self.uri = uri
        self.start_line = start_line
        self.line_count = end_line - start_line  # lines currently ours, initially the replaced ones
        self.original = original  # the text of those lines, to put back
        self.shown = original
        self.edits_applied = 0
        self.failed = False  # the client refuses edits: stop trying
        self.conflict = ""  # why the region stopped: the user changed its lines
        self.on_conflict = on_conflict
        self._last = 0.0
        self._pending: _Pending | None = None
        self._changed = asyncio.Event()
        self._last_change = 0.0
        self._busy: asyncio.Task[bool] | None = None
        document = context.ls.workspace.get_text_document(uri)
        context.watchers.add(self, document)

    def close(self) -> None:
        self.context.watchers.remove(self)

    # ------------------------------------------------------------ following the document

    def on_change(self, before: str, after: str) -> None:
        """One content change of the document, ours or the user's."""
        self._last_change = time.monotonic()
        self._changed.set()
        pending = self._pending
        if pending is not None and not pending.echoed.is_set() and after == pending.expected:
            self.line_count = pending.text.count("\n")
            self.shown = pending.text
            pending.echoed.set()
            return
        if self.conflict:
            return
        moved = follow(_lines(before), _lines(after), self.start_line, self.line_count)
        if moved is None:
            self.conflict = "you edited the lines being written, so they were left as you made them"
            log.info("live region of %s stopped: the user edited it", self.uri)
            if pending is not None:
                pending.echoed.set()  # wake the waiting edit: it will see the conflict
            if self.on_conflict is not None:
                self.on_conflict()
            return
        self.start_line = moved
        if pending is not None and not pending.echoed.is_set():
            # Our edit, if the client still applies it, lands on this newer text: it cannot match.
            pending.echoed.set()

    def version_seen(self, version: int) -> None:
        self._changed.set()

    # ------------------------------------------------------------ writing

    def _edit(self, text: str, version: int | None) -> types.WorkspaceEdit:
        start = types.Position(line=self.start_line, character=0)
        end = types.Position(line=self.start_line + self.line_count, character=0)
        text_edit = types.TextEdit(range=types.Range(start=start, end=end), new_text=text)
        if self._versioned:
            document = types.OptionalVersionedTextDocumentIdentifier(uri=self.uri, version=version)
            return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=document, edits=[text_edit])])
        return types.WorkspaceEdit(changes={self.uri: [text_edit]})

    @property
    def _versioned(self) -> bool:
        workspace = self.context.ls.client_capabilities.workspace
        edit = workspace.workspace_edit if workspace else None
        return bool(edit and edit.document_changes)

    async def show(self, text: str, final: bool = False) -> bool:
        """Put `text` (ending with a newline) in the region; throttled unless final. Final edits
        (and restore) are retried while the user types; streamed ones are skipped instead."""
        if self._busy is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._busy)  # one edit at a time: each starts from the last
        if self.failed or self.conflict:
            return False
        if text == self.shown:
            return True
        now = time.monotonic()
        if not final and now - self._last < EDIT_INTERVAL_S:
            return True
        self._last = now
        # Shielded: if the command is cancelled while the client applies the edit, the region
        # still learns what the document now holds, so restore() can take it back.
        self._busy = asyncio.ensure_future(self._write(text, MAX_ATTEMPTS if final else 2))
        return await asyncio.shield(self._busy)

    async def _write(self, text: str, attempts: int) -> bool:
        for _ in range(attempts):
            if self.conflict or self.failed:
                return False
            if text == self.shown:
                return True
            result = await self._attempt(text)
            if result is not None:
                return result
            await self._quiet()
        return False

    async def _attempt(self, text: str) -> bool | None:
        """True: applied and seen; False: refused for good; None: try again on newer text."""
        document = self.context.ls.workspace.get_text_document(self.uri)
        lines = _lines(document.source)
        expected = "\n".join([*lines[: self.start_line], *_lines(text)[:-1], *lines[self.start_line + self.line_count :]])
        pending = self._pending = _Pending(text, expected, document.version)
        self._changed.clear()
        try:
            result = await self.context.ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=self._edit(text, document.version), label="nearcode")
            )
        except Exception:
            log.warning("the client failed to apply an edit", exc_info=True)
            self.failed = True
            return False
        try:
            if result.applied:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pending.echoed.wait(), ECHO_WAIT_S)
            if self.shown == text and pending.echoed.is_set():
                self.edits_applied += 1
                return True
            if self.conflict:
                return False
            if not result.applied and document.version == self.context.ls.workspace.get_text_document(self.uri).version:
                # Refused, and not because the user moved on: wait once for a change, then give up.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), ECHO_WAIT_S)
                if not self._changed.is_set():
                    self.failed = True
                    return False
            return None
        finally:
            if self._pending is pending:
                self._pending = None

    async def _quiet(self) -> None:
        """Wait until the user pauses (no change for QUIET_S), at most a few seconds."""
        for _ in range(20):  # at most ~3 s
            wait = QUIET_S - (time.monotonic() - self._last_change)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def restore(self) -> bool:
        """Put back what was there before streaming began; never over lines the user changed."""
        if self._busy is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._busy)
        if self.conflict or self.failed:
            return False
        if self.shown == self.original:
            return True
        return await self.show(self.original, final=True)
