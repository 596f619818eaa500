"""An OpenAI-compatible server in front of a real one (llama.cpp's, tests/llama_server.py) that can
be told to break the way remote servers and proxies break: a stream that turns into garbage
mid-answer, or a stream that goes silent. Everything else passes through unchanged.

It runs in a thread of the test process (starlette + uvicorn) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.llama_server import free_port

Mode = Literal["pass", "garbage", "silent"]
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "host"}


class FaultyUpstream:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode: Mode = "pass"
        self.port = free_port()
        routes = [Route("/{path:path}", self._handle, methods=["GET", "POST"])]
        self._server = uvicorn.Server(
            uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, name="faulty-upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultyUpstream:
        self._thread.start()
        give_up = time.monotonic() + 30
        while not self._server.started and time.monotonic() < give_up:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        if path.endswith("/completions") and self.mode != "pass":
            return StreamingResponse(self._broken_stream(self.mode), media_type="text/event-stream")
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        client = httpx.AsyncClient(timeout=None, trust_env=False)
        upstream = await client.send(
            client.build_request(request.method, self.upstream + path, content=body, headers=headers), stream=True
        )

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()
                await client.aclose()

        out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(relay(), status_code=upstream.status_code, headers=out)

    @staticmethod
    async def _broken_stream(mode: Mode) -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"index": 0, "text": "x", "finish_reason": null}]}\n\n'
        if mode == "garbage":  # a proxy's error page, a truncated write: not JSON
            yield b"data: {<html>502 Bad Gateway\n\n"
            return
        await asyncio.sleep(3600)  # silent: the connection stays open, nothing more comes
