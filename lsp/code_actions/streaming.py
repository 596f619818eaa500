"""Streaming a generation into the editor: work-done progress with cancel, and a live text region.

`WorkProgress` is a server-initiated `window/workDoneProgress` (cancellable): the client's cancel
button cancels the task that consumes the daemon stream, which closes the stream, which stops the
engine. `LiveRegion` keeps replacing the lines it owns in the client's document with
`workspace/applyEdit` as text arrives (throttled), and can put back what was there on cancel.
Clients that cannot apply edits get a preview instead (the handlers return the final edit).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from nearcode.lsp.daemon_client import DaemonClient
from nearcode.shared.protocol.daemon_api import (
    ChatMessageIn,
    DeltaEvent,
    DoneEvent,
    GenerateRequest,
)
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")

EDIT_INTERVAL_S = 0.25  # at most four document edits a second while streaming


@dataclass
class ActionContext:
    """What a code-action command needs from the language server."""

    ls: LanguageServer
    daemon: DaemonClient
    settings: Settings
    client_id: str

    @property
    def can_apply_edits(self) -> bool:
        workspace = self.ls.client_capabilities.workspace
        return bool(workspace and workspace.apply_edit)

    @property
    def has_progress(self) -> bool:
        window = self.ls.client_capabilities.window
        return bool(window and window.work_done_progress)


class WorkProgress:
    """A cancellable progress bar in the client (a no-op for clients without progress support).

    It always ends: `async with WorkProgress(...) as progress:` ends it when the block exits
    however it exits, and inside `progress_scope()` (the server's command handlers) every one that
    began ends when the command does. A spinner must never outlive its command.
    """

    def __init__(self, context: ActionContext, title: str) -> None:
        self.context = context
        self.title = title
        self.token = f"nearcode-{uuid.uuid4().hex[:12]}"
        self.enabled = context.has_progress
        self.begun = False
        self.ended = False

    async def __aenter__(self) -> WorkProgress:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> None:
        self.end_unless_ended(error)

    def end_unless_ended(self, error: BaseException | None) -> None:
        if error is None:
            self.end("done")
        elif isinstance(error, asyncio.CancelledError):
            self.end("cancelled")
        else:
            self.end(f"failed: {error}"[:200])

    async def begin(self, message: str, on_cancel: asyncio.Task[Any] | None = None) -> None:
        if not self.enabled:
            return
        progress = self.context.ls.work_done_progress
        try:
            await progress.create_async(self.token)
        except Exception:  # a client that refuses progress still gets the result
            log.debug("client refused work-done progress", exc_info=True)
            self.enabled = False
            return
        progress.begin(self.token, types.WorkDoneProgressBegin(title=self.title, message=message, cancellable=True))
        self.begun = True
        if (scope := _open_progress.get()) is not None:
            scope.append(self)
        future = progress.tokens.get(self.token)
        if future is not None and on_cancel is not None:
            future.add_done_callback(lambda f: on_cancel.cancel() if f.cancelled() else None)

    def report(self, message: str) -> None:
        if self.enabled and self.begun and not self.ended:
            self.context.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(message=message))

    def end(self, message: str) -> None:
        if self.enabled and self.begun and not self.ended:
            self.context.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.context.ls.work_done_progress.tokens.pop(self.token, None)
        self.ended = True


_open_progress: contextvars.ContextVar[list[WorkProgress] | None] = contextvars.ContextVar(
    "nearcode_open_progress", default=None
)


@contextlib.asynccontextmanager
async def progress_scope() -> AsyncIterator[None]:
    """Ends every WorkProgress begun inside (also in tasks started inside) when the scope exits."""
    opened: list[WorkProgress] = []
    reset = _open_progress.set(opened)
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        _open_progress.reset(reset)
        for progress in opened:
            progress.end_unless_ended(error)


@dataclass
class GenerationResult:
    text: str
    finish_reason: str
    elapsed_ms: float


async def generate(
    context: ActionContext,
    messages: list[dict[str, str]],
    document: str,
    max_tokens: int,
    on_text: Any = None,
    stop: tuple[str, ...] = (),
) -> GenerationResult:
    """One background-priority instruction task; `on_text(text_so_far)` is awaited as text arrives."""
    request = GenerateRequest(
        messages=[ChatMessageIn.model_validate(message) for message in messages],
        max_tokens=max_tokens,
        temperature=0.0,
        stop=list(stop),
        deadline_ms=300_000,
        document=document,
        client=context.client_id,
        priority="background",  # never ahead of a keystroke's completion (daemon/scheduler.py)
    )
    started = time.monotonic()
    text, reason = "", "cancelled"
    async with contextlib.aclosing(context.daemon.stream_generate(request)) as events:
        async for event in events:
            if isinstance(event, DeltaEvent):
                text += event.text
                if on_text is not None:
                    await on_text(text)
            elif isinstance(event, DoneEvent):
                reason = event.finish_reason
            else:
                raise RuntimeError(f"nearcode: the daemon failed: {event.message}")
    return GenerationResult(text, reason, (time.monotonic() - started) * 1000)


class LiveRegion:
    """Whole lines of a document the server rewrites while text streams in.

    Positions are tracked from the server's own edits (not the client's didChange), so they stay
    right for clients that apply edits without echoing them back promptly.
    """

    def __init__(self, context: ActionContext, uri: str, start_line: int, end_line: int, original: str) -> None:
        self.context = context
        self.uri = uri
        self.start_line = start_line
        self.line_count = end_line - start_line  # lines currently ours, initially the replaced ones
        self.original = original  # the text of those lines, to put back on cancel
        self.shown = original
        self.edits_applied = 0
        self.failed = False
        self._last = 0.0
        self._pending: asyncio.Task[bool] | None = None

    def edit(self, text: str) -> types.TextEdit:
        """The edit that turns the region's current content into `text` (whole lines)."""
        start = types.Position(line=self.start_line, character=0)
        end = types.Position(line=self.start_line + self.line_count, character=0)
        return types.TextEdit(range=types.Range(start=start, end=end), new_text=text)

    async def show(self, text: str, final: bool = False) -> bool:
        """Put `text` (ending with a newline) in the region; throttled unless final."""
        if self._pending is not None:
            await asyncio.shield(self._pending)  # one edit at a time: each is relative to the last
        if self.failed or text == self.shown:
            return not self.failed
        now = time.monotonic()
        if not final and now - self._last < EDIT_INTERVAL_S:
            return True
        self._last = now
        # Shielded: if the command is cancelled while the client applies the edit, the region
        # still learns what the document now holds, so restore() can take it back.
        self._pending = asyncio.ensure_future(self._apply(text))
        return await asyncio.shield(self._pending)

    async def _apply(self, text: str) -> bool:
        edit = types.WorkspaceEdit(changes={self.uri: [self.edit(text)]})
        try:
            result = await self.context.ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label="nearcode")
            )
        except Exception:
            log.warning("the client failed to apply an edit", exc_info=True)
            self.failed = True
            return False
        if not result.applied:
            self.failed = True
            return False
        self.line_count = text.count("\n")
        self.shown = text
        self.edits_applied += 1
        return True

    async def restore(self) -> None:
        """Put back what was there before streaming began (cancel, or nothing worth offering)."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pending)
        if self.shown != self.original and not self.failed:
            await self.show(self.original, final=True)
