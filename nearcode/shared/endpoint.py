"""The daemon's address file: where it listens and the token to use. Written 0600, atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Endpoint:
    transport: str  # "unix" or "tcp"
    token: str
    pid: int
    path: str = ""  # unix socket
    host: str = ""  # tcp (loopback only)
    port: int = 0
    version: str = ""

    @property
    def base_url(self) -> str:
        if self.transport == "unix":
            return "http://localhost"
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return self.path if self.transport == "unix" else f"{self.host}:{self.port}"

    def write(self, file: Path) -> None:
        tmp = file.with_name(f".{file.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, file)

    @classmethod
    def read(cls, file: Path) -> Endpoint | None:
        try:
            data = json.loads(file.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs. A zombie (killed, not yet collected by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is
    return state not in ("Z", "X")
