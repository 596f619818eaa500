"""The daemon's edge: requests must name this machine in Host (on the unix socket too), bodies are
capped with a clear 413, and the runtime directory holding the token must be a real, private
directory of this user (never a symbolic link, never someone else's)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from nearcode.shared import paths
from tests.support import daemon_http, endpoint


def _raw(env: dict[str, str], request: bytes) -> bytes:
    """One raw HTTP/1.1 exchange over the daemon's unix socket (what a browser or curl could send)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(endpoint(env)["path"])
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_host_must_be_a_loopback_name(daemon_env: dict[str, str]) -> None:
    with daemon_http(daemon_env) as client:
        assert client.get("/api/health").status_code == 200  # Host: localhost
        for host in ("127.0.0.1:8080", "[::1]:9", "localhost"):
            assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "evil.example:80", "192.168.1.10", "nearcode", "localhost.evil.example"):
            response = client.get("/api/health", headers={"Host": host})
            assert response.status_code == 421, host
            assert "Host header must name this machine" in response.json()["error"]
    token = endpoint(daemon_env)["token"]
    # A rebinding page would send its own name; without Host at all (HTTP/1.0) nothing is answered either.
    assert _raw(daemon_env, b"GET /api/health HTTP/1.0\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n").startswith(b"HTTP/1.1 421")


def test_request_bodies_are_capped(daemon_env: dict[str, str]) -> None:
    huge = b'{"prefix": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    with daemon_http(daemon_env) as client:
        response = client.post("/api/fim", content=huge, headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text[:200]
        assert response.json()["limit_bytes"] == 8 * 1024 * 1024
        # Chunked (no Content-Length): counted as it arrives, refused the same way.
        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"x" * (1024 * 1024)
        response = client.post("/api/generate", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert client.get("/api/health").status_code == 200, "the daemon still serves"


def test_the_runtime_directory_must_be_real_private_and_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "runtime-link"
    link.symlink_to(target)
    monkeypatch.setenv("NEARCODE_RUNTIME_DIR", str(link))
    with pytest.raises(PermissionError, match="symbolic link"):
        paths.runtime_dir()
    file = tmp_path / "a-file"
    file.write_text("")
    monkeypatch.setenv("NEARCODE_RUNTIME_DIR", str(file))
    with pytest.raises(PermissionError, match="not a directory"):
        paths.runtime_dir()
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    if os.getuid() == 0:
        os.chown(foreign, 65534, 65534)
    else:
        foreign = Path("/")  # owned by root: not ours
    monkeypatch.setenv("NEARCODE_RUNTIME_DIR", str(foreign))
    with pytest.raises(PermissionError, match="another user"):
        paths.runtime_dir()
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    monkeypatch.setenv("NEARCODE_RUNTIME_DIR", str(loose))
    assert paths.runtime_dir() == loose and loose.stat().st_mode & 0o777 == 0o700  # ours: made private


def test_a_daemon_will_not_start_in_a_linked_runtime_directory(tmp_path: Path) -> None:
    import subprocess
    import sys

    target = tmp_path / "real"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    env = {**os.environ, "NEARCODE_RUNTIME_DIR": str(link)}
    done = subprocess.run([sys.executable, "-m", "nearcode", "daemon"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "symbolic link" in done.stderr, done.stderr[-500:]
    assert not (target / "daemon.json").exists()
