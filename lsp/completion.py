"""The completion pipeline shared by inline completion, classic completion and `nearcode complete`:
policy -> daemon request -> post-processing, with the reason whenever nothing is offered."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from nearcode.lsp.alternatives import distinct
from nearcode.lsp.daemon_client import DaemonClient
from nearcode.lsp.policy import CompletionPlan, plan_completion
from nearcode.lsp.postprocess import Candidate, PostContext, postprocess
from nearcode.shared.protocol.daemon_api import (
    ALTERNATIVE_TEMPERATURES,
    PREFIX_WINDOW_CHARS,
    SUFFIX_WINDOW_CHARS,
    DeltaEvent,
    DoneEvent,
    FimRequest,
    Priority,
    StatusEvent,
)
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")

# Finish reasons of a stream nobody should see the end of: what it produced is not an answer.
ABANDONED = ("superseded", "cancelled")

# The reason of an answer the daemon cut at its lower token cap for load (DoneEvent.max_tokens).
SHORTENED = "shortened: other editors share the engine"
# Finish reasons of a complete answer (others: cut by a deadline, stopped, failed).
COMPLETE = ("stop", "newline", "length")
ALTERNATIVES_MIN_MS = 2_000  # the least time alternatives get after an explicit request's answer

# Hears the daemon's status events of a request (the model being loaded again after idle time).
StatusListener = Callable[[StatusEvent], None]


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
    shortened: bool = False  # cut at the daemon's lower token cap for load (DoneEvent.max_tokens)
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    source: str = ""  # "model", "cache" (typed through, walked back, next line) or "joined" (in-flight)
    error: str = ""  # the daemon's error event: the engine or daemon failed (not a refusal)
    # Other distinct suggestions for the same place (lsp/alternatives.py), best first after `text`.
    alternatives: list[str] = field(default_factory=list)

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


async def ask_alternatives(
    client: DaemonClient, cursor: CursorText, settings: Settings, client_id: str, first: CompletionOutcome,
    n: int, on_status: StatusListener | None = None,
) -> list[str]:
    """Up to `n` sampled suggestions for the place `first` answered, none like it: an explicit
    request, which the editor lets the user cycle through.

    One daemon request after the first answer, in the document's engine slot, whose KV cache
    holds the prompt: it only generates. It gets at most as long as the first answer took (at
    least ALTERNATIVES_MIN_MS), and only complete suggestions count. Its own stream key, so it
    does not stop the document's running generation (a multi-line answer still streaming into the
    typing cache); the editor's cancel of the request stops it."""
    plan = plan_for(cursor, settings, invoked=True)
    if plan.skip_reason or n < 1:
        return []
    budget_ms = int(max(ALTERNATIVES_MIN_MS, first.latency_ms))
    sampled = await ask_model(
        client, cursor, plan, settings, client_id, n=n, on_status=on_status, temperature=ALTERNATIVE_TEMPERATURES[-1],
        deadline_ms=budget_ms, document=f"{cursor.uri}#alternatives",
    )
    texts = [*([sampled.text] if sampled.finish_reason in COMPLETE else []), *sampled.alternatives]
    return distinct([first.text, *texts])[1:]


async def ask_model(
    client: DaemonClient,
    cursor: CursorText,
    plan: CompletionPlan,
    settings: Settings,
    client_id: str,
    on_delta: Callable[[str], None] | None = None,
    priority: Priority = "interactive",
    n: int = 1,
    on_status: StatusListener | None = None,
    temperature: float = 0.0,
    deadline_ms: int | None = None,
    document: str | None = None,
) -> CompletionOutcome:
    """Stream one FIM request from the daemon and post-process the answer (each of the `n`
    choices; `on_delta` hears the first). The document is the daemon's supersede key: a newer
    request of this editor for it stops this one. `deadline_ms` and `document` replace the
    plan's deadline and the cursor's document."""
    started = time.monotonic()
    request = FimRequest(
        prefix=cursor.prefix,
        suffix=cursor.suffix,
        language=cursor.language,
        path=cursor.path,
        mode=plan.mode,
        max_tokens=plan.max_tokens,
        max_lines=plan.max_lines,
        stop_at_block_end=plan.mode == "multi",
        deadline_ms=deadline_ms or plan.deadline_ms,
        max_generation_ms=plan.max_generation_ms,
        document=document or cursor.uri,
        affinity=cursor.uri,  # speculation shares the document's engine slot and its KV cache
        client=client_id,
        priority=priority,
        context_mode=settings.context,
        n=n,
        temperature=temperature,
    )
    streamed = await _read_choices(client, request, on_delta, on_status)
    outcome = streamed.outcome
    context = PostContext(prefix=cursor.prefix, suffix=cursor.suffix, mode=plan.mode, max_lines=plan.max_lines)
    raws = ["".join(choice) for choice in streamed.pieces]
    candidates = [postprocess(raw, context) for raw in raws]
    outcome.latency_ms = round((time.monotonic() - started) * 1000, 1)
    outcome.source = "model"
    _conclude(outcome, candidates, streamed.cut)
    log_outcome(outcome, settings, raws[0])
    return outcome


@dataclass
class _StreamedChoices:
    outcome: CompletionOutcome  # the first choice's ending, or the stream's error
    pieces: list[list[str]]  # each choice's text as it came
    cut: set[int]  # alternatives stopped by their time budget: half a line is no suggestion


async def _read_choices(
    client: DaemonClient, request: FimRequest, on_delta: Callable[[str], None] | None,
    on_status: StatusListener | None,
) -> _StreamedChoices:
    streamed = _StreamedChoices(CompletionOutcome(), [[] for _ in range(request.n)], set())
    outcome = streamed.outcome
    async for event in client.stream_fim(request):
        if isinstance(event, DeltaEvent):
            streamed.pieces[event.index].append(event.text)
            if on_delta is not None and event.index == 0:
                on_delta(event.text)
        elif isinstance(event, DoneEvent):
            if event.index and event.finish_reason not in COMPLETE:
                streamed.cut.add(event.index)
            if event.index == 0:
                outcome.finish_reason = event.finish_reason
                outcome.prompt_tokens = event.prompt_tokens
                outcome.cached_tokens = event.cached_tokens
                # The daemon lowered the token cap because other editors shared the engine.
                outcome.shortened = event.finish_reason == "length" and 0 < event.max_tokens < request.max_tokens
        elif isinstance(event, StatusEvent):
            if on_status is not None:
                on_status(event)
        else:
            outcome.error = event.message
            outcome.reason = f"engine error: {event.message}"
    return streamed


def _conclude(outcome: CompletionOutcome, candidates: list[Candidate], cut: set[int]) -> None:
    """What is offered (the distinct choices that survived post-processing) and the reason."""
    offered = distinct([c.text for i, c in enumerate(candidates) if not c.dropped and i not in cut])
    if outcome.error:
        return  # a failed stream's text is not an answer; the reason says what failed
    if outcome.finish_reason in ABANDONED:
        outcome.reason = outcome.finish_reason  # a newer request took over: its text is stale
    elif not offered:
        outcome.reason = candidates[0].dropped or "no choice survived post-processing"
    else:
        outcome.text, outcome.alternatives = offered[0], offered[1:]
        first = candidates[0]
        if first.dropped:
            outcome.reason = f"a sampled choice (the first: {first.dropped})"
        else:
            # Cut for load explains a short suggestion better than a filter's tidying after it.
            outcome.reason = SHORTENED if outcome.shortened else first.cuts[-1] if first.cuts else outcome.finish_reason


def log_outcome(outcome: CompletionOutcome, settings: Settings, raw: str = "") -> None:
    if settings.log_document_text:
        log.info("completion %s raw=%r shown=%r reason=%s", outcome.completion_id, raw, outcome.text, outcome.reason)
        return
    log.info(
        "completion %s: %d chars offered (+%d alternatives), source=%s, reason=%s, %.0f ms, prompt %d tokens (%d cached)",
        outcome.completion_id, len(outcome.text), len(outcome.alternatives), outcome.source, outcome.reason,
        outcome.latency_ms, outcome.prompt_tokens, outcome.cached_tokens,
    )
