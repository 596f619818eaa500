"""A real nearcode daemon whose model answers are written by the test (tests/standin_engine.py).

The daemon, its scheduler, prompts and HTTP API, the language server and its commands are the real
ones; only the text the "model" streams back is chosen, so a test can make it hostile (generated
tests that attack the machine) or slow (a docstring the user types through).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO, env_for, new_runtime_dir, start_daemon, stop_daemon

ENGINE = REPO / "tests" / "standin_engine.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StandIn:
    env: dict[str, str]  # the daemon's environment (NEARCODE_RUNTIME_DIR …), for language servers too
    script: Path  # the answers file: rewrite it to change what the "model" says
    daemon: subprocess.Popen[bytes]

    def answer(self, *entries: dict[str, Any]) -> None:
        self.script.write_text(json.dumps(list(entries)))


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"the stand-in engine exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the stand-in engine did not start")


@contextmanager
def standin_daemon(tmp: Path, *entries: dict[str, Any], extra_env: dict[str, str] | None = None) -> Iterator[StandIn]:
    """A daemon on the `openai` engine pointed at a stand-in server on 127.0.0.1."""
    script = tmp / "answers.json"
    script.write_text(json.dumps(list(entries)))
    port = free_port()
    engine = subprocess.Popen([sys.executable, str(ENGINE), "--port", str(port), "--script", str(script)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    runtime = new_runtime_dir()
    env = {**env_for(runtime), "XDG_STATE_HOME": str(tmp / "state"), **(extra_env or {})}
    try:
        wait_for_port(port, engine)
        daemon = start_daemon(env, "--engine", "openai", "--remote-url", f"http://127.0.0.1:{port}/v1",
                              "--family", "qwen2.5-coder", "--retries", "0")  # fmt: skip
        try:
            yield StandIn(env, script, daemon)
        finally:
            stop_daemon(env)
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait(timeout=30)
    finally:
        engine.kill()
        engine.wait()
        subprocess.run(["rm", "-rf", runtime], check=False)

