"""Shared fixtures: one real daemon with the real embedded model for the whole session, and real
language-server processes talking to it through pytest-lsp."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support import NEARCODE, env_for, new_runtime_dir, start_daemon, stop_daemon


@pytest.fixture(scope="session")
def daemon_env() -> Iterator[dict[str, str]]:
    """Environment (os.environ + NEARCODE_RUNTIME_DIR) of a running test daemon."""
    runtime = new_runtime_dir()
    env = env_for(runtime)
    process = start_daemon(env)
    yield env
    stop_daemon(env)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(runtime, ignore_errors=True)


def client_capabilities(inline: bool = True) -> types.ClientCapabilities:
    text = types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(),
        completion=types.CompletionClientCapabilities(),
        inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
    )
    return types.ClientCapabilities(text_document=text)


async def start_lsp(env: dict[str, str], inline: bool = True, options: dict[str, object] | None = None) -> LanguageClient:
    config = ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(inline),
            root_uri="file:///tmp",
            initialization_options=options or {},
        )
    )
    return client


@pytest_asyncio.fixture
async def lsp(daemon_env: dict[str, str]) -> AsyncIterator[LanguageClient]:
    """A language server (inline-capable client) on the session daemon."""
    client = await start_lsp(daemon_env)
    yield client
    await client.shutdown_session()
