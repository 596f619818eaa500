"""The local audit log of cloud requests: one JSON line per request sent (or refused after the
payload was built), with time, destination, size and what was redacted or withheld. Never the
payload itself: the log must not become a second copy of the code and its secrets.

Path: `$NEARCODE_AUDIT_LOG`, else `$XDG_STATE_HOME/nearcode/cloud-audit.jsonl`
(`~/.local/state/...`); created 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def audit_log_path() -> Path:
    explicit = os.environ.get("NEARCODE_AUDIT_LOG")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "nearcode" / "cloud-audit.jsonl"


@dataclass
class AuditEntry:
    destination: str  # the endpoint URL the request went (or would have gone) to
    model: str
    task: str
    bytes_sent: int  # size of the exact request body
    redactions: dict[str, int]  # kind -> count
    withheld_files: list[str]  # denied files left out
    outcome: str  # "sent", "completed", "error: …", "refused: …"
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    response_bytes: int = 0


class AuditLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or audit_log_path()

    def record(self, entry: AuditEntry) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(entry), sort_keys=True) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
