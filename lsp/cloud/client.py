"""The cloud hand-off's HTTP call: an OpenAI-compatible `POST {endpoint}/chat/completions`.

The API key is read from the environment only (`NEARCODE_CLOUD_API_KEY`, or the variable named by
`NEARCODE_CLOUD_API_KEY_ENV`), never from settings files; the model from `NEARCODE_CLOUD_MODEL`.
The body posted is the preview's bytes. No proxy from the environment is used, and the network
guard lets exactly the endpoint's host through, only in cloud-allowed mode.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from nearcode.lsp.cloud.payload import CloudPayload
from nearcode.shared import privacy

API_KEY_ENV = "NEARCODE_CLOUD_API_KEY"
MODEL_ENV = "NEARCODE_CLOUD_MODEL"
DEFAULT_MODEL = "gpt-4o-mini"


def api_key_env_name() -> str:
    return os.environ.get("NEARCODE_CLOUD_API_KEY_ENV") or API_KEY_ENV


def cloud_model() -> str:
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


class CloudError(RuntimeError):
    pass


@dataclass(frozen=True)
class CloudAnswer:
    text: str
    response_bytes: int


def endpoint_host(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CloudError(f"nearcode: cloudEndpoint {endpoint!r} is not an http(s) URL")
    return parts.hostname


def allow_endpoint(endpoint: str) -> None:
    """Open the guard for this endpoint's host and its addresses (cloud-allowed mode only)."""
    guard = privacy.network_guard()
    if guard is None or guard.mode != privacy.CLOUD_ALLOWED:
        return
    host = endpoint_host(endpoint)
    guard.allow(host)
    if not privacy.is_loopback(host):
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        guard.allow(*addresses)


async def send(payload: CloudPayload, timeout_s: float = 120.0) -> CloudAnswer:
    key = os.environ.get(api_key_env_name(), "")
    if not key:
        raise CloudError(f"nearcode: set the API key in the environment variable {api_key_env_name()}")
    allow_endpoint(payload.destination)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(trust_env=False, timeout=timeout_s) as client:
        try:
            response = await client.post(payload.destination, content=payload.body, headers=headers)
        except httpx.HTTPError as exc:
            raise CloudError(f"nearcode: the cloud endpoint failed: {exc!r}") from exc
    if response.status_code != 200:
        raise CloudError(f"nearcode: the cloud endpoint answered {response.status_code}: {response.text[:300]}")
    try:
        text = str(response.json()["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise CloudError(f"nearcode: unexpected answer from the cloud endpoint: {response.text[:300]}") from exc
    return CloudAnswer(text, len(response.content))
