"""The daemon's workspace endpoints (docs/protocol.md): register folders, forward buffers, read
the index's status, look a name up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nearcode.daemon.workspace.registry import WorkspaceRegistry
from nearcode.shared.protocol.daemon_api import (
    BufferAck,
    BufferRequest,
    DefinitionOut,
    LookupRequest,
    LookupResult,
    WorkspaceRequest,
    WorkspaceStatus,
)

MAX_LOOKUP_RESULTS = 100


def _json(model: BaseModel) -> Response:
    return JSONResponse(model.model_dump(mode="json"))


Body = TypeVar("Body", bound=BaseModel)


def _validated(model: type[Body], handler: Callable[[Body], Response]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = model.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            return JSONResponse({"error": "invalid request", "detail": errors}, 422)
        return handler(body)

    return endpoint


def workspace_routes(registry: WorkspaceRegistry) -> list[Route]:
    def register(body: WorkspaceRequest) -> Response:
        registry.set_folders(body.client, body.pid, body.folders)
        return _json(WorkspaceStatus(registered=registry.known(body.client), folders=registry.folder_status(body.client)))

    async def status(request: Request) -> Response:
        client = request.query_params.get("client")
        folders = registry.folder_status(client)
        return _json(WorkspaceStatus(registered=client is None or registry.known(client), folders=folders))

    def buffer(body: BufferRequest) -> Response:
        reason = registry.set_buffer(body.client, body.path, body.text, body.version)
        known = registry.known(body.client)
        return _json(BufferAck(accepted=reason is None, registered=known, reason=reason or ""))

    def lookup(body: LookupRequest) -> Response:
        found = registry.locate(body.path)
        folder = registry.index_at(body.path)
        if found is not None:
            index, relative = found
            definitions = index.lookup(relative, body.name)
        elif folder is not None:
            index, definitions = folder, folder.definitions(body.name)
        else:
            return _json(LookupResult())
        shown = [DefinitionOut(**asdict(d)) for d in definitions[:MAX_LOOKUP_RESULTS]]
        return _json(LookupResult(root=str(index.root), definitions=shown))

    return [
        Route("/api/workspace", _validated(WorkspaceRequest, register), methods=["POST"]),
        Route("/api/workspace", status, methods=["GET"]),
        Route("/api/buffer", _validated(BufferRequest, buffer), methods=["POST"]),
        Route("/api/workspace/lookup", _validated(LookupRequest, lookup), methods=["POST"]),
    ]
