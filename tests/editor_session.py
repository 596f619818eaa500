"""Helpers for real-server tests of documents, errors and status: a language server with the
debug command on, the server's copy of a document, and what the user was shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import start_lsp

STATUS = "nearcode/status"
DEBUG_DOCUMENT = "nearcode.debugDocument"


def with_debug_commands(env: dict[str, str]) -> dict[str, str]:
    return {**env, "NEARCODE_DEBUG_COMMANDS": "1"}


@dataclass
class Seen:
    """What reached the user: status notifications and window/showMessage errors."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    client: LanguageClient | None = None

    @property
    def errors_shown(self) -> list[str]:
        assert self.client is not None
        return [m.message for m in self.client.messages if m.type == types.MessageType.Error]

    @property
    def error_states(self) -> list[str]:
        return [s.get("message", "") for s in self.statuses if s.get("state") == "error"]


async def start_watched_lsp(env: dict[str, str], options: dict[str, object] | None = None) -> tuple[LanguageClient, Seen]:
    """A language server whose status notifications are recorded from the first one on."""
    seen = Seen()

    def hook(client: LanguageClient) -> None:
        seen.client = client

        @client.feature(STATUS)
        def on_status(params: Any) -> None:
            seen.statuses.append(params if isinstance(params, dict) else dict(params._asdict()))

    client = await start_lsp(env, options=options, before_initialize=hook)
    return client, seen


async def server_document(client: LanguageClient, uri: str) -> dict[str, Any]:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=DEBUG_DOCUMENT, arguments=[{"uri": uri}])
    )
    return dict(result)


async def status_of(client: LanguageClient) -> dict[str, Any]:
    return dict(await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status")))
