"""The completion pipeline shared by inline completion, classic completion and `nearcode complete`:
policy -> daemon request -> post-processing, with the reason whenever nothing is offered."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from nearcode.lsp.daemon_client import DaemonClient
from nearcode.lsp.policy import CompletionPlan, plan_completion
from nearcode.lsp.postprocess import PostContext, postprocess
from nearcode.shared.protocol.daemon_api import (
    PREFIX_WINDOW_CHARS,
    SUFFIX_WINDOW_CHARS,
    DeltaEvent,
    DoneEvent,
    FimRequest,
    Priority,
)
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")

# Finish reasons of a stream nobody should see the end of: what it produced is not an answer.
ABANDONED = ("superseded", "cancelled")


@dataclass(frozen=True)
class CursorText:
    """The document around the cursor, as plain Python strings."""

    prefix: str
    suffix: str
    uri: str
    path: str
    language: str


@dataclass
class CompletionOutcome:
    text: str = ""
    completion_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    reason: str = ""  # why nothing was offered, or the last cut applied
    finish_reason: str = ""
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    source: str = ""  # "model", "cache" (typed through, walked back, next line) or "joined" (in-flight)
    error: str = ""  # the daemon's error event: the engine or daemon failed (not a refusal)

    @property
    def offered(self) -> bool:
        return bool(self.text)


def cursor_text(source: str, offset: int, uri: str, path: str, language: str) -> CursorText:
    return CursorText(
        prefix=source[max(0, offset - PREFIX_WINDOW_CHARS) : offset],
        suffix=source[offset : offset + SUFFIX_WINDOW_CHARS],
        uri=uri,
        path=path,
        language=language,
    )


def refusal(cursor: CursorText, settings: Settings) -> str | None:
    """Why no completion may be offered here at all, or None."""
    if not settings.enable:
        return "completions are turned off"
    if cursor.language in settings.disabled_languages:
        return f"completions are turned off for {cursor.language}"
    if "\x00" in cursor.prefix or "\x00" in cursor.suffix:
        return "binary content"
    return None


def plan_for(cursor: CursorText, settings: Settings, invoked: bool) -> CompletionPlan:
    line_prefix = cursor.prefix[cursor.prefix.rfind("\n") + 1 :]
    newline = cursor.suffix.find("\n")
    line_suffix = cursor.suffix if newline < 0 else cursor.suffix[:newline]
    return plan_completion(line_prefix, line_suffix, invoked, settings)


async def complete(
    client: DaemonClient, cursor: CursorText, settings: Settings, invoked: bool, client_id: str
) -> CompletionOutcome:
    """One completion, start to end (the CLI's path; editors go through lsp/coordinator.py)."""
    reason = refusal(cursor, settings)
    plan = plan_for(cursor, settings, invoked)
    reason = reason or plan.skip_reason
    if reason:
        return CompletionOutcome(reason=reason)
    return await ask_model(client, cursor, plan, settings, client_id)


async def ask_model(
    client: DaemonClient,
    cursor: CursorText,
    plan: CompletionPlan,
    settings: Settings,
    client_id: str,
    on_delta: Callable[[str], None] | None = None,
    priority: Priority = "interactive",
) -> CompletionOutcome:
    """Stream one FIM request from the daemon and post-process the answer. The document is the
    daemon's supersede key: a newer request of this editor for it stops this one."""
    started = time.monotonic()
    outcome = CompletionOutcome()
    request = FimRequest(
        prefix=cursor.prefix,
        suffix=cursor.suffix,
        language=cursor.language,
        path=cursor.path,
        mode=plan.mode,
        max_tokens=plan.max_tokens,
        max_lines=plan.max_lines,
        stop_at_block_end=plan.mode == "multi",
        deadline_ms=plan.deadline_ms,
        max_generation_ms=plan.max_generation_ms,
        document=cursor.uri,
        affinity=cursor.uri,  # speculation shares the document's engine slot and its KV cache
        client=client_id,
        priority=priority,
        context_mode=settings.context,
    )
    pieces: list[str] = []
    async for event in client.stream_fim(request):
        if isinstance(event, DeltaEvent):
            pieces.append(event.text)
            if on_delta is not None:
                on_delta(event.text)
        elif isinstance(event, DoneEvent):
            outcome.finish_reason = event.finish_reason
            outcome.prompt_tokens = event.prompt_tokens
            outcome.cached_tokens = event.cached_tokens
        else:
            outcome.error = event.message
            outcome.reason = f"engine error: {event.message}"
    raw = "".join(pieces)
    candidate = postprocess(
        raw, PostContext(prefix=cursor.prefix, suffix=cursor.suffix, mode=plan.mode, max_lines=plan.max_lines)
    )
    outcome.latency_ms = round((time.monotonic() - started) * 1000, 1)
    outcome.source = "model"
    if outcome.error:
        pass  # a failed stream's text is not an answer; the reason says what failed
    elif outcome.finish_reason in ABANDONED:
        outcome.reason = outcome.finish_reason  # a newer request took over: its text is stale
    elif candidate.dropped:
        outcome.reason = candidate.dropped
    else:
        outcome.text = candidate.text
        outcome.reason = candidate.cuts[-1] if candidate.cuts else outcome.finish_reason
    log_outcome(outcome, settings, raw)
    return outcome


def log_outcome(outcome: CompletionOutcome, settings: Settings, raw: str = "") -> None:
    if settings.log_document_text:
        log.info("completion %s raw=%r shown=%r reason=%s", outcome.completion_id, raw, outcome.text, outcome.reason)
        return
    log.info(
        "completion %s: %d chars offered, source=%s, reason=%s, %.0f ms, prompt %d tokens (%d cached)",
        outcome.completion_id, len(outcome.text), outcome.source, outcome.reason, outcome.latency_ms,
        outcome.prompt_tokens, outcome.cached_tokens,
    )
