"""The exact request body a cloud hand-off would send, built once and shown before it is sent.

`build_payload` gathers the selection (and its file's name), refuses denied files, redacts secrets
and returns the JSON body byte for byte; the preview command shows that body and the send path
posts the same bytes (lsp/cloud/client.py), so what the user saw is what left the machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nearcode.lsp.cloud.redaction import env_values, redact
from nearcode.shared.deny import DenyList

TASKS = {
    "complete": "Complete the following code. Reply with only the code that comes next.",
    "explain": "Explain what the following code does, briefly.",
    "improve": "Improve the following code (correctness, clarity). Reply with only the improved code.",
    "tests": "Write unit tests for the following code. Reply with only the test code.",
}
MAX_SELECTION_CHARS = 40_000


class PayloadRefused(ValueError):
    """The selection may not be sent (denied file, empty, too large); the message says why."""


@dataclass(frozen=True)
class CloudPayload:
    body: bytes  # the exact request body
    destination: str
    model: str
    task: str
    redactions: dict[str, int] = field(default_factory=dict)
    redacted_lines: tuple[int, ...] = ()
    withheld_files: tuple[str, ...] = ()

    def preview(self) -> dict[str, Any]:
        """The CloudResult fields that describe this payload (the body is exactly what is sent)."""
        return {
            "destination": self.destination,
            "model": self.model,
            "task": self.task,
            "bytes": len(self.body),
            "redactions": self.redactions,
            "redacted_lines": list(self.redacted_lines),
            "withheld_files": list(self.withheld_files),
            "body": self.body.decode(),
        }


def build_payload(
    *,
    task: str,
    selection: str,
    relative_path: str,
    language: str,
    root: Path | None,
    endpoint: str,
    model: str,
    max_tokens: int = 512,
) -> CloudPayload:
    """Refuse denied files, redact the selection, and serialise the chat request once."""
    deny = DenyList.load(root)
    reason = deny.reason(relative_path)
    if reason is not None:
        raise PayloadRefused(f"nearcode: {relative_path} is never sent to a cloud model ({reason})")
    if not selection.strip():
        raise PayloadRefused("nearcode: nothing selected to send")
    if len(selection) > MAX_SELECTION_CHARS:
        raise PayloadRefused(f"nearcode: the selection is larger than {MAX_SELECTION_CHARS} characters")
    instruction = TASKS.get(task, task.strip() or TASKS["explain"])
    redacted = redact(selection, env_values(root) if root else ())
    # The path's basename only: the folder layout of the user's machine is not the model's business.
    name = Path(relative_path).name
    messages = [
        {"role": "system", "content": "You are a careful senior software engineer."},
        {"role": "user", "content": f"{instruction}\n\nFile: {name} ({language})\n```{language}\n{redacted.text}\n```"},
    ]
    body = json.dumps({"model": model, "messages": messages, "max_tokens": max_tokens, "stream": False}, ensure_ascii=False)
    return CloudPayload(
        body=body.encode(),
        destination=endpoint.rstrip("/") + "/chat/completions",
        model=model,
        task=task,
        redactions=redacted.counts,
        redacted_lines=tuple(sorted({line for _, line in redacted.findings})),
    )
