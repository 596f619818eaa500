"""OpenAI-compatible endpoints on the daemon, so other tools use the model nearcode already holds.

`GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`, streaming (SSE) or not,
behind the daemon's bearer token (Continue, minuet-ai.nvim, llm.nvim and scripts send it as their
API key). Completions take a raw prompt, or a prompt plus `suffix`, in which case nearcode builds
the fill-in-the-middle prompt with the model family's template. Chat renders the messages with the
family's chat template. Everything goes through the daemon's scheduler, so an editor's inline
completion still comes first: raw completions run at interactive priority, chat at speculative.
A client that disconnects cancels its generation in the engine, streaming or not.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from nearcode.daemon.asgi import read_body, until_disconnect
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.generate_service import GenerateService
from nearcode.daemon.streams import ServiceError, ServiceEvent
from nearcode.shared.protocol.daemon_api import (
    ChatMessageIn,
    DoneEvent,
    FimRequest,
    GenerateRequest,
)

_FINISH = {"length": "length", "deadline": "length"}  # everything else ends as "stop"


class StreamOptions(BaseModel):
    include_usage: bool = False


class _OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tools send fields we do not use (top_p, user, ...)

    model: str = ""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)  # greedy unless asked: best for code
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else self.stop[:16]


class CompletionRequestIn(_OpenAIRequest):
    prompt: str | list[str]
    suffix: str | None = None
    max_tokens: int = Field(default=16, ge=1, le=8192)  # OpenAI's default


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ChatMessageOpenAI(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatRequestIn(_OpenAIRequest):
    messages: list[ChatMessageOpenAI] = Field(min_length=1, max_length=200)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)


class OpenAIEndpoint:
    """Raw ASGI, like /api/fim: a disconnect must cancel even before the first byte is sent."""

    def __init__(self, fim: FimService, generate: GenerateService, model_name: Callable[[], str], kind: str) -> None:
        self.fim = fim
        self.generate = generate
        self.model_name = model_name
        self.kind = kind  # "completions" or "chat"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        if body is None:
            return
        try:
            request: CompletionRequestIn | ChatRequestIn = (
                CompletionRequestIn.model_validate_json(body) if self.kind == "completions"
                else ChatRequestIn.model_validate_json(body)
            )
            if isinstance(request, CompletionRequestIn) and isinstance(request.prompt, list) and len(request.prompt) != 1:
                raise ValueError("only one prompt per request is supported")
        except (ValidationError, ValueError) as exc:
            await _error(send, receive, scope, 400, _validation_message(exc))
            return
        await until_disconnect(self._respond(request, send), receive)

    def _events(self, request: CompletionRequestIn | ChatRequestIn) -> AsyncGenerator[ServiceEvent, None]:
        if isinstance(request, ChatRequestIn):
            return _closing(self.generate.generate(
                GenerateRequest(
                    messages=[
                        ChatMessageIn(role="system" if m.role == "developer" else m.role, content=m.text())
                        for m in request.messages
                    ],
                    max_tokens=request.max_completion_tokens or request.max_tokens or 512,
                    temperature=request.temperature,
                    stop=request.stops(),
                    priority="speculative",
                )
            ))
        prompt = request.prompt if isinstance(request.prompt, str) else request.prompt[0]
        if request.suffix is not None:  # FIM: nearcode writes the family's template around it
            # The family's stops always apply; of the caller's, a newline means one line (the
            # daemon's single-line mode), other stop strings are not applied on this path.
            mode: Literal["single", "multi"] = "single" if "\n" in request.stops() else "multi"
            return _closing(self.fim.stream(
                FimRequest(prefix=prompt, suffix=request.suffix, mode=mode, max_tokens=min(request.max_tokens, 2048))
            ))
        return _closing(self.generate.raw(prompt, request.max_tokens, tuple(request.stops()), request.temperature))

    async def _respond(self, request: CompletionRequestIn | ChatRequestIn, send: Send) -> None:
        chat = isinstance(request, ChatRequestIn)
        ident = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)
        base = {"id": ident, "created": int(time.time()), "model": self.model_name()}
        async with contextlib.aclosing(self._events(request)) as events:
            await self._send(request, events, chat, base, send)

    async def _send(
        self, request: CompletionRequestIn | ChatRequestIn, events: AsyncIterator[ServiceEvent], chat: bool,
        base: dict[str, Any], send: Send,
    ) -> None:
        if not request.stream:
            text, final = "", DoneEvent(finish_reason="stop")
            try:
                async for event in events:
                    if isinstance(event, DoneEvent):
                        final = event
                    else:
                        text += event.text
            except ServiceError as exc:
                await _send_json(send, 500, _error_body(str(exc), "server_error"))
                return
            choice: dict[str, Any] = {"index": 0, "finish_reason": _FINISH.get(final.finish_reason, "stop")}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice |= {"text": text, "logprobs": None}
            obj = "chat.completion" if chat else "text_completion"
            await _send_json(send, 200, {**base, "object": obj, "choices": [choice], "usage": _usage(final)})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish: str | None, first: bool = False) -> dict[str, Any]:
            entry: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                delta: dict[str, Any] = {"role": "assistant"} if first else {}
                if text is not None:
                    delta["content"] = text
                entry["delta"] = delta
            else:
                entry |= {"text": text or "", "logprobs": None}
            return {**base, "object": obj, "choices": [entry]}

        try:
            if chat:
                await _sse(send, chunk("", None, first=True))
            async for event in events:
                if isinstance(event, DoneEvent):
                    await _sse(send, chunk(None if chat else "", _FINISH.get(event.finish_reason, "stop")))
                    if request.stream_options and request.stream_options.include_usage:
                        await _sse(send, {**base, "object": obj, "choices": [], "usage": _usage(event)})
                elif event.text:
                    await _sse(send, chunk(event.text, None))
        except ServiceError as exc:
            await _sse(send, _error_body(str(exc), "server_error"))
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def _closing(events: AsyncIterator[ServiceEvent]) -> AsyncGenerator[ServiceEvent, None]:
    """Pass `events` through, and close them the moment this generator is closed (which cancels)."""
    try:
        async for event in events:
            yield event
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def _usage(event: DoneEvent) -> dict[str, int]:
    return {"prompt_tokens": event.prompt_tokens, "completion_tokens": event.generated_tokens,
            "total_tokens": event.prompt_tokens + event.generated_tokens}


def _error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
    return str(exc)


async def _error(send: Send, receive: Receive, scope: Scope, status: int, message: str) -> None:
    await JSONResponse(_error_body(message, "invalid_request_error"), status)(scope, receive, send)


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _sse(send: Send, payload: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": f"data: {json.dumps(payload)}\n\n".encode(), "more_body": True})


def openai_routes(fim: FimService, generate: GenerateService, model_name: Callable[[], str]) -> list[Route]:
    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": model_name(), "object": "model", "created": 0, "owned_by": "nearcode"}]})

    return [
        Route("/v1/models", models),
        Route("/v1/completions", OpenAIEndpoint(fim, generate, model_name, "completions"), methods=["POST"]),
        Route("/v1/chat/completions", OpenAIEndpoint(fim, generate, model_name, "chat"), methods=["POST"]),
    ]
