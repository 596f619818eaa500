"""Writes insight rows off the event loop: a keystroke's completion never waits for SQLite.

The language server hands rows and updates to `InsightRecorder`; one thread owns the connection
and commits each in its own short transaction (another editor's server may be writing too). A
failing database (disk full, file removed, locked for too long) is logged once and recording
stops: statistics are never worth an error in the editor.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nearcode.lsp.insight.store import InsightStore, SuggestionRow

log = logging.getLogger("nearcode.lsp")

PRUNE_EVERY = 200  # inserts between size checks (and once at start)


@dataclass(frozen=True)
class _Insert:
    row: SuggestionRow


@dataclass(frozen=True)
class _Update:
    row_id: str
    fields: Mapping[str, object] = field(default_factory=dict)


_Op = _Insert | _Update | Callable[[], None]


class InsightRecorder:
    """Queue of writes for one background thread; started on first use."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._queue: queue.Queue[_Op | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failed = False
        self.written = 0

    def insert(self, row: SuggestionRow) -> None:
        self._put(_Insert(row))

    def update(self, row_id: str, fields: Mapping[str, object]) -> None:
        self._put(_Update(row_id, dict(fields)))

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far is written; False on timeout or failure."""
        if self._thread is None or self.failed:
            return not self.failed
        done = threading.Event()
        self._put(done.set)
        return done.wait(timeout_s) and not self.failed

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _put(self, op: _Op) -> None:
        if self.failed:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nearcode-insight", daemon=True)
                self._thread.start()
        self._queue.put(op)

    def _run(self) -> None:
        try:
            store = InsightStore(self._path)
            store.prune()
        except Exception as exc:
            self._fail(exc)
            return
        inserts = 0
        try:
            while (op := self._queue.get()) is not None:
                if self.failed:
                    if callable(op):
                        op()
                    continue
                try:
                    if isinstance(op, _Insert):
                        store.insert(op.row)
                        inserts += 1
                        if inserts % PRUNE_EVERY == 0:
                            store.prune()
                    elif isinstance(op, _Update):
                        store.update(op.row_id, op.fields)
                    else:
                        op()
                        continue
                    self.written += 1
                except Exception as exc:
                    self._fail(exc)
        finally:
            store.close()

    def _fail(self, exc: Exception) -> None:
        if not self.failed:
            log.warning("insight recording stopped: %s", exc)
        self.failed = True
        # Whoever waits on a flush must not wait forever.
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            if callable(op):
                op()
