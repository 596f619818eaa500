"""The daemon's HTTP API (docs/protocol.md): streaming FIM and instruction generation, prefill,
context report, health, model, status, shutdown, the OpenAI-compatible routes (openai_api.py) and
the routes other parts add (the workspace index's).

Before any route: the Host header must name this machine (a loopback name or address, on the unix
socket too): a web page the user visits cannot talk to the daemon through DNS rebinding or a
browser's own requests. Request bodies are capped (413 with the limit): a client cannot make the
daemon buffer without end. Then the bearer token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nearcode import __version__
from nearcode.daemon.asgi import read_body, until_disconnect
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.generate_service import GenerateService
from nearcode.daemon.openai_api import openai_routes
from nearcode.daemon.scheduler import failure_message
from nearcode.daemon.streams import ServiceError, ServiceEvent
from nearcode.shared.privacy import is_loopback
from nearcode.shared.protocol.daemon_api import (
    ContextQuery,
    ErrorEvent,
    FimRequest,
    GenerateRequest,
    PrefillRequest,
    StatusEvent,
    event_line,
)

log = logging.getLogger("nearcode.daemon")

MAX_BODY_BYTES = 8 * 1024 * 1024  # prompts are at most a few hundred kB; context snippets are capped too


def host_of(header: bytes) -> str:
    """The host name of a Host header value: `localhost:8080` -> `localhost`, `[::1]:80` -> `::1`."""
    value = header.decode("latin-1").strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class LocalRequestsOnly:
    """Host must be loopback; the body at most `max_body` bytes (Content-Length, or as it streams)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = host_of(headers.get(b"host", b""))
        if not host or not is_loopback(host):
            refusal = "the Host header must name this machine (localhost, 127.0.0.1 or ::1)"
            await JSONResponse({"error": refusal}, 421)(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(scope, receive, send)
            return
        # The whole body is read here, up to the cap (every route reads it whole anyway), so a
        # chunked body that grows past the cap is refused before any route sees it.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # afterwards: the client's disconnect, for streaming routes

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = f"request body over the limit of {self.max_body} bytes"
        await JSONResponse({"error": refusal, "limit_bytes": self.max_body}, 413)(scope, receive, send)


class BearerAuth:
    """Every route needs the token from the address file: other local users must not get in."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await JSONResponse({"error": "missing or wrong bearer token"}, 401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Services:
    """What the routes call: completions (with their read-ahead and context report) and
    instruction generation, on one scheduler and one set of counters."""

    fim: FimService
    generate: GenerateService

    @classmethod
    def around(cls, fim: FimService) -> Services:
        return cls(fim, GenerateService(fim.scheduler, fim.template, fim.stats))


StreamRequest = TypeVar("StreamRequest", bound=BaseModel)  # FimRequest, GenerateRequest


class StreamEndpoint(Generic[StreamRequest]):
    """Streams NDJSON events, and cancels the generation the moment the client disconnects.

    A raw ASGI endpoint rather than StreamingResponse because the disconnect must be noticed while
    the engine is still reading the prompt (seconds on a CPU), before any byte has been sent.
    """

    def __init__(
        self, request_type: type[StreamRequest], open_stream: Callable[[StreamRequest], AsyncIterator[ServiceEvent]],
        model_loaded: Callable[[], bool] = lambda: True,
    ) -> None:
        self.request_type = request_type
        self.open_stream = open_stream
        self.model_loaded = model_loaded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        if body is None:
            return
        try:
            request = self.request_type.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            await JSONResponse({"error": "invalid request", "detail": errors}, 422)(scope, receive, send)
            return
        await until_disconnect(self._pump(request, send), receive)

    async def _pump(self, request: StreamRequest, send: Send) -> None:
        """Stream the events; whatever fails (prompt building, token counting, the engine, this
        code), each choice ends with exactly one done event, and a stream whose first choice has
        none ends with an error event with the reason."""
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-ndjson")]}
        )
        if not self.model_loaded():
            # Released after idle time: this request loads it first. Said at once, so the editor
            # shows "loading" rather than a completion that seems to hang.
            status = StatusEvent(state="loading", message="loading the model (released while idle)")
            await send({"type": "http.response.body", "body": event_line(status), "more_body": True})
        # Each choice ends with its own done event (n > 1: the alternatives follow the first
        # choice's, or interleave with it on an engine that batches).
        ended: set[int] = set()
        error: ErrorEvent | None = None
        try:
            async for event in self.open_stream(request):
                index = getattr(event, "index", 0)
                if index in ended:  # a service bug: a second final event would break the protocol
                    log.error("dropped an event after choice %d's final one: %s", index, event.type)
                    continue
                await send({"type": "http.response.body", "body": event_line(event), "more_body": True})
                if event.type == "done":
                    ended.add(index)
        except ServiceError as exc:
            log.warning("generation failed: %s", exc)
            error = ErrorEvent(message=str(exc))
        except Exception as exc:
            log.exception("request failed")
            error = ErrorEvent(message=failure_message(exc))
        else:
            if 0 not in ended:
                error = ErrorEvent(message="the daemon ended the stream without an answer")
        # After the first choice's answer a failing alternative is just not offered.
        if error is not None and 0 not in ended:
            await send({"type": "http.response.body", "body": event_line(error), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def build_app(
    services: Services,
    describe: Callable[[], dict[str, Any]],
    status: Callable[[], Awaitable[dict[str, Any]]],
    shutdown: Callable[[], Awaitable[None]],
    token: str,
    routes: Sequence[BaseRoute] = (),
    model_loaded: Callable[[], bool] = lambda: True,
) -> ASGIApp:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def model(request: Request) -> Response:
        return JSONResponse(describe())

    async def status_route(request: Request) -> Response:
        return JSONResponse(await status())

    async def shutdown_route(request: Request) -> Response:
        await shutdown()
        return JSONResponse({"status": "stopping"})

    async def prefill(request: Request) -> Response:
        try:
            body = PrefillRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": "invalid request", "detail": exc.errors(include_input=False)}, 422)
        return JSONResponse((await services.fim.read_ahead.prefill(body)).model_dump())

    async def context(request: Request) -> Response:
        try:
            query = ContextQuery.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": "invalid request", "detail": exc.errors(include_input=False)}, 422)
        return JSONResponse(services.fim.context_report(query).wire())

    app = Starlette(
        routes=[
            Route("/api/fim", StreamEndpoint(FimRequest, services.fim.stream, model_loaded), methods=["POST"]),
            Route("/api/generate", StreamEndpoint(GenerateRequest, services.generate.generate), methods=["POST"]),
            Route("/api/health", health),
            Route("/api/model", model),
            Route("/api/status", status_route),
            Route("/api/shutdown", shutdown_route, methods=["POST"]),
            Route("/api/prefill", prefill, methods=["POST"]),
            Route("/api/context", context, methods=["POST"]),
            # OpenAI-compatible endpoints for other tools, behind the same token (openai_api.py).
            *openai_routes(services.fim, services.generate, lambda: str(describe().get("model", ""))),
            *routes,  # more parts' endpoints (workspace/routes.py), behind the same token
        ]
    )
    return LocalRequestsOnly(BearerAuth(app, token))
