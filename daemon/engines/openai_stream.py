"""The wire side of the OpenAI-compatible client: Server-Sent Events, errors, URLs, token estimates."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from nearcode.daemon.engines.base import EngineError

CHARS_PER_TOKEN_ESTIMATE = 3.5


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


def root_url(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


async def sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """The data of each Server-Sent Event (multi-line data joined by newlines)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment / keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def raise_for_status(response: httpx.Response, api_key_env: str) -> None:
    if response.status_code < 400:
        return
    try:
        detail = error_text(response.json().get("error", response.text))
    except ValueError:
        detail = response.text[:300]
    if response.status_code in (401, 403):
        hint = f" (check ${api_key_env})" if api_key_env else " (the server wants an API key: set --api-key-env)"
        raise EngineError(f"the server refused the API key: {response.status_code} {detail}{hint}")
    raise EngineError(f"server error {response.status_code}: {detail}")


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
