"""Never do work twice, never do stale work: the editor-facing side of completion.

Per document, at most one model request is in flight. A new request is answered, in order:
1. from the typing cache (the user typed into, or deleted back from, a suggestion; or accepted a
   line of a multi-line one): no model call;
2. by joining the in-flight request when the user only typed characters its stream has produced
   (or is still producing): no second model call;
3. otherwise a new one starts, and the daemon's scheduler supersedes the stale one (same editor and
   document): the one mechanism that stops stale work, for this server and any other client.
An editor's `$/cancelRequest` usually comes right before its next keystroke's request; the
in-flight request is kept for a short grace period so that request can join it, and cancelled if
none does.

Two more things keep the wait short. Speculation: once a suggestion at the end of a line is
offered, the completion that would follow accepting it and pressing Enter is computed at
speculative priority and cached (llama.vscode prefetches the same way); the user's next model
request for the document supersedes it in the daemon. Adaptive debounce: when the user types faster than the engine answers, a new
model call waits a fraction of the typing interval, so a keystroke that follows at once replaces
it before any work starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from nearcode.lsp.completion import (
    CompletionOutcome,
    CursorText,
    StatusListener,
    ask_model,
    log_outcome,
    plan_for,
    refusal,
)
from nearcode.lsp.daemon_client import DaemonClient
from nearcode.lsp.policy import CompletionPlan
from nearcode.lsp.postprocess import PostContext, postprocess
from nearcode.lsp.typing_cache import Place, TypingCache, place_of
from nearcode.shared.protocol.settings import Settings

JOIN_GRACE_S = 0.25  # how long a cancelled request's generation waits for a follow-up to join it
MAX_DEBOUNCE_S = 0.15
DEBOUNCE_INTERVALS = 0.75  # the debounce while typing outpaces answers, in average keystroke gaps
_EMA = 0.3  # weight of the newest sample in the typing-interval and latency averages
_BLOCK_OPENERS = (":", "{", "(", "[")
_BURST_END_CHARS = frozenset("([{,:=.")


@dataclass
class Inflight:
    place: Place
    line_prefix: str
    task: asyncio.Task[CompletionOutcome]
    raw: list[str] = field(default_factory=list)
    waiters: int = 0
    release: asyncio.TimerHandle | None = None
    # Set when the stream holds a complete first line: a multi-line request answers with it then
    # and lets the rest arrive in the typing cache.
    line_done: asyncio.Event = field(default_factory=asyncio.Event)

    def on_delta(self, text: str) -> None:
        self.raw.append(text)
        if "\n" in text and "".join(self.raw).lstrip("\n").find("\n") > 0:
            self.line_done.set()

    def accepts(self, place: Place, line_prefix: str) -> bool:
        """Would this stream answer a request at `place` with `line_prefix`?"""
        if self.task.done() or place != self.place or not line_prefix.startswith(self.line_prefix):
            return False
        typed = line_prefix[len(self.line_prefix) :]
        produced = "".join(self.raw)
        return produced.startswith(typed) or typed.startswith(produced)

    def cancel(self) -> None:
        if self.release is not None:
            self.release.cancel()
        self.task.cancel()


class CompletionCoordinator:
    def __init__(self, daemon: DaemonClient, client_id: str) -> None:
        self.daemon = daemon
        self.client_id = client_id
        self.cache = TypingCache()
        self.inflight: dict[str, Inflight] = {}
        self.speculation: dict[str, asyncio.Task[None]] = {}
        self.counters: Counter[str] = Counter()
        self.last_request_at: dict[str, float] = {}
        self.typing_interval_s: float | None = None
        self.model_latency_s: float | None = None
        # Set by the server (lsp/server_state.py): choices per model request (more than one where the
        # engine batches them cheaply), and who hears the daemon's status events.
        self.choices = 1
        self.on_status: StatusListener | None = None

    async def complete(self, cursor: CursorText, settings: Settings, invoked: bool) -> CompletionOutcome:
        started = time.monotonic()
        self.counters["requests"] += 1
        self._note_keystroke(cursor.uri, started)
        reason = refusal(cursor, settings)
        if reason:
            return CompletionOutcome(reason=reason)
        hit = self.cache.lookup(cursor.uri, cursor.prefix, cursor.suffix)
        if hit is not None:
            self.counters["cache"] += 1
            outcome = CompletionOutcome(text=hit.text, reason=hit.reason, source="cache")
            outcome.latency_ms = round((time.monotonic() - started) * 1000, 1)
            log_outcome(outcome, settings)
            return outcome
        plan = plan_for(cursor, settings, invoked)
        if plan.skip_reason:
            return CompletionOutcome(reason=plan.skip_reason)
        place, line_prefix = place_of(cursor.uri, cursor.prefix, cursor.suffix)
        current = self.inflight.get(cursor.uri)
        if current is not None and current.accepts(place, line_prefix):
            await self._wait(current)
            hit = self.cache.lookup(cursor.uri, cursor.prefix, cursor.suffix)
            if hit is not None:
                self.counters["joined"] += 1
                outcome = CompletionOutcome(text=hit.text, reason="joined in-flight", source="joined")
                outcome.latency_ms = round((time.monotonic() - started) * 1000, 1)
                log_outcome(outcome, settings)
                return outcome
            # The stream went another way than the user typed: ask again (its prompt is warm now).
            self.counters["joined_diverged"] += 1
        if current is not None and not current.task.done():
            # The new request supersedes it in the daemon (same client and document): the one
            # supersede mechanism, which also ends this document's speculation.
            self.counters["cancelled_stale"] += 1
        if not invoked:
            delay = self.debounce_s(settings, cursor.prefix)
            if delay:
                await asyncio.sleep(delay)  # a cancel meanwhile means no work was started at all
        self.counters["model"] += 1
        raw: list[str] = []
        task = asyncio.create_task(self._run(cursor, plan, settings, raw))
        # A generation can outlive every waiter (answered early, or abandoned): its failure is then
        # nobody's error, and must not be reported as an unretrieved exception.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        entry = Inflight(place, line_prefix, task, raw)
        self.inflight[cursor.uri] = entry
        early = None
        if plan.mode == "multi":
            early = await self._first_line(entry, cursor, plan, settings)
        outcome = early or await self._wait(entry)
        outcome.latency_ms = round((time.monotonic() - started) * 1000, 1)
        return outcome

    async def _first_line(
        self, entry: Inflight, cursor: CursorText, plan: CompletionPlan, settings: Settings
    ) -> CompletionOutcome | None:
        """Answer with the complete lines streamed so far once there is one; the generation goes
        on and its full answer lands in the typing cache for the next keystroke or accept."""
        entry.waiters += 1
        waiter = asyncio.ensure_future(entry.line_done.wait())
        try:
            await asyncio.wait({waiter, entry.task}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            entry.waiters -= 1
            if entry.waiters == 0 and not entry.task.done():
                entry.release = asyncio.get_running_loop().call_later(JOIN_GRACE_S, entry.task.cancel)
            raise
        finally:
            waiter.cancel()
        entry.waiters -= 1
        if entry.task.done():
            return None  # the whole answer is there: the normal path returns it
        raw = "".join(entry.raw)
        complete_lines = raw[: raw.rfind("\n")]
        candidate = postprocess(
            complete_lines,
            PostContext(prefix=cursor.prefix, suffix=cursor.suffix, mode=plan.mode, max_lines=plan.max_lines),
        )
        if candidate.dropped:
            return None
        self.counters["first_line"] += 1
        self.cache.store(cursor.uri, cursor.prefix, cursor.suffix, candidate.text)
        outcome = CompletionOutcome(text=candidate.text, reason="first line; more on the way", source="model")
        log_outcome(outcome, settings)
        return outcome

    async def _run(
        self, cursor: CursorText, plan: CompletionPlan, settings: Settings, raw: list[str]
    ) -> CompletionOutcome:
        try:
            outcome = await ask_model(
                self.daemon, cursor, plan, settings, self.client_id, on_delta=self._delta_sink(cursor.uri, raw),
                n=self.choices, on_status=self.on_status,
            )
        finally:
            current = self.inflight.get(cursor.uri)
            if current is not None and current.task is asyncio.current_task():
                del self.inflight[cursor.uri]
        if outcome.source == "model" and outcome.finish_reason not in ("cancelled", "superseded"):
            sample = outcome.latency_ms / 1000
            self.model_latency_s = sample if self.model_latency_s is None else _mix(self.model_latency_s, sample)
        if outcome.offered:
            self.cache.store(cursor.uri, cursor.prefix, cursor.suffix, outcome.text)
            if settings.speculate:
                self._start_speculation(cursor, outcome.text, settings)
        return outcome

    def _delta_sink(self, uri: str, raw: list[str]) -> Callable[[str], None]:
        def sink(text: str) -> None:
            entry = self.inflight.get(uri)
            if entry is not None and entry.raw is raw:
                entry.on_delta(text)
            else:
                raw.append(text)

        return sink

    def debounce_s(self, settings: Settings, prefix: str = "") -> float:
        """The one debounce: before a model call for an automatic request, wait a fraction of the
        typing interval when keystrokes come faster than answers (a keystroke that follows at once
        replaces the request before any work starts), and at least the `debounceMs` setting. A
        keystroke that likely ends a burst starts at once: waiting there only delays the answer
        the user is about to look for."""
        floor = settings.debounce_ms / 1000
        typing, latency = self.typing_interval_s, self.model_latency_s
        if typing is None or latency is None or typing >= latency or likely_burst_end(prefix):
            return floor
        # Measured against longer waits (1.4 intervals): bench/replay.py moved within noise and
        # lspbench's typing-warm lost exact lines, so the request starts within the typing gap.
        return max(floor, min(MAX_DEBOUNCE_S, DEBOUNCE_INTERVALS * typing))

    def _note_keystroke(self, uri: str, now: float) -> None:
        previous = self.last_request_at.get(uri)
        self.last_request_at[uri] = now
        if previous is not None and now - previous < 2.0:  # a pause is not a typing speed
            sample = now - previous
            self.typing_interval_s = sample if self.typing_interval_s is None else _mix(self.typing_interval_s, sample)

    def _start_speculation(self, cursor: CursorText, text: str, settings: Settings) -> None:
        after = next_line_cursor(cursor, text)
        if after is None:
            return
        self.cancel_speculation()

        async def speculate() -> None:
            plan = plan_for(after, settings, invoked=False)
            # Same document as the user's requests: the next one supersedes it in the daemon.
            outcome = await ask_model(self.daemon, after, plan, settings, self.client_id, priority="speculative")
            self.counters["speculated"] += 1
            if outcome.offered:
                self.cache.store(after.uri, after.prefix, after.suffix, outcome.text)

        task = asyncio.create_task(speculate())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures are not errors here
        self.speculation[cursor.uri] = task

    def cancel_speculation(self, uri: str | None = None) -> None:
        """Cancel the speculation for `uri`, or all of them."""
        for key in [uri] if uri is not None else list(self.speculation):
            task = self.speculation.pop(key, None) if key is not None else None
            if task is not None and not task.done():
                task.cancel()

    def forget(self, uri: str) -> None:
        """The document was closed: nothing more is computed for it."""
        self.cancel_speculation(uri)
        entry = self.inflight.pop(uri, None)
        if entry is not None:
            entry.cancel()
        self.last_request_at.pop(uri, None)

    async def _wait(self, entry: Inflight) -> CompletionOutcome:
        """Wait for the in-flight request; if this waiter is cancelled, let the request go on
        briefly for a follow-up to join, and cancel it when nobody waits for it any more."""
        entry.waiters += 1
        if entry.release is not None:
            entry.release.cancel()
            entry.release = None
        try:
            return await asyncio.shield(entry.task)
        finally:
            entry.waiters -= 1
            if entry.waiters == 0 and not entry.task.done():
                entry.release = asyncio.get_running_loop().call_later(JOIN_GRACE_S, entry.task.cancel)

    async def close(self) -> None:
        self.cancel_speculation()
        for entry in list(self.inflight.values()):
            entry.cancel()
            with contextlib.suppress(BaseException):
                await entry.task


def likely_burst_end(prefix: str) -> bool:
    """Whether the keystroke that left the text before the cursor as `prefix` is one after which
    people tend to stop and look for a suggestion: Enter (the line holds only its indentation), or
    an opening bracket, a separator or an operator asking for what follows (`(`, `,`, `=`, `.`, ...),
    with at most one space after it."""
    if not prefix:
        return False
    line = prefix[prefix.rfind("\n") + 1 :]
    if not line.strip():
        return True
    stripped = line.rstrip(" ")
    return stripped[-1] in _BURST_END_CHARS and len(line) - len(stripped) <= 1


def _mix(average: float, sample: float) -> float:
    return (1 - _EMA) * average + _EMA * sample


def next_line_cursor(cursor: CursorText, text: str) -> CursorText | None:
    """Where the cursor will be once `text` is accepted and Enter pressed, or None when that is not
    a simple continuation (text after the cursor on its line, or a suggestion without a full line)."""
    newline = cursor.suffix.find("\n")
    if (cursor.suffix if newline < 0 else cursor.suffix[:newline]).strip():
        return None
    line_start = cursor.prefix.rfind("\n") + 1
    last_line = (cursor.prefix[line_start:] + text).split("\n")[-1]
    if not last_line.strip():
        return None
    indent = last_line[: len(last_line) - len(last_line.lstrip(" \t"))]
    if last_line.rstrip().endswith(_BLOCK_OPENERS):
        indent += "\t" if indent.startswith("\t") else "    "
    prefix = cursor.prefix + text + "\n" + indent
    return CursorText(prefix=prefix, suffix=cursor.suffix, uri=cursor.uri, path=cursor.path, language=cursor.language)
