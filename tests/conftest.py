"""Shared fixtures: one real daemon with the real embedded model for the whole session, and real
language-server processes talking to it through pytest-lsp."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from nearcode.daemon.model_store import FAST_PRESET, MODEL_ENV
from tests.support import NEARCODE, running_daemon

# Fixtures that start the real daemon with the real model: a test using one (directly or through
# another fixture) belongs to the real tier. `make test-fast` runs everything else.
_REAL_FIXTURES = {"daemon_env", "lsp"}


def pytest_configure(config: pytest.Config) -> None:
    """Every daemon the tests start (directly, or through a language server or an editor) runs the
    fast preset, the 0.5B, unless $NEARCODE_MODEL names another: the tests are about behaviour,
    and the default 1.5B would double the suite's time (daemon/model_store.py DEFAULT_PRESET).

    `make test-fast` (NEARCODE_TEST_TIER=fast) proves its tests need no model: the embedded
    engine cannot be imported in this process or any process it starts."""
    os.environ.setdefault(MODEL_ENV, FAST_PRESET)
    if os.environ.get("NEARCODE_TEST_TIER") != "fast":
        return
    blocker = Path(tempfile.mkdtemp(prefix="nc-fast-")) / "xllamacpp"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('the fast test tier runs no model')\n")
    sys.path.insert(0, str(blocker.parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _REAL_FIXTURES or "editors" in item.path.parts:
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def daemon_env() -> Iterator[dict[str, str]]:
    """Environment (os.environ + NEARCODE_RUNTIME_DIR) of a running test daemon."""
    with running_daemon() as env:
        yield env


def client_capabilities(inline: bool = True) -> types.ClientCapabilities:
    text = types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(),
        completion=types.CompletionClientCapabilities(),
        inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
    )
    return types.ClientCapabilities(text_document=text)


# The tests ask explicitly (triggerKind Invoked) for its generous deadline, not for alternatives:
# one suggestion, so the daemon's request counts are theirs alone. Alternatives have their own
# tests (test_alternatives_logic.py, editors/test_neovim_alternatives.py, the VS Code e2e).
ONE_SUGGESTION: dict[str, object] = {"alternatives": 1}


async def start_lsp(
    env: dict[str, str],
    inline: bool = True,
    options: dict[str, object] | None = None,
    before_initialize: Callable[[LanguageClient], None] | None = None,
    workspace: Path | None = None,
) -> LanguageClient:
    """A real language server over stdio; `workspace`: its one workspace folder (else /tmp as root)."""
    config = ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    if before_initialize is not None:
        before_initialize(client)  # e.g. handlers for what the server sends during start-up
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(inline),
            root_uri=workspace.as_uri() if workspace else "file:///tmp",
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)] if workspace else None,
            initialization_options={**ONE_SUGGESTION, **(options or {})},
        )
    )
    return client


@pytest_asyncio.fixture
async def lsp(daemon_env: dict[str, str]) -> AsyncIterator[LanguageClient]:
    """A language server (inline-capable client) on the session daemon."""
    client = await start_lsp(daemon_env)
    yield client
    await client.shutdown_session()
