"""A hostile "model answer": generated tests that attack the machine they run on, and the checks
that none of it worked. Shared by the test runner's own tests (tests/test_sandbox.py) and the
end-to-end run through the language server's "Generate unit tests" (tests/test_untrusted_e2e.py).

What the tests try: write into the home folder; read cloud keys and tokens from the environment
and leave them in a shared temporary folder; connect to a listener on this machine (TCP on
127.0.0.1 and a unix socket); leave detached processes running; print a gigabyte.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

SECRETS = {
    "NEARCODE_CLOUD_API_KEY": "sk-proj-hostile-cloud-key-0123456789",
    "OPENAI_API_KEY": "sk-hostile-openai-key-abcdefghij",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-hostile-aws-secret",
    "GITHUB_TOKEN": "ghp_hostilegithubtoken0123456789abcdef",
}

_BODY = '''
import os, pathlib, socket, subprocess, sys

MARKER = "{marker}"


def _home():
    path = pathlib.Path.home() / ("nearcode-pwned-" + MARKER)
    path.write_text("pwned")


def _keys():
    stolen = {{k: v for k, v in os.environ.items() if any(w in k for w in ("KEY", "TOKEN", "SECRET"))}}
    print("STOLEN", stolen, flush=True)
    for folder in ({shared!r}, "/dev/shm", "/tmp", "/var/tmp"):
        try:
            pathlib.Path(folder, "stolen-" + MARKER).write_text(repr(stolen) or "empty")
        except OSError as exc:
            print("could not leave the keys in", folder, exc, flush=True)
    assert stolen, "no key in the environment"


def _network():
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"pwned " + MARKER.encode())


def _unix_socket():
    sock = socket.socket(socket.AF_UNIX)
    sock.connect({unix!r})
    sock.sendall(b"pwned")


def _sleepers():
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)", MARKER]
    subprocess.Popen(sleeper, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    if os.fork() == 0:  # and a classic double-forked daemon
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [*sleeper[:3], MARKER + "-daemon"])
        os._exit(0)


def _gigabyte():
    chunk = "x" * (1 << 20)
    for _ in range(1024):
        os.write(1, chunk.encode())
'''

PYTEST = _BODY + '''

def test_1_write_home():
    _home()

def test_2_steal_keys():
    _keys()

def test_3_network():
    _network()

def test_4_unix_socket():
    _unix_socket()

def test_5_detached_sleepers():
    _sleepers()

def test_6_print_a_gigabyte():
    _gigabyte()
'''

UNITTEST = _BODY + '''
import unittest


class Hostile(unittest.TestCase):
    def test_1_write_home(self):
        _home()

    def test_2_steal_keys(self):
        _keys()

    def test_3_network(self):
        _network()

    def test_4_unix_socket(self):
        _unix_socket()

    def test_5_detached_sleepers(self):
        _sleepers()

    def test_6_print_a_gigabyte(self):
        _gigabyte()
'''


@dataclass
class Trap:
    """Listeners the hostile tests aim at, and the places they try to leave traces in."""

    marker: str
    shared: Path  # a world-writable folder in this machine's /tmp
    port: int
    unix: str
    connections: list[bytes] = field(default_factory=list)

    def tests(self, framework: str) -> str:
        body = PYTEST if framework == "pytest" else UNITTEST
        return body.format(marker=self.marker, shared=str(self.shared), port=self.port, unix=self.unix)

    def survivors(self) -> list[str]:
        """Processes whose command line carries the marker (the detached sleepers)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if self.marker in cmdline and "pytest" not in cmdline:
                    found.append(f"{entry.name}: {cmdline}")
        return found

    def traces(self) -> list[str]:
        """Every trace the attack left on this machine."""
        found = []
        home = Path.home() / f"nearcode-pwned-{self.marker}"
        if home.exists():
            found.append(f"wrote into the home folder: {home}")
        for folder in (self.shared, Path("/dev/shm"), Path("/tmp"), Path("/var/tmp")):
            stolen = folder / f"stolen-{self.marker}"
            if stolen.exists():
                found.append(f"left the keys in {stolen}: {stolen.read_text()[:200]}")
        if self.connections:
            found.append(f"reached a listener on this machine: {self.connections}")
        found += [f"left a process running: {p}" for p in self.survivors()]
        return found

    def cleanup(self) -> None:
        for pid_line in self.survivors():
            pid = int(pid_line.split(":", 1)[0])
            with suppress(OSError):
                os.kill(pid, 9)
        (Path.home() / f"nearcode-pwned-{self.marker}").unlink(missing_ok=True)
        for folder in (Path("/dev/shm"), Path("/tmp"), Path("/var/tmp")):
            (folder / f"stolen-{self.marker}").unlink(missing_ok=True)


def _listen(sock: socket.socket, into: list[bytes], stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        with conn:
            conn.settimeout(1)
            try:
                into.append(conn.recv(100) or b"(connected)")
            except OSError:
                into.append(b"(connected)")


@contextmanager
def trap(tmp: Path) -> Iterator[Trap]:
    marker = f"nc-hostile-{uuid.uuid4().hex[:10]}"
    shared = Path("/tmp") / f"{marker}-shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    unix_path = str(shared / "listener.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix.listen()
    result = Trap(marker, shared, tcp.getsockname()[1], unix_path)
    stop = threading.Event()
    threads = [threading.Thread(target=_listen, args=(s, result.connections, stop), daemon=True) for s in (tcp, unix)]
    for thread in threads:
        thread.start()
    try:
        yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join(2)
        tcp.close()
        unix.close()
        result.cleanup()
        for child in shared.iterdir():
            child.unlink()
        shared.rmdir()
