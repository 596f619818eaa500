"""Run a model server as a child process: wait until it answers, restart it with back-off if it dies.

Used for vLLM's API server, and by the tests for a llama.cpp server script standing in for it (the
same code path: nothing here knows which server it runs). The child gets its own session, so
stopping it also stops the worker processes it forked (vLLM's engine core and its workers). Its
output is kept in a ring buffer: when it dies, the last lines are what explains why; while it
starts, a `Phases` function names the phase each line announces (`phase`, for status).

A server on a unix socket (`uds`) is health-checked through it, and a socket file a killed child
left behind is removed before the next start (binding would fail on it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import httpx

from nearcode.daemon.engines.base import EngineError

log = logging.getLogger("nearcode.engine.supervisor")


@dataclass(frozen=True)
class ChildSpec:
    argv: tuple[str, ...]
    health_url: str  # answers 200 once the server can take requests
    env: dict[str, str] = field(default_factory=dict)  # added to the daemon's environment
    inherit_env: bool = True  # False: `env` is the child's whole environment (scrubbed by the caller)
    uds: str = ""  # the unix socket the server listens on (health checks go through it)
    ready_timeout_s: float = 900.0  # vLLM: model download/load + CUDA graph capture
    restart_backoff_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
    max_failed_restarts: int = 8  # restarts in a row that never became ready: give up
    output_lines: int = 200
    log_path: str = ""  # also append its output here (0600), for what the ring buffer no longer holds
    name: str = "model server"


# Explains a dead child from its output; returns None when nothing is recognised.
Diagnose = Callable[[str], str | None]
# The start-up phase one line of output announces, or None.
Phases = Callable[[str], str | None]


class ChildServer:
    def __init__(self, spec: ChildSpec, diagnose: Diagnose | None = None, phases: Phases | None = None) -> None:
        self.spec = spec
        self._diagnose = diagnose or (lambda output: None)
        self._phases = phases or (lambda line: None)
        self.phase = ""  # the start-up phase last announced ("" before the first)
        self.launched_at: float | None = None  # time.monotonic() of the last launch
        self._process: asyncio.subprocess.Process | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=spec.output_lines)
        self._reader: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._closing = False
        self.ready = asyncio.Event()
        self.restarts = 0
        self.last_error = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def output(self) -> str:
        return "\n".join(self._output)

    async def start(self) -> None:
        """Launch and wait for readiness; raises EngineError saying why the server did not come up."""
        await self._launch()
        await self._wait_ready()
        self._monitor = asyncio.create_task(self._watch(), name=f"{self.spec.name} supervisor")

    async def close(self) -> None:
        self._closing = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self._stop_process()

    async def wait_ready(self, within_s: float) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def _launch(self) -> None:
        self._output.clear()
        self.phase, self.launched_at = "starting", time.monotonic()
        if self.spec.uds:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spec.uds)  # left by a killed child: binding would fail on it
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **self.spec.env} if self.spec.inherit_env else dict(self.spec.env),
                start_new_session=True,  # its own process group: stopping it stops its workers
            )
        except OSError as exc:
            raise EngineError(f"cannot start {self.spec.name} ({self.spec.argv[0]}): {exc}") from exc
        self._reader = asyncio.create_task(self._read_output(self._process))
        log.info("%s started (pid %d)", self.spec.name, self._process.pid)

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        log = None
        if self.spec.log_path:
            fd = os.open(self.spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            log = os.fdopen(fd, "ab")
        try:
            await self._pump_output(process, log)
        finally:
            if log is not None:
                log.close()

    async def _pump_output(self, process: asyncio.subprocess.Process, log: BinaryIO | None) -> None:
        # Read in blocks, not lines: a progress bar redrawn with \r for minutes is one "line", and
        # a reader that stopped at a line-length limit would leave the pipe full and the child stuck.
        assert process.stdout is not None
        pending = b""
        while block := await process.stdout.read(1 << 16):
            if log is not None:
                log.write(block)
                log.flush()
            *lines, pending = (pending + block).replace(b"\r", b"\n").split(b"\n")
            pending = pending[-4096:]
            for raw in lines:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    self._output.append(line)
                    if not self.ready.is_set():
                        self.phase = self._phases(line) or self.phase

    async def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        give_up = time.monotonic() + self.spec.ready_timeout_s
        transport = httpx.AsyncHTTPTransport(uds=self.spec.uds) if self.spec.uds else None
        async with httpx.AsyncClient(timeout=2.0, trust_env=False, transport=transport) as http:
            while time.monotonic() < give_up:
                if process.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.spec.health_url)).status_code == 200:
                        self.phase = "ready"
                        self.ready.set()
                        log.info("%s ready (pid %d)", self.spec.name, process.pid)
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 0.25)
        if process.returncode is None:
            await self._stop_process()
            raise EngineError(
                f"{self.spec.name} did not become ready within {self.spec.ready_timeout_s:.0f} s"
                + self._explain()
            )
        await self._drain_output()
        raise EngineError(f"{self.spec.name} exited with code {process.returncode}" + self._explain())

    async def _drain_output(self) -> None:
        """Collect a dead child's last words (bounded: a lingering worker may hold the pipe)."""
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)

    def _explain(self) -> str:
        output = self.output
        reason = self._diagnose(output)
        tail = "\n".join(output.splitlines()[-8:])
        self.last_error = reason or tail
        return f": {reason}" if reason else (f"; its last output:\n{tail}" if tail else "")

    async def _watch(self) -> None:
        """Restart the child whenever it dies, backing off while it keeps failing."""
        failures = 0
        while not self._closing:
            process = self._process
            assert process is not None
            await _exited(process)
            if self._closing:
                return
            self.ready.clear()
            # Its workers (vLLM's engine core and model worker, GBs of memory) may outlive it: the
            # whole group goes, or the next start would run beside them.
            _signal_group(process.pid, signal.SIGKILL)
            await self._drain_output()
            log.warning("%s (pid %d) died with code %s%s", self.spec.name, process.pid, process.returncode, self._explain())
            while not self._closing:
                backoff = self.spec.restart_backoff_s
                await asyncio.sleep(backoff[min(failures, len(backoff) - 1)])
                try:
                    await self._launch()
                    await self._wait_ready()
                    self.restarts += 1
                    failures = 0
                    break
                except EngineError as exc:
                    failures += 1
                    log.warning("restarting %s failed (%d in a row): %s", self.spec.name, failures, exc)
                    if failures >= self.spec.max_failed_restarts:
                        log.error("giving up on %s", self.spec.name)
                        return

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(_exited(process), 15.0)
            except TimeoutError:
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        # Workers still shutting down get a moment, then the group is killed: nothing outlives the daemon.
        for _ in range(50):
            if not _group_alive(process.pid):
                break
            await asyncio.sleep(0.1)
        _signal_group(process.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._process = process  # keep the pid/returncode visible for status


def _signal_group(pid: int, signum: signal.Signals) -> None:
    # The child leads its own session (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _exited(process: asyncio.subprocess.Process) -> None:
    """Until the child itself has exited. Not `process.wait()`: on Python 3.11 that also waits for
    its output pipe to close, which the dead server's own children (vLLM's engine core and worker)
    keep open, so a killed server would go unnoticed."""
    while process.returncode is None:  # noqa: ASYNC110 - returncode is set by the child watcher, no event
        await asyncio.sleep(0.1)
