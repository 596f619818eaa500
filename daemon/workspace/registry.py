"""Which workspace folders are indexed, for which editors.

Language servers register the folders they have open (on initialize and on
workspace/didChangeWorkspaceFolders) and release them (shutdown, exit). A client whose process is
gone is released too, so an editor that crashed leaves nothing behind. An index that no client
uses any more stays for a grace period (an editor restarting, a second window opening the same
folder) and is then closed. Called from the event loop only; the indexes themselves are
thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.observers.api import BaseObserver

from nearcode.daemon.workspace.index import WorkspaceIndex
from nearcode.daemon.workspace.model import IndexLimits
from nearcode.daemon.workspace.watch import WorkspaceWatch, new_observer
from nearcode.daemon.workspace.worker import IndexWorker
from nearcode.shared.endpoint import pid_alive
from nearcode.shared.protocol.daemon_api import FolderStatus

log = logging.getLogger("nearcode.daemon")

SWEEP_S = 2.0


@dataclass
class Client:
    pid: int | None
    roots: set[Path] = field(default_factory=set)
    refused: dict[Path, str] = field(default_factory=dict)  # folders not indexed, and why


def too_broad(root: Path) -> str | None:
    """Folders never indexed as a whole: they hold everything, so indexing them helps nobody."""
    broad = {Path("/"), Path.home(), Path(tempfile.gettempdir()), Path("/tmp")}
    with contextlib.suppress(OSError, RuntimeError):
        broad |= {p.resolve() for p in list(broad)}
    if root in broad:
        return f"not indexed: {root} is the file-system root, the home folder or the temporary folder"
    if not root.is_dir():
        return f"not indexed: {root} is not a folder"
    return None


class WorkspaceRegistry:
    def __init__(
        self,
        limits: IndexLimits | None = None,
        should_yield: Callable[[], bool] = lambda: False,
        observer_factory: Callable[[], BaseObserver] = new_observer,
    ) -> None:
        self.limits = limits or IndexLimits.from_environment()
        self.worker = IndexWorker(should_yield, self.limits.nice)
        self._observer_factory = observer_factory
        self._observer: BaseObserver | None = None
        self._indexes: dict[Path, WorkspaceIndex] = {}
        self._watches: dict[Path, WorkspaceWatch] = {}
        self._clients: dict[str, Client] = {}
        self._unused_since: dict[Path, float] = {}

    # ------------------------------------------------------------------ clients

    def known(self, client: str) -> bool:
        return client in self._clients

    def set_folders(self, client: str, pid: int | None, folders: list[str]) -> None:
        """This client's folders, replacing what it registered before ([] releases it)."""
        roots: set[Path] = set()
        refused: dict[Path, str] = {}
        for folder in folders:
            path = Path(folder).expanduser()
            if not path.is_absolute():
                continue
            root = path.resolve()
            reason = too_broad(root)
            if reason is not None:
                refused[root] = reason
            else:
                roots.add(root)
        previous = self._clients.pop(client, None)
        if folders:
            self._clients[client] = Client(pid, roots, refused)
        for root in roots:
            self._open(root)
        for root in previous.roots - roots if previous else ():
            self._mark_if_unused(root)
        if previous is not None:
            # Its buffers leave with it: in folders it dropped, and in any when it is gone.
            for root, index in self._indexes.items():
                if not folders or root in previous.roots - roots:
                    index.drop_client(client)

    def release(self, client: str) -> None:
        self.set_folders(client, None, [])

    def _open(self, root: Path) -> WorkspaceIndex:
        self._unused_since.pop(root, None)
        index = self._indexes.get(root)
        if index is None:
            index = self._indexes[root] = WorkspaceIndex(root, self.limits)
            if self._observer is None:
                self._observer = self._observer_factory()
                self._observer.start()
            watch = self._watches[root] = WorkspaceWatch(self._observer, index)
            # On the worker, before the scan: what changes while it runs is queued, not lost.
            self.worker.call(watch.start)
            self.worker.add(index)
            log.info("workspace index opened: %s", root)
        return index

    def _mark_if_unused(self, root: Path) -> None:
        if root in self._indexes and not any(root in c.roots for c in self._clients.values()):
            self._unused_since.setdefault(root, time.monotonic())

    def _close(self, root: Path) -> None:
        watch = self._watches.pop(root, None)
        if watch is not None:
            self.worker.call(watch.stop)
        index = self._indexes.pop(root, None)
        if index is not None:
            self.worker.remove(index)
            index.close()
            log.info("workspace index closed: %s (no editor used it for %.0f s)", root, self.limits.grace_s)
        self._unused_since.pop(root, None)

    def sweep(self) -> None:
        """Release clients whose process is gone; close indexes unused for the grace period."""
        for client, info in list(self._clients.items()):
            if info.pid is not None and not pid_alive(info.pid):
                log.info("workspace client %s is gone (pid %d): releasing its folders", client, info.pid)
                self.release(client)
        now = time.monotonic()
        for root, since in list(self._unused_since.items()):
            if now - since >= self.limits.grace_s:
                self._close(root)

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            self.sweep()

    def close(self) -> None:
        for root in list(self._indexes):
            self._close(root)
        self.worker.stop()  # after stopping the watches it was handed
        if self._observer is not None:
            self._observer.stop()
            self._observer = None

    # ------------------------------------------------------------------ lookups

    def for_path(self, path: str | Path) -> WorkspaceIndex | None:
        """The index of the deepest registered folder holding this absolute path."""
        found = self.locate(path)
        return found[0] if found is not None else None

    def locate(self, path: str | Path) -> tuple[WorkspaceIndex, str] | None:
        """The index holding an absolute path, and the path relative to its root (posix)."""
        given = Path(path)
        if not given.is_absolute():
            return None
        candidates = [given]
        with contextlib.suppress(OSError, RuntimeError):
            candidates.append(given.resolve())
        for candidate in candidates:
            holders = [root for root in self._indexes if candidate.is_relative_to(root) and candidate != root]
            if holders:
                root = max(holders, key=lambda r: len(r.parts))
                return self._indexes[root], candidate.relative_to(root).as_posix()
        return None

    def index_at(self, folder: str | Path) -> WorkspaceIndex | None:
        """The index whose root is this folder."""
        with contextlib.suppress(OSError, RuntimeError):
            return self._indexes.get(Path(folder).resolve())
        return None

    def set_buffer(self, client: str, path: str, text: str | None, version: int) -> str | None:
        """An editor's buffer (None: closed) into the index holding it; why not, or None."""
        found = self.locate(path)
        if found is None:
            return "outside every registered workspace folder"
        index, relative = found
        return index.set_buffer(client, relative, text, version)

    # ------------------------------------------------------------------ status

    def folder_status(self, client: str | None = None) -> list[FolderStatus]:
        """The indexes of one client's folders (all of them for None), and those refused."""
        clients = list(self._clients.values()) if client is None else [c for k, c in self._clients.items() if k == client]
        roots = set(self._indexes) if client is None else {r for c in clients for r in c.roots}
        out = []
        for root in sorted(roots):
            index = self._indexes.get(root)
            if index is None:
                continue
            status = index.status
            out.append(FolderStatus(
                root=status.root, state=status.state, files=status.files, definitions=status.definitions,
                discovered=status.discovered, parsed=status.parsed, scan_seconds=status.scan_seconds,
                message=status.message, clients=sum(root in c.roots for c in self._clients.values()),
                open_buffers=len(index.open_buffers()), skipped=status.skipped,
            ))
        refused = {root: reason for c in clients for root, reason in c.refused.items()}
        out += [FolderStatus(root=str(root), state="skipped", message=reason) for root, reason in sorted(refused.items())]
        return out

    def status(self) -> dict[str, object]:
        """For /api/status and `nearcode status`."""
        return {
            "clients": len(self._clients),
            "folders": [f.model_dump() for f in self.folder_status()],
            "scan_waited_s": round(self.worker.yielded_s, 1),
            "worker_thread": self.worker.native_id,
        }
