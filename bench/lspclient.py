"""A small asyncio client for a language server on stdio (standard library only).

JSON-RPC with Content-Length framing; requests resolve a future each (with send and receive
times), notifications, `$/cancelRequest`, and answers to what a server asks its editor:
`workspace/configuration` (from the settings given, by section), `window/workDoneProgress/create`,
`client/registerCapability`, `workspace/workspaceFolders`, `workspace/applyEdit` (refused).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUEST_CANCELLED = -32800
METHOD_NOT_FOUND = -32601


class ServerDied(Exception):
    """The server's output closed (it exited or crashed) while we waited for it."""


@dataclass
class Pending:
    """One request in flight: its future resolves to the whole response message."""

    id: int
    method: str
    fut: asyncio.Future[dict[str, Any]]
    t_send: float = 0.0
    t_recv: float | None = None
    cancel_sent: bool = False

    @property
    def latency_ms(self) -> float | None:
        return None if self.t_recv is None else round((self.t_recv - self.t_send) * 1000, 2)


@dataclass
class LspClient:
    proc: asyncio.subprocess.Process
    settings: Any = None  # what workspace/configuration answers, by section
    workspace_folders: list[dict[str, str]] = field(default_factory=list)
    pending: dict[int, Pending] = field(default_factory=dict)
    notifications: collections.Counter[str] = field(default_factory=collections.Counter)
    server_requests: collections.Counter[str] = field(default_factory=collections.Counter)
    registered: set[str] = field(default_factory=set)  # methods registered dynamically
    next_id: int = 0
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, argv: list[str], env: dict[str, str] | None = None, stderr: Path | None = None,
                    cwd: str | None = None, settings: Any = None) -> LspClient:
        err: Any = subprocess.DEVNULL
        if stderr is not None:
            stderr.parent.mkdir(parents=True, exist_ok=True)
            err = stderr.open("ab")  # a local log file, handed to the child
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                        stderr=err, env=env, cwd=cwd, limit=1 << 24)
        finally:
            if stderr is not None:
                err.close()
        client = cls(proc, settings)
        client.reader = asyncio.create_task(client._read())
        return client

    @property
    def dead(self) -> bool:
        return self.reader is None or self.reader.done()

    async def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                length = -1
                while True:  # headers, up to an empty line
                    line = await stdout.readline()
                    if not line:
                        return
                    if not line.strip():
                        break
                    name, _, value = line.decode("ascii", "replace").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length < 0:
                    continue
                message = json.loads(await stdout.readexactly(length))
                if "method" in message and "id" in message:
                    await self._answer(message)
                elif "method" in message:
                    self.notifications[message["method"]] += 1
                elif (request := self.pending.pop(message.get("id"), None)) and not request.fut.done():
                    request.t_recv = time.perf_counter()
                    request.fut.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            for request in self.pending.values():
                if not request.fut.done():
                    request.fut.set_exception(ServerDied("the language server closed its output"))
            self.pending.clear()

    def _configuration(self, section: str | None) -> Any:
        node = self.settings
        for part in section.split(".") if section else []:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    async def _answer(self, message: dict[str, Any]) -> None:
        method, params = message["method"], message.get("params") or {}
        self.server_requests[method] += 1
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"], "result": None}
        if method == "workspace/configuration":
            reply["result"] = [self._configuration(item.get("section")) for item in params.get("items", [])]
        elif method == "client/registerCapability":
            self.registered.update(r.get("method") for r in params.get("registrations", []))
        elif method == "workspace/workspaceFolders":
            reply["result"] = self.workspace_folders
        elif method == "workspace/applyEdit":
            reply["result"] = {"applied": False, "failureReason": "the bench client applies no edits"}
        elif method not in ("window/workDoneProgress/create", "client/unregisterCapability",
                            "window/showMessageRequest") and not method.endswith("/refresh"):
            del reply["result"]
            reply["error"] = {"code": METHOD_NOT_FOUND, "message": f"bench client: {method} not handled"}
        with contextlib.suppress(ServerDied):
            await self._send(reply)

    async def _send(self, message: dict[str, Any]) -> float:
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing() or self.proc.returncode is not None:
            raise ServerDied("the language server is not running")
        body = json.dumps(message).encode()
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        sent = time.perf_counter()
        try:
            await stdin.drain()
        except ConnectionError as exc:
            raise ServerDied(f"writing to the language server failed: {exc}") from exc
        return sent

    async def request(self, method: str, params: Any) -> Pending:
        """Send a request; await `.fut` on the returned object for the response message."""
        if self.dead:
            raise ServerDied("the language server closed its output")
        self.next_id += 1
        pending = Pending(self.next_id, method, asyncio.get_running_loop().create_future())
        self.pending[pending.id] = pending
        pending.t_send = await self._send({"jsonrpc": "2.0", "id": pending.id, "method": method, "params": params})
        return pending

    async def call(self, method: str, params: Any, wait_s: float) -> Any:
        """A request's result (RuntimeError on an error answer, TimeoutError after `wait_s`)."""
        message = await asyncio.wait_for((await self.request(method, params)).fut, wait_s)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result")

    async def notify(self, method: str, params: Any) -> None:
        await self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def cancel(self, pending: Pending) -> None:
        """`$/cancelRequest` for a request not answered yet (the server still owes it an answer)."""
        if not pending.fut.done() and not pending.cancel_sent:
            pending.cancel_sent = True
            with contextlib.suppress(ServerDied):
                await self.notify("$/cancelRequest", {"id": pending.id})

    async def close(self, wait_s: float = 5.0) -> None:
        """shutdown + exit, then wait; terminate our own child (by its handle) if it lingers."""
        with contextlib.suppress(Exception):
            await self.call("shutdown", None, wait_s)
            await self.notify("exit", None)
        try:
            await asyncio.wait_for(self.proc.wait(), wait_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), wait_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
