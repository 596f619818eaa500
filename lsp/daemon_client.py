"""The language server's (and CLI's) client of the user's daemon.

Finds the daemon through its address file, starts one in the background when there is none (one
daemon serves every editor: concurrent starters race on the daemon's lock and all but one exit),
and restarts it when it died: a request that finds the daemon gone starts a new one and is retried
once, so a crashed daemon costs one slow completion, not a broken editor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel

from nearcode.shared import paths
from nearcode.shared.endpoint import Endpoint, pid_alive
from nearcode.shared.protocol.daemon_api import (
    FimRequest,
    GenerateRequest,
    StreamEvent,
    parse_event,
)

log = logging.getLogger("nearcode.lsp")

_CONNECT_ERRORS = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class DaemonUnavailable(RuntimeError):
    """The daemon could not be reached or started; the message says why."""


class DaemonClient:
    def __init__(
        self,
        spawn: bool = True,
        daemon_args: tuple[str, ...] = (),
        start_timeout_s: float = 180.0,
    ) -> None:
        self.spawn = spawn
        self.daemon_args = daemon_args
        self.start_timeout_s = start_timeout_s
        self._endpoint: Endpoint | None = None
        self._http: httpx.AsyncClient | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def endpoint(self) -> Endpoint | None:
        return self._endpoint

    async def close(self) -> None:
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
            endpoint = Endpoint.read(paths.address_file())
            if endpoint is not None and pid_alive(endpoint.pid) and await self._try(endpoint):
                return endpoint
            if not self.spawn:
                raise DaemonUnavailable("no nearcode daemon is running (start one with `nearcode daemon`)")
            return await self._start_daemon()

    async def _try(self, endpoint: Endpoint) -> bool:
        client = _http_client(endpoint)
        try:
            response = await client.get("/api/health", timeout=5.0)
            if response.status_code == 200:
                await self.close()
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
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log_file:
            process = subprocess.Popen(  # noqa: ASYNC220 - fork/exec only, it does not wait
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # outlives this editor: other editors share it
                close_fds=True,
                env=os.environ.copy(),
            )
        give_up = time.monotonic() + self.start_timeout_s
        while time.monotonic() < give_up:
            endpoint = Endpoint.read(paths.address_file())
            if endpoint is not None and pid_alive(endpoint.pid) and await self._try(endpoint):
                return endpoint
            code = process.poll()
            if code is not None and code != 3:  # 3: another starter won the race; keep waiting
                raise DaemonUnavailable(f"the daemon exited with code {code}: {_tail(log_path)}")
            await asyncio.sleep(0.1)
        raise DaemonUnavailable(f"the daemon did not start within {self.start_timeout_s:.0f}s: {_tail(log_path)}")

    def _forget(self) -> None:
        http, self._http, self._endpoint = self._http, None, None
        if http is not None:
            asyncio.get_running_loop().create_task(http.aclose())

    async def get_json(self, path: str) -> dict[str, Any]:
        return await self._json("GET", path)

    async def post_json(self, path: str, body: BaseModel) -> dict[str, Any]:
        """A small JSON request (prefill, context report)."""
        return await self._json("POST", path, body.model_dump_json(exclude_defaults=True))

    async def _json(self, method: str, path: str, content: str | None = None) -> dict[str, Any]:
        """One JSON request and answer; retried once on a fresh daemon if the old one is gone."""
        for attempt in (0, 1):
            await self.connect()
            assert self._http is not None
            try:
                headers = _JSON if content is not None else None
                response = await self._http.request(method, path, content=content, headers=headers, timeout=10.0)
                response.raise_for_status()
                return dict(response.json())
            except _CONNECT_ERRORS:
                self._forget()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def shutdown(self) -> bool:
        try:
            await self.connect()
        except DaemonUnavailable:
            return False
        assert self._http is not None
        with contextlib.suppress(*_CONNECT_ERRORS):
            await self._http.post("/api/shutdown", timeout=10.0)
        self._forget()
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
        for attempt in (0, 1):
            await self.connect()
            assert self._http is not None
            received = False
            try:
                async with self._http.stream(
                    "POST", path, content=body, headers=_JSON, timeout=_STREAM_TIMEOUT
                ) as response:
                    if response.status_code != 200:
                        text = (await response.aread()).decode(errors="replace")
                        raise DaemonUnavailable(f"daemon refused the request ({response.status_code}): {text[:300]}")
                    async for line in response.aiter_lines():
                        if line:
                            received = True
                            yield parse_event(line)
                return
            except _CONNECT_ERRORS as exc:
                self._forget()
                if received or attempt:
                    raise DaemonUnavailable(f"lost the daemon mid-request: {exc!r}") from exc
                log.warning("daemon unreachable (%r); restarting it", exc)


_JSON = {"content-type": "application/json"}
_STREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=10.0, pool=10.0)


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


def _tail(path: os.PathLike[str], lines: int = 5) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4000))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(line for line in text.strip().splitlines()[-lines:])
