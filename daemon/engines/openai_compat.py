"""A remote engine: any server that speaks OpenAI's `/v1/completions` with streaming.

vLLM (`vllm serve`, alone or behind a router), llama.cpp's server, Ollama, LM Studio and hosted
providers all do. nearcode sends the prompt it built itself (FIM tokens of the model's family
included) and never `suffix`: vLLM rejects `suffix` for nearly every model, and servers that accept
it each apply their own idea of the template.

- Streaming is Server-Sent Events: `data: {json}` events, then `data: [DONE]`.
- The API key is read from an environment variable whose *name* is configured, when the engine
  starts; it is never written to a config file or log.
- Connection errors (refused, reset, DNS, TLS handshake, no response at all) are retried with
  exponential back-off, but only before the response has started: once a token has arrived a
  retry would repeat text, so the error ends the generation instead. At start, the model list is
  also retried on 503 (a server still loading its model).
- Cancelling (closing the generator) closes the HTTP stream. vLLM aborts a request whose client
  disconnects, and llama.cpp's server stops at its next token, so the GPU/CPU work stops too.
  Tokens generated after the close cannot be seen over HTTP: the cancel is counted, the waste is
  recorded as 0.
- `count_tokens` uses the server's `/tokenize` (vLLM: `{"model", "prompt"}` -> `{"count",
  "tokens", "max_model_len"}`; llama.cpp: `{"content"}` -> `{"tokens"}`), probed once at start;
  without it, an estimate of 3.5 characters a token.
- Stop strings: OpenAI's API and vLLM take at most 4 (vLLM answers HTTP 400 to more). Stops that
  are special tokens of a known tokenizer go as `stop_token_ids`, the shortest text stops as
  `stop`, and any left over are matched on the streamed text here (daemon/engines/stop_strings.py).
- `uds`: a server on a unix socket (the daemon's own vLLM child): no TCP at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import httpx

from nearcode.daemon.engines.base import (
    CancelCounters,
    EngineError,
    EngineInfo,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
)
from nearcode.daemon.engines.openai_stream import (
    describe,
    error_text,
    estimate_tokens,
    raise_for_status,
    root_url,
    sse_events,
)
from nearcode.daemon.engines.results import GenerationClock, finish_reason_of, read_usage
from nearcode.daemon.engines.stop_strings import StopScanner, split_stops

log = logging.getLogger("nearcode.engine.openai")

# Kept importable from here: the tests and older callers use these names.
_sse_events = sse_events
__all__ = ["OpenAICompatConfig", "OpenAICompatEngine", "estimate_tokens"]

_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.PoolTimeout)


@dataclass(frozen=True)
class OpenAICompatConfig:
    base_url: str  # "https://llm.example.com" or ".../v1"; /v1 is added where needed
    model: str = ""  # served model id; empty: the first one /v1/models lists
    api_key_env: str = ""  # NAME of the environment variable holding the key ("" = no key)
    verify_tls: bool = True
    ca_bundle: str = ""  # PEM file of a private CA (a team's internal certificate authority)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0  # longest silence between two streamed events
    retries: int = 3  # extra attempts after a connection error
    backoff_s: float = 0.25  # first back-off; doubles each attempt
    # vLLM started with `--scheduling-policy priority` orders requests by this (lower first).
    send_priority: bool = False
    parallel_slots: int = 8  # how many requests the daemon lets run at once against the server
    engine_name: str = "openai"
    extra_body: dict[str, Any] = field(default_factory=dict)  # sent with every completion
    uds: str = ""  # a unix socket to connect through (base_url then only names the host header)
    # Special tokens of the served model -> their ids: those stops go as vLLM's `stop_token_ids`.
    special_token_ids: dict[str, int] = field(default_factory=dict)
    max_stop_strings: int | None = 4  # OpenAI's and vLLM's limit; None: send them all


class OpenAICompatEngine:
    def __init__(self, config: OpenAICompatConfig) -> None:
        self._config = config
        self._root = root_url(config.base_url)
        self._http: httpx.AsyncClient | None = None
        self._model = config.model
        self._tokenize_shape = ""  # "vllm", "llamacpp" or "" (estimate)
        self._context_tokens = 0
        self._cancel_counters = CancelCounters()
        self._api_key = ""  # handed over in process (a supervised child's key), else from env

    def set_api_key(self, key: str) -> None:
        self._api_key = key

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            engine=self._config.engine_name,
            model=self._model or "(not connected)",
            model_path=self._root,
            context_tokens=self._context_tokens,
            parallel_slots=self._config.parallel_slots,
            metadata={"tokenizer": self._tokenize_shape or "estimate", "url": self._root},
        )

    @property
    def cancel_counters(self) -> CancelCounters:
        return self._cancel_counters

    @property
    def base_url(self) -> str:
        return self._root

    async def start(self) -> None:
        cfg = self._config
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        if cfg.api_key_env and not self._api_key:
            key = os.environ.get(cfg.api_key_env, "")
            if not key:
                raise EngineError(
                    f"the API key variable {cfg.api_key_env} is empty or unset. Fix: export "
                    f"{cfg.api_key_env}=<key> in the daemon's environment"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.AsyncClient(
            headers=headers,
            transport=httpx.AsyncHTTPTransport(uds=cfg.uds, retries=0) if cfg.uds else None,
            verify=_tls(cfg),
            timeout=httpx.Timeout(cfg.read_timeout_s, connect=cfg.connect_timeout_s),
            limits=httpx.Limits(max_connections=max(4, cfg.parallel_slots * 2)),
            # Never route through a proxy from the environment: code must go where it was sent.
            trust_env=False,
        )
        models = await self._request_json("GET", "/v1/models", None, retry=True)
        served = [str(m.get("id", "")) for m in (models or {}).get("data", []) if isinstance(m, dict)]
        if not self._model:
            if not served:
                raise EngineError(f"{self._root} lists no models; set the model id explicitly")
            self._model = served[0]
        elif served and self._model not in served:
            raise EngineError(
                f"{self._root} does not serve {self._model!r} (it serves {', '.join(served)})"
            )
        for entry in (models or {}).get("data", []):
            if isinstance(entry, dict) and entry.get("id") == self._model:
                self._context_tokens = int(entry.get("max_model_len") or 0)
        await self._probe_tokenizer()
        log.info("connected to %s, model %s, tokenizer %s", self._root, self._model, self._tokenize_shape or "estimate")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        if self._tokenize_shape:
            try:
                return len(await self._tokenize(text))
            except (httpx.HTTPError, EngineError, KeyError, ValueError) as exc:
                log.debug("tokenize failed (%s): estimating", exc)
        return estimate_tokens(text)

    async def _tokenize(self, text: str) -> list[int]:
        assert self._http is not None, "engine not started"
        if self._tokenize_shape == "vllm":
            body: dict[str, Any] = {"model": self._model, "prompt": text, "add_special_tokens": False}
        else:
            body = {"content": text, "add_special": False}
        response = await self._http.post(f"{self._root}/tokenize", json=body)
        response.raise_for_status()
        data = response.json()
        if "max_model_len" in data and not self._context_tokens:
            self._context_tokens = int(data["max_model_len"])
        return list(data["tokens"])

    async def _probe_tokenizer(self) -> None:
        # A non-empty probe: llama.cpp answers a body without "content" with an empty token list.
        # It also checks the key: llama.cpp and vLLM list models without one, /tokenize needs it.
        for shape in ("vllm", "llamacpp"):
            self._tokenize_shape = shape
            try:
                if await self._tokenize("def probe(): pass"):
                    return
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (401, 403):
                    raise_for_status(exc.response, self._config.api_key_env)
            except (httpx.HTTPError, KeyError, ValueError, TypeError):
                pass
        self._tokenize_shape = ""

    async def _request_json(self, method: str, path: str, body: Any, retry: bool) -> Any:
        assert self._http is not None, "engine not started"
        url = f"{self._root}{path}"
        for attempt in range(self._config.retries + 1 if retry else 1):
            try:
                response = await self._http.request(method, url, json=body)
            except _RETRYABLE as exc:
                if attempt >= self._config.retries or not retry:
                    raise EngineError(f"cannot reach {self._root}: {describe(exc)}") from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            except httpx.HTTPError as exc:
                raise EngineError(f"{self._root}: {describe(exc)}") from exc
            if response.status_code == 404 and path == "/v1/models":
                return None  # some servers have no model list; the configured id is used as is
            if response.status_code == 503 and retry and attempt < self._config.retries:
                # Start-up only (an idempotent GET): llama.cpp answers 503 while loading the model.
                await asyncio.sleep(self._backoff(attempt))
                continue
            raise_for_status(response, self._config.api_key_env)
            return response.json()
        raise EngineError(f"cannot reach {self._root}")

    def _backoff(self, attempt: int) -> float:
        return float(self._config.backoff_s * (2**attempt))

    def _body(self, request: GenerationRequest) -> tuple[dict[str, Any], StopScanner | None]:
        """The request body, and a scanner for the stop strings the server was not given."""
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": request.prompt,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._config.extra_body,
        }
        plan = split_stops(request.stop, self._config.special_token_ids, self._config.max_stop_strings)
        if plan.strings:
            body["stop"] = list(plan.strings)
        if plan.token_ids:
            body["stop_token_ids"] = list(plan.token_ids)
        if self._config.send_priority:
            body["priority"] = int(request.priority)  # vLLM: lower values are scheduled first
        return body, StopScanner(plan.client_side) if plan.needs_scanner else None

    async def get_text(self, path: str, timeout_s: float = 2.0) -> str:
        """A plain GET (vLLM's /metrics), for status; raises httpx.HTTPError."""
        assert self._http is not None, "engine not started"
        response = await self._http.get(f"{self._root}{path}", timeout=timeout_s)
        response.raise_for_status()
        return response.text

    async def runtime_status(self) -> dict[str, object]:
        return {}  # a remote server's counters are its operators' business

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if self._http is None:
            raise EngineError("engine not started")
        stats = GenerationStats()
        finish: FinishReason | None = None
        clock = GenerationClock(request)
        body, scanner = self._body(request)
        url = f"{self._root}/v1/completions"
        sent_at = time.monotonic()
        response = await self._open_stream(url, body)
        events = sse_events(response.aiter_lines())
        done = False
        try:
            while scanner is None or not scanner.stopped:  # a client-side stop ends the stream here
                timeout = clock.time_left()
                if timeout is not None and timeout <= 0:
                    finish = FinishReason.DEADLINE
                    break
                try:
                    data = await asyncio.wait_for(anext(events), timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    finish = FinishReason.DEADLINE
                    break
                except httpx.HTTPError as exc:
                    # Mid-stream failure: never retried (the text so far was already sent on).
                    raise EngineError(f"{self._root}: stream broke: {describe(exc)}") from exc
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    raise EngineError(f"{self._root}: {error_text(event['error'])}")
                for choice in event.get("choices") or []:
                    text = choice.get("text") or ""
                    if text:
                        if clock.first_token_at is None:
                            clock.token()
                            # Time to the first token: the prompt read (and any queueing), as the
                            # daemon's prompt budget wants it; llama.cpp's own timing replaces it.
                            stats.prompt_ms = (time.monotonic() - sent_at) * 1000
                        stats.generated_tokens += 1
                        if scanner is not None:
                            text = scanner.feed(text)
                            if scanner.stopped:
                                finish = FinishReason.STOP
                        if text:
                            yield GenerationChunk(text)
                    if finish is None:
                        finish = finish_reason_of(choice.get("finish_reason"))
                read_usage(event, stats)
            if scanner is not None and (rest := scanner.flush()):
                yield GenerationChunk(rest)
            done = True
            yield GenerationChunk("", finish or FinishReason.STOP, stats)
        except (GeneratorExit, asyncio.CancelledError):
            if not done:  # the consumer went away mid-generation: a cancellation
                self._cancel_counters.record(0)
            raise
        finally:
            await events.aclose()
            await response.aclose()  # the server sees the disconnect and aborts the request

    async def _open_stream(self, url: str, body: dict[str, Any]) -> httpx.Response:
        assert self._http is not None
        for attempt in range(self._config.retries + 1):
            request = self._http.build_request("POST", url, json=body)
            try:
                response = await self._http.send(request, stream=True)
            except _RETRYABLE as exc:
                if attempt >= self._config.retries:
                    raise EngineError(f"cannot reach {self._root}: {describe(exc)}") from exc
                log.info("connection to %s failed (%s); retry %d", self._root, describe(exc), attempt + 1)
                await asyncio.sleep(self._backoff(attempt))
                continue
            except httpx.HTTPError as exc:
                raise EngineError(f"{self._root}: {describe(exc)}") from exc
            if response.status_code >= 400:
                await response.aread()
                await response.aclose()
                raise_for_status(response, self._config.api_key_env)
            return response
        raise EngineError(f"cannot reach {self._root}")


def _tls(config: OpenAICompatConfig) -> ssl.SSLContext | bool:
    if not config.verify_tls:
        return False
    if config.ca_bundle:
        try:
            return ssl.create_default_context(cafile=config.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise EngineError(f"cannot load the CA bundle {config.ca_bundle}: {exc}") from exc
    return True
