"""The language server's side of the workspace index (the index itself lives in the daemon,
shared by every editor: daemon/workspace/).

It tells the daemon which folders this editor has open (on `initialized` and
`workspace/didChangeWorkspaceFolders`; an empty list on `shutdown`) and what the editor's open
buffers say (on `didOpen`, on `didChange` debounced by 300 ms, and null on `didClose`, when the file
on disk counts again), and it shows the first scan's progress as a work-done progress bar.
Nothing here delays a completion: each call to the daemon is a task of its own, and a failure is
logged (paths only, never document text) and dropped. A daemon that restarted forgets every
client; the first answer that says so makes this side register again and resend its buffers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pydantic import ValidationError
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from nearcode.lsp.daemon_client import DaemonClient, DaemonUnavailable
from nearcode.shared.deny import DenyList
from nearcode.shared.protocol.daemon_api import (
    MAX_BUFFER_CHARS,
    BufferAck,
    BufferRequest,
    FolderStatus,
    WorkspaceRequest,
    WorkspaceStatus,
)
from nearcode.shared.protocol.editor import WorkspaceFolderIndex
from nearcode.shared.text import first_lone_surrogate

log = logging.getLogger("nearcode.lsp")

BUFFER_DEBOUNCE_S = 0.3
PROGRESS_POLL_S = 0.5
STATUS_REFRESH_S = 5.0
_FAILURES = (DaemonUnavailable, httpx.HTTPError, OSError, ValidationError)


class WorkspaceSync:
    def __init__(self, ls: LanguageServer, daemon: DaemonClient, client_id: str) -> None:
        self.ls = ls
        self.daemon = daemon
        self.client_id = client_id
        self.folders: list[str] = []
        self.statuses: list[FolderStatus] = []
        self.on_change: Callable[[], None] = lambda: None  # the server re-sends nearcode/status
        self._debounce: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._progress: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0
        self._released = False
        self._deny: dict[str, DenyList] = {}  # folder -> its deny list (built-ins, .nearcodeignore)

    # ------------------------------------------------------------------ folders

    def workspace_folders(self) -> list[str]:
        workspace = self.ls.workspace
        paths = [to_fs_path(folder.uri) for folder in workspace.folders.values()]
        if not paths and workspace.root_path:
            paths = [workspace.root_path]
        return [p for p in paths if p]

    async def register(self) -> None:
        """Send this editor's folders (all of them: the daemon replaces what it had)."""
        if self._released:
            return
        self.folders = self.workspace_folders()
        self._refreshed_at = time.monotonic()
        request = WorkspaceRequest(client=self.client_id, pid=os.getpid(), folders=self.folders)
        try:
            answer = WorkspaceStatus.model_validate(await self.daemon.post_json("/api/workspace", request))
        except _FAILURES as exc:
            log.warning("could not register the workspace folders with the daemon: %s", exc)
            return
        self._update(answer.folders)
        # Documents opened before the folders were known (the daemon may have been starting).
        await self._resend_buffers()

    async def release(self) -> None:
        """The editor is leaving: the daemon may close the indexes nobody else uses."""
        self._released = True
        for task in [*self._debounce.values(), *self._tasks]:
            task.cancel()
        if self.daemon.endpoint is None:
            return
        try:
            await self.daemon.post_json("/api/workspace", WorkspaceRequest(client=self.client_id, folders=[]), 3.0)
        except _FAILURES as exc:
            log.debug("could not release the workspace folders: %s", exc)

    async def refresh(self) -> None:
        """The indexes' status from the daemon (registering again if it forgot this client)."""
        self._refreshed_at = time.monotonic()
        try:
            answer = WorkspaceStatus.model_validate(await self.daemon.get_json(f"/api/workspace?client={self.client_id}"))
        except _FAILURES as exc:
            log.debug("could not read the workspace status: %s", exc)
            return
        if not answer.registered and self.folders and not self._released:
            await self.register()
            return
        self._update(answer.folders)

    def refresh_soon(self) -> None:
        """Keep the status bar's counts fresh without polling an idle editor."""
        if self.folders and time.monotonic() - self._refreshed_at > STATUS_REFRESH_S:
            self._refreshed_at = time.monotonic()
            self._spawn(self.refresh())

    def wire_status(self) -> list[WorkspaceFolderIndex]:
        return [
            WorkspaceFolderIndex(root=f.root, state=f.state, files=f.files, definitions=f.definitions, message=f.message)
            for f in self.statuses
        ]

    def _update(self, folders: list[FolderStatus]) -> None:
        changed = [f.model_dump() for f in folders] != [f.model_dump() for f in self.statuses]
        self.statuses = folders
        if any(f.state == "scanning" for f in folders) and self._progress is None and self._has_progress():
            self._progress = self._spawn(self._show_progress())
        if changed:
            self.on_change()

    # ------------------------------------------------------------------ buffers

    def opened(self, uri: str) -> None:
        self._schedule(uri, 0.0)

    def changed(self, uri: str) -> None:
        self._schedule(uri, BUFFER_DEBOUNCE_S)

    def closed(self, uri: str) -> None:
        pending = self._debounce.pop(uri, None)
        if pending is not None:
            pending.cancel()
        if self._path(uri) is not None:
            self._spawn(self._send(uri, closing=True))

    def _path(self, uri: str) -> str | None:
        """The file's path when it lies in one of this editor's folders (others are not indexed)
        and is not on the deny list: a denied file's text does not even leave the editor's server."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if path is None or self._released:
            return None
        for folder in self.folders:
            prefix = folder.rstrip(os.sep) + os.sep
            if path.startswith(prefix):
                if folder not in self._deny:
                    self._deny[folder] = DenyList.load(Path(folder))
                return path if self._deny[folder].reason(path[len(prefix) :].replace(os.sep, "/")) is None else None
        return None

    def _schedule(self, uri: str, delay_s: float) -> None:
        if self._path(uri) is None:
            return
        pending = self._debounce.pop(uri, None)
        if pending is not None:
            pending.cancel()
        task = self._spawn(self._send_later(uri, delay_s))
        if task is not None:
            self._debounce[uri] = task

    async def _send_later(self, uri: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._debounce.pop(uri, None)
        await self._send(uri)

    async def _send(self, uri: str, closing: bool = False, may_register: bool = True) -> None:
        path = self._path(uri)
        if path is None:
            return
        text: str | None = None
        version = 0
        if not closing:
            document = self.ls.workspace.text_documents.get(uri)
            if document is None:
                return
            source = document.source
            # Too large, or not Unicode (a lone surrogate: the index cannot parse it, and the wire
            # model refuses it): the file on disk stands for the buffer.
            fits = len(source) <= MAX_BUFFER_CHARS and first_lone_surrogate(source) is None
            text = source if fits else None
            version = document.version or 0
        request = BufferRequest(client=self.client_id, path=path, text=text, version=version)
        try:
            ack = BufferAck.model_validate(await self.daemon.post_json("/api/buffer", request))
        except _FAILURES as exc:
            log.debug("could not forward the buffer of %s: %s", path, exc)
            return
        if not ack.registered and may_register and self.folders and not self._released:
            await self.register()  # the daemon restarted: folders again, then every buffer

    async def _resend_buffers(self) -> None:
        for uri in list(self.ls.workspace.text_documents):
            await self._send(uri, may_register=False)

    # ------------------------------------------------------------------ progress

    def _has_progress(self) -> bool:
        window = self.ls.client_capabilities.window if self.ls.client_capabilities else None
        return bool(window and window.work_done_progress)

    async def _show_progress(self) -> None:
        """A progress bar while any of this editor's folders is on its first full scan."""
        token = f"nearcode-index-{uuid.uuid4().hex[:12]}"
        progress = self.ls.work_done_progress
        try:
            await progress.create_async(token)
        except Exception:  # a client that refuses progress still gets the index
            log.debug("client refused work-done progress", exc_info=True)
            return
        progress.begin(token, types.WorkDoneProgressBegin(title="nearcode: indexing", message=self._counts(),
                                                          percentage=0, cancellable=False))
        try:
            while any(f.state == "scanning" for f in self.statuses):
                await asyncio.sleep(PROGRESS_POLL_S)
                await self.refresh()
                progress.report(token, types.WorkDoneProgressReport(message=self._counts(), percentage=self._percent()))
        finally:
            indexed = sum(f.files for f in self.statuses)
            notes = "; ".join(f.message for f in self.statuses if f.message and f.state != "skipped")
            progress.end(token, types.WorkDoneProgressEnd(message=f"indexed {indexed:,} files" + (f" ({notes})" if notes else "")))
            self._progress = None

    def _counts(self) -> str:
        scanning = [f for f in self.statuses if f.state == "scanning"]
        parsed, found = sum(f.parsed for f in scanning), sum(f.discovered for f in scanning)
        return f"{parsed:,} of {found:,} files" if parsed else f"looking for files: {found:,} found"

    def _percent(self) -> int:
        scanning = [f for f in self.statuses if f.state == "scanning"]
        found = sum(f.discovered for f in scanning)
        return int(100 * sum(f.parsed for f in scanning) / found) if found else 0

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no loop (server shutting down): nothing to forward any more
            work.close()
            return None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
