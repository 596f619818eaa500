"""The index worker: one thread for every workspace index of the daemon, at low OS priority.

Changed files (saves, editors' buffers) come first and are handled at once, even while a
completion runs: a few milliseconds a file, and a saved definition must show within a second.
Scans (the first full one, and re-checks after an ignore file changes) run in steps of ~20 ms with
a pause between them, and wait while a keystroke's completion runs (`should_yield`): tree-sitter
holds the GIL while it parses, so the event loop and the engine's token callbacks would otherwise
wait for it. On Linux the thread's nice value is its own (setpriority on the thread id), so the
engine's threads keep the cores.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable

from nearcode.daemon.workspace.index import WorkspaceIndex

log = logging.getLogger("nearcode.daemon")

SCAN_STEP_S = 0.02  # one scan step's work
SCAN_PAUSE_S = 0.005  # between steps: the GIL goes to the event loop
YIELD_POLL_S = 0.05  # while interactive work runs, how often to look again
IDLE_WAIT_S = 1.0


class IndexWorker:
    def __init__(self, should_yield: Callable[[], bool] = lambda: False, nice: int = 10) -> None:
        self.should_yield = should_yield
        self.nice = nice
        self._indexes: list[WorkspaceIndex] = []
        self._calls: list[Callable[[], object]] = []  # run on this thread before anything else
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.yielded_s = 0.0  # time scans waited for interactive work (status, benchmarks)
        self.native_id: int | None = None  # the OS thread id (its CPU time is in /proc/<pid>/task/<id>)

    def add(self, index: WorkspaceIndex) -> None:
        index.wake = self.wake
        with self._lock:
            self._indexes.append(index)
            self._ensure_thread()
        self.wake()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nearcode-index", daemon=True)
            self._thread.start()

    def call(self, work: Callable[[], object]) -> None:
        """Run `work` on the worker thread, before any more scanning: starting and stopping a
        watch walks the folder tree (inotify needs a watch per folder), not a job for the event loop."""
        with self._lock:
            self._calls.append(work)
            self._ensure_thread()
        self.wake()

    def remove(self, index: WorkspaceIndex) -> None:
        with self._lock:
            if index in self._indexes:
                self._indexes.remove(index)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after running what was handed to `call` (watches being stopped)."""
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        except (OSError, AttributeError):
            log.debug("could not lower the index worker's priority", exc_info=True)
        turn = 0
        while not self._stopping:
            self._wake.clear()
            self._run_calls()
            with self._lock:
                indexes = list(self._indexes)
            if sum(self._guarded(index, index.process_changes) for index in indexes):
                continue
            scanning = [index for index in indexes if index.scanning()]
            if scanning:
                if self.should_yield():
                    self.yielded_s += YIELD_POLL_S
                    self._wake.wait(YIELD_POLL_S)
                    continue
                turn += 1
                chosen = scanning[turn % len(scanning)]  # several folders share the worker fairly
                self._guarded(chosen, functools.partial(chosen.scan_step, SCAN_STEP_S))
                time.sleep(SCAN_PAUSE_S)
                continue
            due = [d for index in indexes if (d := index.next_due()) is not None]
            wait = min(due) - time.monotonic() if due else IDLE_WAIT_S
            self._wake.wait(max(0.0, min(wait, IDLE_WAIT_S)))
        self._run_calls()  # the watches handed over to be stopped

    def _run_calls(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
        for work in calls:
            try:
                work()
            except Exception:
                log.exception("workspace index: a watch could not be started or stopped")

    @staticmethod
    def _guarded(index: WorkspaceIndex, step: Callable[[], int | bool]) -> int:
        try:
            return int(step())
        except Exception:  # one bad file must not stop indexing; paths only, never text, in the log
            log.exception("workspace index %s: an update failed", index.root)
            return 0
