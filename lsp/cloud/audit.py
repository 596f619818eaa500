"""The local audit log of cloud requests: one JSON line per request sent (or refused after the
payload was built), with time, destination, size and what was redacted or withheld. Never the
payload itself: the log must not become a second copy of the code and its secrets.

A request is recorded before it leaves (outcome "sending"), and its outcome is appended as a
second line with the same `id` when the answer (or the error) comes back: a crash, a kill or a hung
endpoint cannot lose the record of what was sent. The file is append-only; `entries()` shows each
request once, in its latest state.

Path: `$NEARCODE_AUDIT_LOG`, else `$XDG_STATE_HOME/nearcode/cloud-audit.jsonl`
(`~/.local/state/...`); created 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nearcode.shared import paths


def audit_log_path() -> Path:
    explicit = os.environ.get("NEARCODE_AUDIT_LOG")
    if explicit:
        return Path(explicit)
    return paths.state_dir() / "cloud-audit.jsonl"


@dataclass
class AuditEntry:
    destination: str  # the endpoint URL the request went (or would have gone) to
    model: str
    task: str
    bytes_sent: int  # size of the exact request body
    redactions: dict[str, int]  # kind -> count
    withheld_files: list[str]  # denied files left out
    outcome: str  # "sending", "completed", "error: …", "refused: …"
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    response_bytes: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    updated: str = ""  # when the outcome was last changed


class AuditLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or audit_log_path()

    def record(self, entry: AuditEntry) -> None:
        """Append the entry now, flushed to disk before this returns (it precedes the request)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(entry), sort_keys=True) + "\n")
            log.flush()
            os.fsync(log.fileno())

    def update(self, entry: AuditEntry, outcome: str, response_bytes: int = 0) -> None:
        """The request's outcome, appended as a line with the same id."""
        entry.outcome, entry.response_bytes = outcome, response_bytes
        entry.updated = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.record(entry)

    def lines(self) -> list[dict[str, Any]]:
        """Every line as written (a sent request has two: "sending", then its outcome)."""
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def entries(self) -> list[dict[str, Any]]:
        """One entry per request, in its latest state, in the order the requests were made."""
        latest: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(self.lines()):
            latest[str(line.get("id") or f"line-{number}")] = line
        return list(latest.values())
