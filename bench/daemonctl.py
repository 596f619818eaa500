"""A nearcode daemon of the bench's own: a fresh NEARCODE_RUNTIME_DIR, so the language servers the
bench starts start their own daemon and never touch a developer's; `nearcode status` and
`nearcode stop` in that environment; the daemon's end made sure of (standard library only).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def alive(pid: int, runtime: Path) -> bool:
    """Whether `pid` runs (not a zombie) with our runtime dir in its environment: our daemon."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        marker = f"NEARCODE_RUNTIME_DIR={runtime}".encode()
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False


def api_status(runtime: Path) -> dict[str, Any]:
    """GET /api/status of the daemon of `runtime` (HTTP/1.0 with the token of its address file); {}
    if unreachable."""
    try:
        info = json.loads((runtime / "daemon.json").read_text())
        unix = info["transport"] == "unix"
        with socket.socket(socket.AF_UNIX if unix else socket.AF_INET) as sock:
            sock.settimeout(10)
            sock.connect(info["path"] if unix else (info["host"], info["port"]))
            sock.sendall(f"GET /api/status HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {info['token']}\r\n\r\n".encode())
            data = b"".join(iter(lambda: sock.recv(65536), b""))
        head, _, body = data.partition(b"\r\n\r\n")
        return dict(json.loads(body)) if head.split(b" ")[1:2] == [b"200"] else {}
    except (OSError, ValueError, KeyError):
        return {}


@dataclass
class OwnDaemon:
    nearcode: Path  # the `nearcode` command
    base: Path  # a temp dir of ours; the runtime dir is inside it
    runtime: Path

    @classmethod
    def fresh(cls, nearcode: Path) -> OwnDaemon:
        base = Path(tempfile.mkdtemp(prefix="ncbench-", dir="/tmp"))  # short: it holds a unix socket
        runtime = base / "rt"
        runtime.mkdir(mode=0o700)
        return cls(nearcode, base, runtime)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "NEARCODE_RUNTIME_DIR": str(self.runtime)}

    def pid(self) -> int | None:
        """The daemon's pid from its address file (None before it started)."""
        try:
            return int(json.loads((self.runtime / "daemon.json").read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def status_text(self) -> str:
        """`nearcode status`, one line."""
        proc = subprocess.run([str(self.nearcode), "status"], env=self.env, capture_output=True, text=True,
                              check=False, timeout=60)
        return " / ".join((proc.stdout or proc.stderr).strip().splitlines())

    def api_status(self) -> dict[str, Any]:
        """The daemon's GET /api/status; {} if unreachable."""
        return api_status(self.runtime)

    def stop(self, keep_log: Path | None = None) -> str:
        """`nearcode stop`, then wait for the daemon to exit (SIGTERM, SIGKILL to that pid alone if
        it does not); copy its log to `keep_log`; remove the runtime dir. What happened, one line."""
        pid = self.pid()
        try:
            if pid is None:
                return "no daemon was started (no address file)"
            subprocess.run([str(self.nearcode), "stop"], env=self.env, capture_output=True, check=False, timeout=60)
            return self._wait_gone(pid)
        finally:
            if keep_log is not None and (self.runtime / "daemon.log").exists():
                keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.runtime / "daemon.log", keep_log)
            shutil.rmtree(self.base, ignore_errors=True)

    def _wait_gone(self, pid: int) -> str:
        started = time.monotonic()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and alive(pid, self.runtime):
                log(f"WARNING: daemon pid {pid} still runs after `nearcode stop`: sending {sig.name}")
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 20
            while alive(pid, self.runtime) and time.monotonic() < deadline:
                time.sleep(0.25)
            if not alive(pid, self.runtime):
                how = f" (after {sig.name})" if sig else ""
                return f"daemon pid {pid} exited {time.monotonic() - started:.1f} s after `nearcode stop`{how}"
        return f"daemon pid {pid} survived SIGKILL"


# What the stand-in "model" says (tests/standin_engine.py: the first entry whose `match` is in the
# prompt answers): lines and blocks of the lengths real suggestions have, streamed in small chunks.
STANDIN_ANSWERS = [
    {"match": "for ", "text": "if item is None:\n            continue\n", "chunk_chars": 6},
    {"match": "return", "text": "result = self._lookup(name, default)\n", "chunk_chars": 6},
    {"match": "", "text": "value = kwargs.get(\"value\")\n", "chunk_chars": 6},
]


def start_standin_daemon(base: Path, env: dict[str, str], log_file: Path) -> list[subprocess.Popen[bytes]]:
    """A stand-in model server (tests/standin_engine.py, an OpenAI-compatible server of this clone)
    on 127.0.0.1 and a daemon on its `openai` engine in `env`'s runtime dir, up when this returns:
    every request is answered at once, so language servers that start later show a suggestion in
    every pause without the model's CPU. Returns [stand-in, daemon]: kill both at the end."""
    script = base / "standin-answers.json"
    script.write_text(json.dumps(STANDIN_ANSWERS))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    engine_py = Path(__file__).resolve().parent.parent / "tests" / "standin_engine.py"
    output = open(log_file, "ab")  # noqa: SIM115 - the children write to it until they end
    standin = subprocess.Popen([sys.executable, str(engine_py), "--port", str(port), "--script", str(script)],
                               stdout=output, stderr=output)
    daemon = subprocess.Popen([sys.executable, "-P", "-m", "nearcode", "daemon", "--engine", "openai",
                               "--remote-url", f"http://127.0.0.1:{port}/v1", "--family", "qwen2.5-coder"],
                              env=env, stdout=output, stderr=output)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for name, child in (("the stand-in", standin), ("the daemon", daemon)):
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode}: see {log_file}")
        if api_status(Path(env["NEARCODE_RUNTIME_DIR"])).get("pid") == daemon.pid:
            return [standin, daemon]
        time.sleep(0.2)
    for child in (standin, daemon):
        child.kill()
    raise RuntimeError(f"the stand-in daemon did not answer in 60 s: see {log_file}")
