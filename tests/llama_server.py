"""Start tests/llama_child_server.py (llama.cpp's real server) for client tests, and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CHILD_SERVER = Path(__file__).resolve().parent / "llama_child_server.py"


def model_file() -> str:
    out = subprocess.run([sys.executable, "-m", "nearcode", "model", "path"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    url: str
    key: str
    process: subprocess.Popen[bytes]

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.key}"}, timeout=10, trust_env=False)


@contextmanager
def llama_server(key: str, parallel: int = 2) -> Iterator[RunningServer]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(CHILD_SERVER), model_file(), "--port", str(port), "--parallel", str(parallel)],
        env={**os.environ, "VLLM_API_KEY": key}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RunningServer(f"http://127.0.0.1:{port}", key, process)
    try:
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up:
            if process.poll() is not None:
                raise RuntimeError(f"llama server exited with {process.returncode}")
            try:
                if server.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("llama server did not become ready")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
