"""watchdog events into a workspace index.

One observer serves every index (one inotify instance: Linux allows 128 per user, editors use some
too). Each index watches its root without recursion and each top-level folder that is not skipped
(node_modules, .venv, .git, build, ignored folders) recursively, so a big node_modules or a busy
.git costs no inotify watches and no events; above 32 such folders it watches the root
recursively instead. Symlinks are not followed. The handler only sorts paths into the index's
queue (it runs on watchdog's thread); the index worker reads and parses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver, ObservedWatch

from nearcode.daemon.workspace.files import IGNORE_FILES, SKIPPED_FOLDERS
from nearcode.daemon.workspace.index import WorkspaceIndex

log = logging.getLogger("nearcode.daemon")

MAX_TOP_LEVEL_WATCHES = 32
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent, FileMovedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]  # fmt: skip


class _StopRace(logging.Filter):
    """watchdog logs an error when a watch is unscheduled while its emitter waits for events (its
    own shutdown race, harmless): it would show up each time an index closes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRace())


def _text(path: bytes | str) -> str:
    return os.fsdecode(path)


class WorkspaceWatch(FileSystemEventHandler):
    def __init__(self, observer: BaseObserver, index: WorkspaceIndex) -> None:
        self.observer = observer
        self.index = index
        self.root = str(index.root)
        self._watches: dict[str, ObservedWatch] = {}  # "" for the root, else a top-level folder
        self._recursive_root = False
        self._lock = threading.Lock()  # watchdog's thread adds and drops watches; stop() takes them all
        self._stopped = False

    def start(self) -> None:
        folders = self._top_level_folders()
        if len(folders) > MAX_TOP_LEVEL_WATCHES:
            self._recursive_root = True
            self._schedule("", recursive=True)
            return
        self._schedule("", recursive=False)
        for folder in folders:
            self._schedule(folder, recursive=True)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            self._unschedule(watch)

    def _unschedule(self, watch: ObservedWatch) -> None:
        with contextlib.suppress(KeyError, OSError):
            self.observer.unschedule(watch)

    def _top_level_folders(self) -> list[str]:
        try:
            with os.scandir(self.root) as entries:
                return sorted(
                    e.name for e in entries
                    if e.is_dir(follow_symlinks=False) and self.index.filter.entry_reason(e.name, True) is None
                )
        except OSError:
            return []

    def _schedule(self, folder: str, recursive: bool) -> None:
        path = os.path.join(self.root, folder) if folder else self.root
        with self._lock:
            if self._stopped or folder in self._watches:
                return
            try:
                self._watches[folder] = self.observer.schedule(
                    self, path, recursive=recursive, event_filter=EVENTS, follow_symlink=False
                )
            except OSError as exc:  # e.g. out of inotify watches: the index still has its scan
                log.warning("cannot watch %s: %s", path, exc)

    def _relative(self, path: bytes | str) -> str | None:
        full = _text(path)
        if not full.startswith(self.root + os.sep):
            return None
        relative = full[len(self.root) + 1 :].replace(os.sep, "/")
        parts = relative.split("/")
        if any(part in SKIPPED_FOLDERS for part in parts[:-1]):
            return None
        return relative

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:  # never let one odd event stop the observer thread
            log.exception("workspace watch: could not handle a %s event", event.event_type)

    def _dispatch(self, event: FileSystemEvent) -> None:
        paths = [event.src_path]
        if isinstance(event, (FileMovedEvent, DirMovedEvent)) and event.dest_path:
            paths.append(event.dest_path)  # a move is the source going and the destination coming
        for position, raw in enumerate(paths):
            relative = self._relative(raw)
            if relative is None:
                continue
            name = relative.rsplit("/", 1)[-1]
            if not event.is_directory:
                if name in IGNORE_FILES:
                    self.index.rules_changed()
                else:
                    self.index.notice(relative)
            elif name in SKIPPED_FOLDERS:
                continue
            elif position == 1 or isinstance(event, DirCreatedEvent):
                top_level = "/" not in relative and not self._recursive_root
                if top_level and self.index.filter.entry_reason(relative, True) is None:
                    self._schedule(relative, recursive=True)
                # Walked once the watch is there: what was created before it is found by the walk,
                # what comes after by the watch.
                self.index.notice_folder_new(relative)
            else:
                self.index.notice_folder_gone(relative)
                with self._lock:
                    watch = self._watches.pop(relative, None) if "/" not in relative else None
                if watch is not None:
                    self._unschedule(watch)


def new_observer() -> BaseObserver:
    """The daemon's one observer (inotify on Linux), its threads daemonic."""
    from watchdog.observers import Observer

    observer: BaseObserver = Observer()
    observer.daemon = True
    return observer
