"""The local-only badge tells the truth: the status says where the daemon actually sends prompts
(its engine and server, from /api/model), not what the language server's setting says.

The remote daemon here is real: `nearcode daemon --engine openai` pointed at a model server on
10.254.0.1, both inside a network namespace with only loopback (tests/netns.py), so its "remote"
traffic cannot leave this machine. The language server outside reaches the daemon's unix socket.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.conftest import start_lsp
from tests.netns import REMOTE_ADDRESS, in_namespace
from tests.standin import ENGINE, free_port, standin_daemon
from tests.support import NEARCODE, end_session, env_for, new_runtime_dir, start_daemon, stop_daemon

# The real daemon and language server (the model's answers are a stand-in's): the real tier.
pytestmark = pytest.mark.real


@pytest.fixture
def remote_daemon_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    script = tmp_path / "answers.json"
    script.write_text("[]")
    port = free_port()
    runtime = new_runtime_dir()
    env = {**env_for(runtime), "NEARCODE_PRIVACY_MODE": "cloud-allowed", "NEARCODE_ALLOWED_HOSTS": REMOTE_ADDRESS}
    daemon = " ".join([*NEARCODE, "daemon", "--engine", "openai", "--remote-url", f"http://{REMOTE_ADDRESS}:{port}/v1",
                       "--family", "qwen2.5-coder"])  # fmt: skip
    engine = f"{sys.executable} {ENGINE} --host {REMOTE_ADDRESS} --port {port} --script {script}"
    shell = f"{engine} >/dev/null 2>&1 & sleep 0.5; exec {daemon}"
    process = start_daemon(env, command=in_namespace(["sh", "-c", shell], REMOTE_ADDRESS), log=tmp_path / "daemon.log",
                           timeout_s=60)  # fmt: skip
    try:
        yield env
    finally:
        stop_daemon(env)
        end_session(process)  # the stand-in server too
        subprocess.run(["rm", "-rf", runtime], check=False)


async def _status(env: dict[str, str], options: dict[str, object] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The server's status once it knows where the daemon sends prompts (default settings:
    privacyMode local-only)."""
    client = await start_lsp(env, options=options)
    try:
        for _ in range(100):
            status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
            if status.get("promptDestination"):
                break
            await asyncio.sleep(0.1)
        messages = [m.message for m in client.messages]
        return dict(status), messages
    finally:
        await client.shutdown_session()


async def test_a_daemon_on_a_remote_engine_is_not_called_local(remote_daemon_env: dict[str, str]) -> None:
    status, messages = await _status(remote_daemon_env)
    url = f"http://{REMOTE_ADDRESS}"
    assert status["engine"] == "openai"
    assert status["localOnly"] is False, "privacyMode is local-only, but prompts leave the machine"
    assert status["codeLeavesMachine"] is True and status["promptDestination"].startswith(url), status
    assert any("leaves this machine" in m and url in m for m in messages), messages


async def test_the_embedded_engine_is_local(daemon_env: dict[str, str]) -> None:
    status, messages = await _status(daemon_env)
    assert status["engine"] == "llamacpp"
    assert status["localOnly"] is True and status["codeLeavesMachine"] is False
    assert status["promptDestination"] == "this machine"
    assert not any("leaves this machine" in m for m in messages)


async def test_a_server_on_loopback_is_local_and_cloud_allowed_is_its_own_state(tmp_path: Path) -> None:
    with standin_daemon(tmp_path) as standin:
        status, _ = await _status(standin.env)
        assert status["engine"] == "openai" and status["localOnly"] is True and status["codeLeavesMachine"] is False
        assert status["promptDestination"].startswith("this machine (http://127.0.0.1:")
        allowed, _ = await _status(standin.env, {"privacyMode": "cloud-allowed", "cloudEndpoint": "https://api.example/v1"})
        assert allowed["localOnly"] is False and allowed["cloudAllowed"] is True and allowed["codeLeavesMachine"] is False


async def test_a_model_setting_the_shared_daemon_does_not_run_is_told(daemon_env: dict[str, str]) -> None:
    """The suite's daemon runs the fast preset ($NEARCODE_MODEL). An editor whose settings name
    the quality preset connects to it as it is (the daemon is shared and keeps its model): it is
    told so, and how to switch; an editor naming the preset that runs is told nothing."""
    told = await _messages_once_ready(daemon_env, {"model": "quality"})
    assert any("not what your settings name: model = 'quality'" in m and "nearcode stop" in m for m in told), told
    quiet = await _messages_once_ready(daemon_env, {"model": "fast"})
    assert not any("not what your settings name" in m for m in quiet), quiet


async def _messages_once_ready(env: dict[str, str], options: dict[str, object]) -> list[str]:
    """The messages a server shows by the time it says it is ready (it has read /api/model then)."""
    client = await start_lsp(env, options=options)
    try:
        for _ in range(600):
            status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
            if status.get("state") == "ready":
                break
            await asyncio.sleep(0.1)
        assert status.get("state") == "ready", status
        return [m.message for m in client.messages]
    finally:
        await client.shutdown_session()
