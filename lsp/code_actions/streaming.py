"""Streaming a generation into the editor: the action's context, work-done progress with cancel,
and the daemon request.

`WorkProgress` is a server-initiated `window/workDoneProgress` (cancellable): the client's cancel
button cancels the task that consumes the daemon stream, which closes the stream, which stops the
engine. The text itself goes into the document through a `LiveRegion` (live_region.py), which
follows the user's edits. Clients that cannot apply edits get a preview instead (the handlers
return the final edit).
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
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from nearcode.lsp.code_actions.live_region import DocumentWatchers
from nearcode.lsp.daemon_client import DaemonClient
from nearcode.shared.protocol.daemon_api import (
    ChatMessageIn,
    DeltaEvent,
    DoneEvent,
    GenerateRequest,
)
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")


@dataclass
class ActionContext:
    """What a code-action command needs from the language server."""

    ls: LanguageServer
    daemon: DaemonClient
    settings: Settings
    client_id: str
    watchers: DocumentWatchers

    @property
    def workspace_folders(self) -> list[Path]:
        """The client's workspace folders (root_uri when it names none), as local paths."""
        workspace = self.ls.workspace
        uris = [folder.uri for folder in workspace.folders.values()] or [workspace.root_uri or ""]
        paths = [to_fs_path(uri) for uri in uris if uri.startswith("file:")]
        return [Path(path) for path in paths if path]

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
