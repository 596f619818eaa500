"""Helpers for tests that drive the real daemon and the real language server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
NEARCODE = [sys.executable, "-m", "nearcode"]  # the `nearcode` command of this environment
FIB = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        \n    return a\n"


def new_runtime_dir() -> str:
    # Short path under /tmp: unix socket paths are limited to ~107 bytes.
    return tempfile.mkdtemp(prefix="nc-", dir="/tmp")


def env_for(runtime_dir: str) -> dict[str, str]:
    # Language servers of the tests record insight beside the test daemon, never in the user's file.
    insight = os.path.join(runtime_dir, "insight")
    return {**os.environ, "NEARCODE_RUNTIME_DIR": runtime_dir, "NEARCODE_INSIGHT_DIR": insight}


def endpoint(env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads((Path(env["NEARCODE_RUNTIME_DIR"]) / "daemon.json").read_text()))


def daemon_http(env: dict[str, str], token: str | None = None) -> httpx.Client:
    info = endpoint(env)
    return httpx.Client(
        base_url="http://nearcode",
        transport=httpx.HTTPTransport(uds=info["path"]),
        headers={"Authorization": f"Bearer {token if token is not None else info['token']}"},
        timeout=60,
    )


def daemon_status(env: dict[str, str]) -> dict[str, Any]:
    with daemon_http(env) as client:
        return dict(client.get("/api/status").json())


def start_daemon(env: dict[str, str], *args: str, timeout_s: float = 120) -> subprocess.Popen[bytes]:
    log = open(Path(env["NEARCODE_RUNTIME_DIR"]) / "test-daemon.log", "ab")  # noqa: SIM115
    process = subprocess.Popen([*NEARCODE, "daemon", *args], env=env, stdout=log, stderr=log)
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with {process.returncode}")
        try:
            if endpoint(env)["pid"] == process.pid:
                with daemon_http(env) as client:
                    if client.get("/api/health").status_code == 200:
                        return process
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("daemon did not start")


def stop_daemon(env: dict[str, str]) -> None:
    subprocess.run([*NEARCODE, "stop"], env=env, capture_output=True, timeout=60)


def end_daemon(env: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    """Stop a test daemon, make sure its process is gone, and remove its runtime folder."""
    stop_daemon(env)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(env["NEARCODE_RUNTIME_DIR"], ignore_errors=True)
