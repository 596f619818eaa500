"""Every failure path ends cleanly, on real parts: a real daemon whose engine (the OpenAI-compatible
one) talks to llama.cpp's real server with the real model through a proxy that can break
(tests/faulty_upstream.py), real language servers, and the session's embedded daemon.

Each test failed on the old code: the daemon's stream never ended (the client waited 120 s), the
client waited 120 s on a daemon that had stopped answering, the editor was never told, and a
failed code action left its progress spinning.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.editor_session import start_watched_lsp, status_of
from tests.faulty_upstream import FaultyUpstream
from tests.llama_server import llama_server
from tests.lsp_actions import open_document, progress_of, run_command, start_editor_client
from tests.support import (
    FIB,
    daemon_http,
    endpoint,
    env_for,
    new_runtime_dir,
    start_daemon,
    stop_daemon,
)
from tests.test_lsp_completion import inline, open_doc

pytestmark = pytest.mark.real
KEY, KEY_ENV = "failure-paths-key", "NEARCODE_TEST_REMOTE_KEY"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with llama_server(KEY) as server, FaultyUpstream(server.url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def remote_env(upstream: FaultyUpstream) -> Iterator[dict[str, str]]:
    """A daemon whose engine reaches the real model through the breakable proxy."""
    runtime = new_runtime_dir()
    env = {**env_for(runtime), KEY_ENV: KEY}
    start_daemon(env, "--engine", "openai", "--remote-url", upstream.url + "/v1", "--api-key-env", KEY_ENV)
    yield env
    stop_daemon(env)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(autouse=True)
def healthy_upstream(upstream: FaultyUpstream) -> Iterator[None]:
    upstream.mode = "pass"
    yield
    upstream.mode = "pass"


def fim_events(env: dict[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
    with daemon_http(env) as client:
        client.timeout = 60
        return [json.loads(line) for line in client.post("/api/fim", json=body).text.splitlines() if line]


def test_an_engine_failure_mid_stream_ends_the_request_with_one_error_event(
    upstream: FaultyUpstream, remote_env: dict[str, str]
) -> None:
    upstream.mode = "garbage"
    started = time.monotonic()
    events = fim_events(remote_env, {"prefix": "def add(a, b):\n    return ", "max_tokens": 16, "deadline_ms": 30_000})
    finals = [e for e in events if e["type"] in ("done", "error")]
    assert len(finals) == 1 and events[-1] == finals[0], events
    assert finals[0]["type"] == "error" and "JSONDecodeError" in finals[0]["message"], finals
    assert time.monotonic() - started < 20, "the error must come at once, not at a timeout"
    upstream.mode = "pass"
    events = fim_events(remote_env, {"prefix": "def add(a, b):\n    return ", "max_tokens": 16})
    assert events[-1]["type"] == "done", "the daemon goes on serving"


async def test_the_editor_is_told_once_with_what_to_do_then_completions_work_again(
    upstream: FaultyUpstream, remote_env: dict[str, str]
) -> None:
    client, seen = await start_watched_lsp(remote_env)
    try:
        uri = "file:///tmp/nc-test/failing-engine.py"
        open_doc(client, uri, FIB)
        upstream.mode = "garbage"
        for _ in range(3):
            assert await asyncio.wait_for(inline(client, uri, 3, 8), 120) == []  # an empty answer, never an error
        assert len(seen.errors_shown) == 1, seen.errors_shown
        assert "the model failed" in seen.errors_shown[0] and "nearcode doctor" in seen.errors_shown[0]
        status = await status_of(client)
        assert status["state"] == "error" and "JSONDecodeError" in status["message"]
        upstream.mode = "pass"
        items = await asyncio.wait_for(inline(client, uri, 3, 8), 120)
        assert items and items[0].insert_text.strip(), "completions work again once the engine does"
        status = await status_of(client)
        assert status["state"] == "ready" and not status["message"]
        assert len(seen.errors_shown) == 1
    finally:
        await client.shutdown_session()


async def test_a_silent_daemon_is_given_up_at_the_requests_deadline(remote_env: dict[str, str]) -> None:
    client, seen = await start_watched_lsp(remote_env)
    pid = int(endpoint(remote_env)["pid"])
    try:
        uri = "file:///tmp/nc-test/silent.py"
        open_doc(client, uri, FIB)
        assert await asyncio.wait_for(inline(client, uri, 3, 8), 120), "a first answer, before it goes silent"
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            # Automatic: a 9 s deadline (lsp/policy.py), so the client gives up 5 s after that.
            # Another document: the first answer is in the typing cache and needs no daemon.
            other = "file:///tmp/nc-test/silent-2.py"
            open_doc(client, other, FIB.replace("fib", "fib2"))
            assert await asyncio.wait_for(inline(client, other, 3, 8, invoked=False), 120) == []
            waited = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert waited < 40, f"waited {waited:.0f} s for a daemon that had stopped answering"
        assert any("sent nothing" in message for message in seen.error_states), seen.statuses
        items = await asyncio.wait_for(inline(client, other, 3, 8), 120)
        assert items and items[0].insert_text.strip(), "the same daemon serves again once it answers"
    finally:
        await client.shutdown_session()


def _huge_function() -> str:
    # One line far beyond the model's context (prompts keep a function's first lines, not its
    # first characters): the engine refuses it, as it would a function with a huge literal table.
    table = ", ".join(str(i) for i in range(30_000))
    return f"def crunch(x):\n    table = [{table}]\n    return table[x]\n"


@pytest.mark.parametrize("command", ["nearcode.generateDocstring", "nearcode.generateTests"])
async def test_progress_ends_when_a_code_action_fails(daemon_env: dict[str, str], tmp_path: Path, command: str) -> None:
    client, _ = await start_editor_client(daemon_env)
    try:
        path = tmp_path / "crunch.py"
        text = _huge_function()
        path.write_text(text)
        uri = path.as_uri()
        open_document(client, _, uri, text)
        # The reason reaches the editor: as the command's error, or (docstrings, which restore
        # the lines they streamed into first) as the result's reason, which the clients show.
        try:
            answer = await asyncio.wait_for(
                run_command(client, command, {"uri": uri, "position": {"line": 0, "character": 4}}), 120
            )
        except JsonRpcException as exc:
            message = str(exc)
        else:
            assert answer["offered"] is False, answer
            message = answer["reason"]
        assert "exceeds the available context size" in message, message
        await asyncio.sleep(0.5)  # notifications after the answer
        progresses = progress_of(client)
        assert progresses, "the command showed progress"
        for values in progresses:
            assert isinstance(values[0], types.WorkDoneProgressBegin)
            assert isinstance(values[-1], types.WorkDoneProgressEnd), f"progress never ended: {values}"
            assert "failed" in (values[-1].message or "")
    finally:
        await client.shutdown_session()
