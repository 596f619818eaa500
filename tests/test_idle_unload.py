"""Idle memory (real tier): a daemon with a short idle time releases the real model (its resident
memory drops, read from /proc), and the next completion through a real language server loads it
again, with "loading" in the server's status meanwhile, and succeeds."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import client_capabilities
from tests.support import (
    FIB,
    NEARCODE,
    daemon_status,
    end_daemon,
    env_for,
    new_runtime_dir,
    start_daemon,
)
from tests.test_lsp_completion import inline, open_doc

pytestmark = pytest.mark.real  # its own daemon with the real model

IDLE_MINUTES = "0.05"  # 3 s
MiB = 2**20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_for_state(env: dict[str, str], state: str, timeout_s: float = 120) -> dict[str, Any]:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        status = daemon_status(env)
        if status["model_state"] == state:
            return status
        time.sleep(0.25)
    raise AssertionError(f"the model never became {state}: {status}")


async def test_model_released_when_idle_and_loaded_again_on_the_next_completion() -> None:
    runtime = new_runtime_dir()
    env = env_for(runtime)
    daemon = start_daemon(env, "--idle-unload-minutes", IDLE_MINUTES)
    try:
        loaded = wait_for_state(env, "loaded")
        assert loaded["idle_unload_s"] == 3.0
        released = wait_for_state(env, "released")  # after the start-up canary and 3 s idle
        rss_released = rss_bytes(daemon.pid)
        assert released["memory_rss_bytes"] is not None

        config = ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=env)
        client = await config.start()
        assert isinstance(client, LanguageClient)
        states: list[str] = []

        @client.feature("nearcode/status")
        def on_status(params: Any) -> None:
            states.append(params.state if hasattr(params, "state") else params["state"])

        await client.initialize_session(types.InitializeParams(capabilities=client_capabilities(), root_uri="file:///tmp"))
        try:
            uri = "file:///tmp/nc-test/idle-fib.py"
            open_doc(client, uri, FIB)
            states.clear()
            items = await inline(client, uri, 3, 8)
            assert items and items[0].insert_text, "no completion after the model was released"
            rss_loaded = rss_bytes(daemon.pid)
            # The server said "loading" while the daemon loaded the model again, then "ready".
            assert "loading" in states and states[-1] == "ready", states
            assert states.index("loading") < len(states) - 1
        finally:
            await client.shutdown_session()
        status = daemon_status(env)
        assert status["model_reloads"] >= 1 and status["model_unloads"] >= 1
        assert rss_loaded - rss_released > 300 * MiB, (rss_released // MiB, rss_loaded // MiB)
        # Idle again: released again, and the memory goes back down.
        wait_for_state(env, "released")
        assert rss_bytes(daemon.pid) < rss_loaded - 300 * MiB
        shown = await asyncio.to_thread(
            subprocess.run, [*NEARCODE, "status"], env=env, capture_output=True, text=True, timeout=60
        )
        assert "memory:" in shown.stdout and "released" in shown.stdout, shown.stdout
    finally:
        end_daemon(env, daemon)
