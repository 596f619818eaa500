"""A raw LSP client over a server's stdio, for fuzzing: it sends any bytes (malformed frames too),
keeps one future per request id, answers what the server asks its editor, and notices the server
dying. Standard library only (it must not share the server's JSON-RPC code it is testing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ServerGone(Exception):
    """The server's output closed: it exited or crashed."""


@dataclass
class WireClient:
    process: asyncio.subprocess.Process
    pending: dict[Any, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    notifications: Counter[str] = field(default_factory=Counter)
    shown_errors: list[str] = field(default_factory=list)  # window/showMessage of type Error
    stray_responses: list[dict[str, Any]] = field(default_factory=list)  # ids we did not send (parse errors)
    sent: int = 0  # messages (frames) written
    next_id: int = 0
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, argv: list[str], env: dict[str, str], stderr: Path) -> WireClient:
        with stderr.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, limit=1 << 26
            )
        client = cls(process)
        client.reader = asyncio.create_task(client._read())
        return client

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.reader is not None and not self.reader.done()

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                length = 0
                while True:
                    line = await stdout.readline()
                    if not line:
                        return
                    if not line.strip():
                        break
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value)
                message = json.loads(await stdout.readexactly(length))
                await self._dispatch(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ServerGone("the server closed its output"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is not None and "id" in message:  # the server asks its editor
            await self.write_json({"jsonrpc": "2.0", "id": message["id"], "result": _answer(method, message.get("params"))})
        elif method is not None:
            self.notifications[method] += 1
            params = message.get("params") or {}
            if method == "window/showMessage" and params.get("type") == 1:
                self.shown_errors.append(str(params.get("message")))
        elif (future := self.pending.pop(message.get("id"), None)) is not None:
            if not future.done():
                future.set_result(message)
        else:
            self.stray_responses.append(message)

    async def write_frame(self, body: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing() or self.process.returncode is not None:
            raise ServerGone("the server is not running")
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.sent += 1
        try:
            await stdin.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            raise ServerGone(str(exc)) from exc

    async def write_json(self, message: dict[str, Any]) -> None:
        # ensure_ascii: a lone surrogate travels as \\udXXX, as an editor's JSON would carry it.
        await self.write_frame(json.dumps(message, ensure_ascii=True).encode())

    async def request(self, method: str, params: Any, msg_id: Any = None) -> tuple[Any, asyncio.Future[dict[str, Any]]]:
        if msg_id is None:
            self.next_id += 1
            msg_id = self.next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        await self.write_json({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def call(self, method: str, params: Any, timeout_s: float = 60) -> dict[str, Any]:
        _, future = await self.request(method, params)
        return await asyncio.wait_for(future, timeout_s)

    async def notify(self, method: str, params: Any) -> None:
        await self.write_json({"jsonrpc": "2.0", "method": method, "params": params})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call("shutdown", None, 10)
            await self.notify("exit", None)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()  # our own child, by its handle
            await self.process.wait()
        if self.reader is not None:
            self.reader.cancel()


def _answer(method: str, params: Any) -> Any:
    if method == "workspace/configuration":
        return [None] * len((params or {}).get("items", []))
    if method == "workspace/applyEdit":
        return {"applied": False, "failureReason": "the fuzzer applies no edits"}
    return None  # window/workDoneProgress/create, client/registerCapability, ...
