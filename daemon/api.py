"""The daemon's HTTP API (docs/protocol.md): streaming FIM, health, model, status, shutdown."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nearcode import __version__
from nearcode.daemon.asgi import read_body, until_disconnect
from nearcode.daemon.fim_service import FimError, FimService
from nearcode.daemon.openai_api import openai_routes
from nearcode.shared.protocol.daemon_api import (
    ErrorEvent,
    FimRequest,
    GenerateRequest,
    StatusEvent,
    event_line,
)

log = logging.getLogger("nearcode.daemon")


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


class StreamEndpoint:
    """Streams NDJSON events, and cancels the generation the moment the client disconnects.

    A raw ASGI endpoint rather than StreamingResponse because the disconnect must be noticed while
    the engine is still reading the prompt (seconds on a CPU), before any byte has been sent.
    """

    def __init__(self, service: FimService, kind: str = "fim", model_loaded: Callable[[], bool] = lambda: True) -> None:
        self.service = service
        self.kind = kind  # "fim": /api/fim, "generate": /api/generate (instruction tasks)
        self.model_loaded = model_loaded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        if body is None:
            return
        try:
            request: FimRequest | GenerateRequest = (
                FimRequest.model_validate_json(body) if self.kind == "fim" else GenerateRequest.model_validate_json(body)
            )
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            await JSONResponse({"error": "invalid request", "detail": errors}, 422)(scope, receive, send)
            return
        await until_disconnect(self._pump(request, send), receive)

    async def _pump(self, request: FimRequest | GenerateRequest, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-ndjson")]}
        )
        if isinstance(request, FimRequest) and not self.model_loaded():
            # Released after idle time: this request loads it first. Said at once, so the editor
            # shows "loading" rather than a completion that seems to hang.
            status = StatusEvent(state="loading", message="loading the model (released while idle)")
            await send({"type": "http.response.body", "body": event_line(status), "more_body": True})
        try:
            events = (
                self.service.stream(request) if isinstance(request, FimRequest) else self.service.generate(request)
            )
            async for event in events:
                await send({"type": "http.response.body", "body": event_line(event), "more_body": True})
        except FimError as exc:
            log.warning("generation failed: %s", exc)
            error = ErrorEvent(message=str(exc))
            await send({"type": "http.response.body", "body": event_line(error), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def build_app(
    service: FimService,
    describe: Callable[[], dict[str, Any]],
    status: Callable[[], dict[str, Any]],
    shutdown: Callable[[], Awaitable[None]],
    token: str,
    model_loaded: Callable[[], bool] = lambda: True,
) -> ASGIApp:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def model(request: Request) -> Response:
        return JSONResponse(describe())

    async def status_route(request: Request) -> Response:
        return JSONResponse(status())

    async def shutdown_route(request: Request) -> Response:
        await shutdown()
        return JSONResponse({"status": "stopping"})

    app = Starlette(
        routes=[
            Route("/api/fim", StreamEndpoint(service, model_loaded=model_loaded), methods=["POST"]),
            Route("/api/generate", StreamEndpoint(service, "generate"), methods=["POST"]),
            Route("/api/health", health),
            Route("/api/model", model),
            Route("/api/status", status_route),
            Route("/api/shutdown", shutdown_route, methods=["POST"]),
            # OpenAI-compatible endpoints for other tools, behind the same token (openai_api.py).
            *openai_routes(service, lambda: str(describe().get("model", ""))),
        ]
    )
    return BearerAuth(app, token)
