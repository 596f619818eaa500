"""The language server's (and CLI's) client of the user's daemon.

Finds the daemon through its address file, starts one in the background when there is none (one
daemon serves every editor: concurrent starters race on the daemon's lock and all but one exit),
and follows it when it changes:
- a restarted daemon (new token, new address) is picked up from the address file on the next
  request, whether this client held a keep-alive connection to the old one or not;
- a daemon that dies mid-request is restarted at once in the background; the request ends quietly
  (DaemonRestarting) and the next one runs on the new daemon;
- a daemon that cannot start is retried with back-off (2 s, 4 s, ... 60 s), not on every keystroke;
  meanwhile every request fails at once with the reason (DaemonStartFailed);
- a daemon that sends nothing is given up on once the request's own deadline has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from nearcode.shared import paths
from nearcode.shared.endpoint import Endpoint, pid_alive
from nearcode.shared.instance_lock import lock_is_free
from nearcode.shared.protocol.daemon_api import (
    FimRequest,
    GenerateRequest,
    StreamEvent,
    parse_event,
)

log = logging.getLogger("nearcode.lsp")

_CONNECT_ERRORS = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
EXIT_ALREADY_RUNNING = 3  # daemon/server.py: another starter won the race for the lock
START_BACKOFF_S = (2.0, 4.0, 8.0, 16.0, 30.0, 60.0)  # wait after the 1st, 2nd, ... failed start
STREAM_GRACE_S = 5.0  # past a request's deadline, the daemon has had its chance to send its end
DEFAULT_READ_TIMEOUT_S = 120.0  # requests without a deadline


class DaemonUnavailable(RuntimeError):
    """The daemon could not be reached or started; the message says why and what to do."""


class DaemonStartFailed(DaemonUnavailable):
    """No daemon runs and starting one failed; retried after a back-off."""


class DaemonTimeout(DaemonUnavailable):
    """The daemon sent nothing until well past the request's deadline."""


class DaemonRestarting(DaemonUnavailable):
    """The daemon went away during the request; a new one is starting. Nobody needs to act."""


@dataclass(frozen=True)
class StartFailure:
    reason: str
    failures: int  # failed starts in a row
    retry_at: float  # time.monotonic() of the next attempt

    def describe(self) -> str:
        wait = max(0.0, self.retry_at - time.monotonic())
        return (
            f"the daemon could not start: {self.reason}. Check the model and engine with `nearcode doctor`; "
            f"the daemon's log is {paths.daemon_log_file()}. Next try in {wait:.0f} s (or when the settings change)"
        )


def backoff_s(failures: int) -> float:
    return START_BACKOFF_S[min(failures, len(START_BACKOFF_S)) - 1]


class DaemonClient:
    def __init__(
        self,
        spawn: bool = True,
        daemon_args: tuple[str, ...] = (),
        start_timeout_s: float = 180.0,
    ) -> None:
        self.spawn = spawn
        self._daemon_args = daemon_args
        self.start_timeout_s = start_timeout_s
        self.start_failure: StartFailure | None = None
        self.starts = 0  # daemons this client started
        self._endpoint: Endpoint | None = None
        self._http: httpx.AsyncClient | None = None
        self._starting: asyncio.Lock | None = None
        self._restart: asyncio.Task[None] | None = None
        # Requests streaming on each client: a client is closed only once none does (closing it
        # under them would break every other request in flight, as if the daemon had gone).
        self._in_use: Counter[httpx.AsyncClient] = Counter()
        self._retired: set[httpx.AsyncClient] = set()
        self._children: list[subprocess.Popen[bytes]] = []  # daemons this client started, reaped

    @property
    def endpoint(self) -> Endpoint | None:
        return self._endpoint

    @property
    def daemon_args(self) -> tuple[str, ...]:
        return self._daemon_args

    @daemon_args.setter
    def daemon_args(self, args: tuple[str, ...]) -> None:
        if args != self._daemon_args:
            self.start_failure = None  # new settings: the next request may try at once
        self._daemon_args = args

    async def close(self) -> None:
        if self._restart is not None:
            self._restart.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def connect(self) -> Endpoint:
        """A working connection to the daemon, starting it if allowed and needed."""
        if self._http is not None and self._endpoint is not None:
            return self._endpoint
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._http is not None and self._endpoint is not None:
                return self._endpoint
            self._reap()
            endpoint = Endpoint.read(paths.address_file())
            if endpoint is not None and pid_alive(endpoint.pid) and await self._try(endpoint):
                self.start_failure = None  # someone else (or the user) fixed it
                return endpoint
            if not self.spawn:
                raise DaemonUnavailable("no nearcode daemon is running (start one with `nearcode daemon`)")
            failure = self.start_failure
            if failure is not None and time.monotonic() < failure.retry_at:
                raise DaemonStartFailed(failure.describe())
            try:
                endpoint = await self._start_daemon()
            except DaemonUnavailable as exc:
                failures = failure.failures + 1 if failure else 1
                self.start_failure = StartFailure(str(exc), failures, time.monotonic() + backoff_s(failures))
                log.error("daemon start %d failed: %s", failures, exc)
                raise DaemonStartFailed(self.start_failure.describe()) from exc
            self.start_failure = None
            return endpoint

    async def _try(self, endpoint: Endpoint) -> bool:
        client = _http_client(endpoint)
        try:
            response = await client.get("/api/health", timeout=5.0)
            if response.status_code == 200:
                self._forget()
                self._http, self._endpoint = client, endpoint
                return True
        except (httpx.HTTPError, OSError):
            pass
        await client.aclose()
        return False

    async def _start_daemon(self) -> Endpoint:
        log_path = paths.daemon_log_file()
        # -P: never import from the working directory (a user project may have its own `daemon/`).
        command = [sys.executable, "-P", "-m", "nearcode", "daemon", *self.daemon_args]
        log.info("starting the daemon: %s (log %s)", " ".join(command), log_path)
        written_before = _log_size(log_path)  # this start's own output follows
        process = self._spawn(command, log_path)
        give_up = time.monotonic() + self.start_timeout_s
        while time.monotonic() < give_up:
            endpoint = Endpoint.read(paths.address_file())
            if endpoint is not None and pid_alive(endpoint.pid) and await self._try(endpoint):
                return endpoint
            code = process.poll()
            if code is not None and code != EXIT_ALREADY_RUNNING:
                raise DaemonUnavailable(f"it exited with code {code}: {_reason(log_path, written_before)}")
            if code == EXIT_ALREADY_RUNNING and _nobody_serves():
                # The lock's holder was a daemon on its way out (it lets go once it has withdrawn
                # its address): start again rather than wait for an address nobody will write.
                await asyncio.sleep(0.2)
                if _nobody_serves():
                    process = self._spawn(command, log_path)
            await asyncio.sleep(0.1)
        raise DaemonUnavailable(
            f"it did not start within {self.start_timeout_s:.0f}s: {_reason(log_path, written_before)}"
        )

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log_file:
            process = subprocess.Popen(  # fork/exec only, it does not wait
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # outlives this editor: other editors share it
                close_fds=True,
                env=os.environ.copy(),
            )
        self._children.append(process)
        self.starts += 1
        return process

    def _reap(self) -> None:
        """Collect daemons this client started that have exited (no zombies over a long session)."""
        self._children = [child for child in self._children if child.poll() is None]

    def _forget(self, http: httpx.AsyncClient | None = None) -> None:
        """Stop using a connection to the daemon (by default the current one): the next request
        reads the address file again. It is closed once no request streams on it."""
        http = http or self._http
        if http is None:
            return
        if http is self._http:
            self._http, self._endpoint = None, None
        if self._in_use[http]:
            self._retired.add(http)
        else:
            asyncio.get_running_loop().create_task(http.aclose())

    @contextlib.contextmanager
    def _using(self) -> Iterator[httpx.AsyncClient]:
        http = self._http
        assert http is not None
        self._in_use[http] += 1
        try:
            yield http
        finally:
            self._in_use[http] -= 1
            if not self._in_use[http]:
                del self._in_use[http]
                if http in self._retired:
                    self._retired.discard(http)
                    asyncio.get_running_loop().create_task(http.aclose())

    def _restart_soon(self) -> None:
        """The daemon died: start the next one now, not at the next keystroke."""
        if self._restart is None or self._restart.done():
            self._restart = asyncio.get_running_loop().create_task(self._restart_quietly())

    async def _restart_quietly(self) -> None:
        with contextlib.suppress(DaemonUnavailable):  # recorded in start_failure for the next request
            await self.connect()

    async def get_json(self, path: str) -> dict[str, Any]:
        return await self._json("GET", path)

    async def post_json(self, path: str, body: BaseModel, timeout_s: float = 10.0) -> dict[str, Any]:
        """POST a request model (defaults left out: the daemon has them too); the answer's JSON."""
        return await self._json("POST", path, body.model_dump_json(exclude_defaults=True), timeout_s)

    async def _json(self, method: str, path: str, content: str | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
        """One JSON request, retried once on a fresh daemon if the old one is gone."""
        headers = _JSON if content is not None else None
        for attempt in (0, 1):
            await self.connect()
            with self._using() as http:
                try:
                    response = await http.request(method, path, content=content, headers=headers, timeout=timeout_s)
                    if response.status_code == 401 and not attempt:  # a new daemon with a new token
                        self._forget(http)
                        continue
                    response.raise_for_status()
                    return dict(response.json())
                except _CONNECT_ERRORS:
                    self._forget(http)
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    async def shutdown(self, wait_s: float = 30.0) -> bool:
        try:
            await self.connect()
        except DaemonUnavailable:
            return False
        assert self._http is not None and self._endpoint is not None
        pid = self._endpoint.pid
        with contextlib.suppress(*_CONNECT_ERRORS):
            await self._http.post("/api/shutdown", timeout=10.0)
        self._forget()
        # Stopped means gone: `nearcode stop && nearcode daemon` must not meet the old one.
        for _ in range(int(wait_s / 0.1)):
            if not pid_alive(pid):
                break
            await asyncio.sleep(0.1)
        return True

    async def stream_fim(self, request: FimRequest) -> AsyncIterator[StreamEvent]:
        """Events of one FIM request. Retried once on a fresh daemon if the old one is gone."""
        # aclosing: a consumer that stops early closes the HTTP stream now, which cancels the
        # generation in the daemon (not whenever the inner generator is garbage-collected).
        async with contextlib.aclosing(self._stream("/api/fim", request)) as events:
            async for event in events:
                yield event

    async def stream_generate(self, request: GenerateRequest) -> AsyncGenerator[StreamEvent, None]:
        """Events of one instruction task (`/api/generate`: docstrings, tests), same retry as FIM."""
        async with contextlib.aclosing(self._stream("/api/generate", request)) as events:
            async for event in events:
                yield event

    async def _stream(
        self, path: str, request: FimRequest | GenerateRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        body = request.model_dump_json(exclude_defaults=True)
        timeout = stream_timeout(request.deadline_ms)
        for attempt in (0, 1):
            endpoint = await self.connect()
            received = False
            with self._using() as http:
                try:
                    async with http.stream("POST", path, content=body, headers=_JSON, timeout=timeout) as response:
                        if response.status_code == 401 and not attempt:
                            # Another daemon answers at this address now (restarted: new token).
                            log.info("the daemon's token changed; reading its address file again")
                            self._forget(http)
                            continue
                        if response.status_code != 200:
                            text = (await response.aread()).decode(errors="replace")
                            raise DaemonUnavailable(f"daemon refused the request ({response.status_code}): {text[:300]}")
                        async for line in response.aiter_lines():
                            if line:
                                received = True
                                yield parse_event(line)
                    return
                except httpx.TimeoutException as exc:
                    self._forget(http)  # it may be hung: the next request checks its health first
                    raise DaemonTimeout(
                        f"the daemon sent nothing for {timeout.read:.0f} s, past the request's deadline "
                        f"({exc.__class__.__name__}); its log is {paths.daemon_log_file()}"
                    ) from exc
                except _CONNECT_ERRORS as exc:
                    self._forget(http)
                    if received or attempt:
                        if self.spawn and not pid_alive(endpoint.pid):
                            self._restart_soon()
                            raise DaemonRestarting("the daemon stopped during the request; a new one is starting") from exc
                        raise DaemonUnavailable(f"lost the daemon mid-request: {exc!r}") from exc
                    log.warning("daemon unreachable (%r); restarting it", exc)


_JSON = {"content-type": "application/json"}


def stream_timeout(deadline_ms: int | None) -> httpx.Timeout:
    """Longest silence from the daemon: the request's own deadline plus a grace period."""
    read = deadline_ms / 1000 + STREAM_GRACE_S if deadline_ms else DEFAULT_READ_TIMEOUT_S
    return httpx.Timeout(connect=5.0, read=read, write=10.0, pool=10.0)


def _http_client(endpoint: Endpoint) -> httpx.AsyncClient:
    transport = (
        httpx.AsyncHTTPTransport(uds=endpoint.path) if endpoint.transport == "unix" else httpx.AsyncHTTPTransport()
    )
    return httpx.AsyncClient(
        base_url=endpoint.base_url,
        transport=transport,
        headers={"Authorization": f"Bearer {endpoint.token}"},
        trust_env=False,  # the daemon is local: never through a proxy from the environment
    )


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _nobody_serves() -> bool:
    """No live daemon's address, and the lock free: whoever held it has gone."""
    endpoint = Endpoint.read(paths.address_file())
    return (endpoint is None or not pid_alive(endpoint.pid)) and lock_is_free()


def _reason(path: os.PathLike[str], since: int) -> str:
    """Why a daemon did not start: its own `nearcode: ...` message if it printed one (the fix is in
    it), else the last lines it wrote to the log."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(since if since <= size else max(0, size - 4000))  # rotated meanwhile: the end
            text = f.read()[-8000:].decode(errors="replace")
    except OSError:
        return "(no log)"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    own = [line for line in lines if line.startswith("nearcode: ")]
    return own[-1][len("nearcode: ") :] if own else " | ".join(lines[-3:]) or "(it wrote nothing)"
