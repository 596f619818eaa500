"""When to ask the model, and for how much: the completion policy.

Mid-line (text after the cursor) asks for the rest of the line; an empty or indentation-only line
asks for up to a few lines; the end of a non-empty line asks for the rest of that line. An automatic
request mid-line with more than a few characters after the cursor is skipped (llama.vscode's rule):
the user is editing inside existing code, and a suggestion there is mostly noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nearcode.shared.protocol.settings import Settings

MAX_AUTO_LINE_SUFFIX = 8  # characters after the cursor that still allow an automatic request
_CLOSERS = set(")]}>\"'`;:, ")

Mode = Literal["single", "multi"]


@dataclass(frozen=True)
class CompletionPlan:
    mode: Mode
    max_tokens: int
    max_lines: int
    deadline_ms: int
    max_generation_ms: int
    skip_reason: str | None = None


def plan_completion(
    line_prefix: str, line_suffix: str, invoked: bool, settings: Settings
) -> CompletionPlan:
    suffix = line_suffix.rstrip("\r\n")
    if suffix.strip():
        skip = None
        if not invoked and len(suffix.strip()) > MAX_AUTO_LINE_SUFFIX and not set(suffix) <= _CLOSERS:
            skip = "text after the cursor"
        return _single(skip, invoked)
    if not line_prefix.strip():
        return CompletionPlan(
            mode="multi",
            max_tokens=160,
            max_lines=settings.max_lines,
            deadline_ms=_INVOKED_DEADLINE_MS if invoked else _AUTO_DEADLINE_MS,
            max_generation_ms=_INVOKED_GENERATION_MS if invoked else 2500,
        )
    return _single(None, invoked)


# The deadline covers reading a cold prompt (seconds on a 2-core CPU); once tokens flow, a line
# that is not done within `max_generation_ms` is cut rather than waited for. Someone who asked
# explicitly (invoked) waits longer than someone who is typing.
_AUTO_DEADLINE_MS = 9000
_INVOKED_DEADLINE_MS = 30_000
_INVOKED_GENERATION_MS = 8000


def _single(skip: str | None, invoked: bool) -> CompletionPlan:
    return CompletionPlan(
        mode="single",
        max_tokens=64,
        max_lines=1,
        deadline_ms=_INVOKED_DEADLINE_MS if invoked else _AUTO_DEADLINE_MS,
        max_generation_ms=_INVOKED_GENERATION_MS if invoked else 1500,
        skip_reason=skip,
    )
