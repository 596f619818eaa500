"""Raw ASGI helpers for the streaming endpoints (ours and the OpenAI-compatible ones)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from starlette.types import Receive


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client left before sending it."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def until_disconnect(respond: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run `respond`, cancelling it the moment the client disconnects: that closes the event
    stream it iterates, which cancels the generation in the engine."""
    pump = asyncio.create_task(respond)

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        pump.cancel()

    watcher = asyncio.create_task(watch_disconnect())
    try:
        await pump
    except asyncio.CancelledError:
        if not pump.cancelled():
            raise
    finally:
        watcher.cancel()
