"""One workspace folder's index: the definitions and imports of its files, editors' unsaved
buffers and recent edits, kept current by file events.

Two sides. Readers (the event loop: context assembly, the HTTP API) call the query methods; they
only look things up in dicts, under a lock held for microseconds, so they fit a completion's
deadline. The index worker (daemon/workspace/worker.py) calls `scan_step` and `process_changes`:
all reading and parsing happens there, one file at a time, and each file is parsed once per change
(unchanged size and mtime, or unchanged bytes, are not parsed again).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nearcode.daemon.workspace import resolve as resolver
from nearcode.daemon.workspace.buffers import OpenBuffers
from nearcode.daemon.workspace.extract import summarize
from nearcode.daemon.workspace.files import (
    MANIFESTS,
    FileStamp,
    PathFilter,
    WalkCounts,
    indexable,
    read_source,
    stat_file,
    walk,
)
from nearcode.daemon.workspace.manifests import parse_manifest
from nearcode.daemon.workspace.model import (
    Definition,
    ImportRef,
    IndexLimits,
    IndexState,
    IndexStatus,
)
from nearcode.daemon.workspace.tables import (
    DIGEST,
    MTIME,
    SIZE,
    IndexTables,
    folder_of,
)
from nearcode.shared.languages import language_for_path

DEBOUNCE_S = 0.05  # a save is several events (write, close, rename): parse once after them


@dataclass
class Scan:
    """A walk of the tree (or of one folder of it) and the parse of what it found."""

    start: str  # "" for the whole tree
    first: bool = False  # the first full scan: the one the status and the progress report
    started: float = field(default_factory=time.monotonic)
    found: list[str] = field(default_factory=list)
    position: int = 0
    sources: int = 0
    walking: bool = True
    capped: str = ""
    counts: WalkCounts = field(default_factory=WalkCounts)


class WorkspaceIndex(IndexTables):
    """The tables (daemon/workspace/tables.py) and what keeps them current."""

    def __init__(self, root: Path, limits: IndexLimits | None = None) -> None:
        super().__init__()
        self.root = root
        self.root_name = root.name
        self.limits = limits or IndexLimits()
        self.filter = PathFilter(root, self.limits.max_file_bytes)
        self.buffers = OpenBuffers()
        self.wake: Callable[[], None] = lambda: None  # the worker sets this
        self.closed = False
        self._pending: dict[str, float] = {}  # path (folder: with a trailing "/") -> when due
        self._skipped: Counter[str] = Counter()
        self._scans: deque[Scan] = deque([Scan("", first=True)])
        self._walker = self._new_walker(self._scans[0])
        self._state: IndexState = "scanning"
        self._message = ""
        self._scan_seconds: float | None = None
        self._discovered = 0
        self._parsed = 0

    # ------------------------------------------------------------------ queries (any thread)

    def resolve(self, from_path: str, ref: ImportRef) -> list[str]:
        """The workspace files an import refers to (none for a library outside the workspace)."""
        return resolver.resolve(self, from_path, ref)

    def lookup(self, from_path: str, name: str) -> list[Definition]:
        """Definitions of `name` as seen from one file: through its imports first, then its own,
        then by name across the workspace."""
        return resolver.lookup(self, from_path, name)

    def text(self, path: str) -> str | None:
        """The editor's buffer if one is open, else the file on disk; None for denied, ignored,
        binary, too large or missing files."""
        if not _safe(path):
            return None
        buffer = self.buffers.text(path)
        if buffer is not None:
            return buffer
        if self.filter.path_reason(path) is not None:
            return None
        stamp, _ = stat_file(self.root / path, self.filter)
        data = read_source(self.root / path, self.limits.max_file_bytes) if stamp is not None else None
        return data.decode("utf-8", errors="replace") if data is not None else None

    def recent_edits(self, limit: int = 16) -> list[tuple[str, int, int, float]]:
        """(path, first line, last line, time.monotonic()) of recent edits, newest first."""
        return self.buffers.recent_edits(limit)

    def open_buffers(self) -> list[str]:
        """Files open in an editor, the most recently changed first."""
        return self.buffers.paths()

    @property
    def status(self) -> IndexStatus:
        with self._lock:  # the worker pops finished scans
            scan = self._scans[0] if self._scans and self._scans[0].first else None
        return IndexStatus(
            root=str(self.root),
            state="closed" if self.closed else self._state,
            files=len(self._files),
            definitions=self._definitions,
            message=self._message,
            discovered=len(scan.found) if scan is not None else self._discovered,
            parsed=scan.position if scan is not None else self._parsed,
            scan_seconds=self._scan_seconds,
            skipped=dict(self._skipped),
        )

    # ------------------------------------------------------------------ events (any thread)

    def notice(self, path: str) -> None:
        """A file changed, appeared or went away (the worker looks at it shortly)."""
        with self._lock:
            self._pending.setdefault(path, time.monotonic() + DEBOUNCE_S)
        self.wake()

    def notice_folder_gone(self, folder: str) -> None:
        with self._lock:
            self._pending[folder.rstrip("/") + "/"] = time.monotonic()
        self.wake()

    def notice_folder_new(self, folder: str) -> None:
        """A folder appeared (created or moved in): walk it, in case its files' events were missed."""
        self._queue_scan(Scan(folder))

    def rules_changed(self) -> None:
        """A .gitignore or .nearcodeignore changed: read them again and re-check the whole tree."""
        self.filter.forget()
        self._queue_scan(Scan(""))

    def _queue_scan(self, scan: Scan) -> None:
        if scan.start and self.filter.path_reason(scan.start, is_dir=True) is not None:
            return  # an ignored or denied folder appeared: nothing in it is read
        with self._lock:
            waiting = list(self._scans)[1:]  # the running one may have begun before the change
            if any(not s.start or scan.start == s.start or scan.start.startswith(s.start + "/") for s in waiting):
                return  # a git checkout creates hundreds of folders: one walk covers them
            self._scans.append(scan)
            if len(self._scans) == 1:
                self._walker = self._new_walker(scan)
        self.wake()

    def set_buffer(self, client: str, path: str, text: str | None, version: int = 0) -> str | None:
        """An editor's text for a file (None: closed). Returns why it was refused, or None."""
        if not _safe(path):
            return "not a path inside the workspace"
        reason = self.filter.path_reason(path)
        if reason is not None:
            return f"denied: {self.filter.deny.reason(path)}" if reason == "denied" else reason
        if text is None:
            self.buffers.close(client, path)
            self.notice(path)  # another editor's buffer, or the file on disk, counts again
            return None
        if len(text) > self.limits.max_file_bytes:
            self.buffers.close(client, path)
            return "too large"
        self.buffers.set(client, path, text, version)
        with self._lock:
            self._pending[path] = time.monotonic()  # the editor already debounced
        self.wake()
        return None

    def drop_client(self, client: str) -> None:
        for path in self.buffers.drop_client(client):
            self.notice(path)

    # ------------------------------------------------------------------ worker side

    def next_due(self) -> float | None:
        with self._lock:
            return min(self._pending.values(), default=None)

    def scanning(self) -> bool:
        return bool(self._scans)

    def process_changes(self, limit: int = 64) -> int:
        """Look at up to `limit` changed paths that are due; how many were looked at."""
        now = time.monotonic()
        with self._lock:
            due = [path for path, at in self._pending.items() if at <= now][:limit]
            for path in due:
                del self._pending[path]
        for path in due:
            if path.endswith("/"):
                self._remove_under(path)
            else:
                self._refresh(path)
        return len(due)

    def scan_step(self, budget_s: float) -> bool:
        """Walk and parse for about `budget_s`; False once no scan is left."""
        deadline = time.monotonic() + budget_s
        while self._scans and time.monotonic() < deadline and not self.closed:
            scan = self._scans[0]
            if scan.walking:
                self._walk_one(scan)
            elif scan.position < len(scan.found):
                scan.position += 1
                self._refresh(scan.found[scan.position - 1])
            else:
                self._finish(scan)
        return bool(self._scans)

    def close(self) -> None:
        self.closed = True
        with self._lock:
            self._scans.clear()
            self._pending.clear()
        self._clear()

    def _new_walker(self, scan: Scan) -> Iterator[str]:
        return walk(self.root, self.filter, scan.start, scan.counts, self.limits.max_entries, self._skipped)

    def _walk_one(self, scan: Scan) -> None:
        path = next(self._walker, None)
        if path is None:
            scan.walking = False
            scan.capped = scan.capped or scan.counts.capped
            return
        if PurePosixPath(path).name in MANIFESTS:
            scan.found.append(path)
        elif scan.first and scan.sources >= self.limits.max_files:
            scan.capped = self._cap_message()
            scan.walking = False
        else:
            scan.sources += 1
            scan.found.append(path)

    def _cap_message(self) -> str:
        return (
            f"more than {self.limits.max_files:,} source files: indexed the first {self.limits.max_files:,} found, "
            "the rest is left out (list folders in .nearcodeignore, or raise NEARCODE_INDEX_MAX_FILES)"
        )

    def _finish(self, scan: Scan) -> None:
        # What the walk did not see again is gone (unless an event refreshed it since it began).
        if not scan.capped:
            for path in self._stale(scan.start + "/" if scan.start else "", scan.started):
                self._remove(path)
        if scan.first:
            self._scan_seconds = round(time.monotonic() - scan.started, 2)
            self._discovered, self._parsed = len(scan.found), scan.position
            self._state = "capped" if scan.capped else "ready"
            self._message = scan.capped
        with self._lock:
            self._scans.popleft()
            if self._scans:
                self._walker = self._new_walker(self._scans[0])

    def _refresh(self, path: str) -> None:
        """Bring one path up to date: parse it if it changed, drop it if it went or is excluded."""
        now = time.monotonic()
        name = PurePosixPath(path).name
        manifest = name in MANIFESTS
        if not _safe(path) or not (manifest or indexable(path)) or self.filter.path_reason(path) is not None:
            self._remove(path)
            return
        existing = self._files.get(path)
        buffer = None if manifest else self.buffers.text(path)
        stamp: FileStamp | None = None
        if buffer is not None:
            data: bytes | None = buffer.encode("utf-8", errors="replace")
        else:
            stamp, why = stat_file(self.root / path, self.filter)
            if stamp is None:
                if why == "too large":
                    self._skipped[why] += 1
                self._remove(path)
                return
            if existing is not None and (existing[MTIME], existing[SIZE]) == (stamp.mtime_ns, stamp.size):
                self._touch(path, existing, now)
                return
            data = read_source(self.root / path, self.limits.max_file_bytes)
        if data is None:
            self._skipped["binary"] += 1
            self._remove(path)
            return
        if manifest:
            self._set_manifest(path, parse_manifest(name, folder_of(path), data))
            return
        digest = hash(data)
        if existing is not None and existing[DIGEST] == digest:
            self._touch(path, existing, now, stamp)
            return
        if existing is None and len(self._files) >= self.limits.max_files:
            self._state = "capped" if self._state != "scanning" else self._state
            self._message = self._cap_message()
            return
        summary = summarize(data, language_for_path(path), self.limits.max_definitions_per_file)
        mtime, size = (stamp.mtime_ns, stamp.size) if stamp is not None else (-1, -1)
        self._apply(path, (summary.language, summary.package, summary.definitions, summary.imports, mtime, size,
                           digest, now))


def _safe(path: str) -> bool:
    """A workspace-relative posix path that stays inside the workspace."""
    return bool(path) and not path.startswith("/") and ".." not in path.split("/") and "\\" not in path
