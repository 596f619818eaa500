"""Helpers for the tests that run the real vLLM engine (marker `vllm`, `make test-vllm`).

They never skip: a machine where vLLM does not start fails them, with the daemon's log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import NEARCODE, daemon_http, endpoint

VLLM_READY_TIMEOUT_S = 400.0  # ~35-55 s here; far more on a loaded machine, and the first start after a reboot


def vllm_socket(env: dict[str, str]) -> str:
    return str(Path(env["NEARCODE_RUNTIME_DIR"]) / "vllm" / "api.sock")


def vllm_metrics(env: dict[str, str]) -> dict[str, float]:
    """vLLM's own /metrics, straight from its socket (no key needed there: that is why it is private)."""
    with httpx.Client(transport=httpx.HTTPTransport(uds=vllm_socket(env)), base_url="http://localhost",
                      timeout=5, trust_env=False) as client:
        text = client.get("/metrics").text
    values: dict[str, float] = {}
    for match in re.finditer(r"^(vllm:[a-z_]+)(?:\{[^}]*\})? (\S+)$", text, re.M):
        values[match[1]] = values.get(match[1], 0.0) + float(match[2])
    return values


def daemon_log(env: dict[str, str]) -> str:
    path = Path(env["NEARCODE_RUNTIME_DIR"]) / "test-daemon.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


def start_vllm_daemon(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], list[dict[str, Any]]]:
    """`nearcode daemon --engine vllm`; returns once its engine is ready, with the statuses seen meanwhile."""
    log = open(Path(env["NEARCODE_RUNTIME_DIR"]) / "test-daemon.log", "ab")  # noqa: SIM115
    process = subprocess.Popen([*NEARCODE, "daemon", "--engine", "vllm"], env=env, stdout=log, stderr=log)
    seen: list[dict[str, Any]] = []
    give_up = time.monotonic() + VLLM_READY_TIMEOUT_S
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise AssertionError(f"the vLLM daemon exited with {process.returncode}:\n{daemon_log(env)}")
        try:
            if endpoint(env)["pid"] == process.pid:
                with daemon_http(env) as client:
                    status = client.get("/api/status").json()
                seen.append(status)
                if status["state"] == "ready":
                    return process, seen
                assert status["state"] == "loading", status
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"vLLM did not become ready within {VLLM_READY_TIMEOUT_S:.0f} s:\n{daemon_log(env)}")


def process_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def stop_vllm_daemon(env: dict[str, str], process: subprocess.Popen[bytes], vllm_pid: int | None) -> None:
    """Stop the daemon and check that vLLM and its workers went with it (killed if not, then failed)."""
    subprocess.run([*NEARCODE, "stop"], env=env, capture_output=True, timeout=90)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    left = process_group(vllm_pid) if vllm_pid else []
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"vLLM processes outlived the daemon: {left}"


def tcp_listeners_of(pids: list[int]) -> list[str]:
    """TCP sockets in LISTEN state held by any of `pids` (from /proc, no tools needed)."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else []:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                listening.append(f"{table} {fields[1]}")
    return listening
