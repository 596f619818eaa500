"""From a FIM request to a stream of events: prompt, schedule, generate, stop where asked.

Its neighbours: the prompt budget from the engine's reading speed (daemon/prompting/read_budget.py),
read-ahead of a document's prompt (prefill_service.py), instruction generation (generate_service.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

from nearcode.daemon.context.assembler import ContextAssembler
from nearcode.daemon.context.document_prompts import BuiltPrompt, DocumentPrompts, PromptRequest
from nearcode.daemon.engines.base import (
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
)
from nearcode.daemon.engines.token_healing import cut_prompt, may_heal
from nearcode.daemon.prefill_service import PrefillService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.read_budget import ReadBudget
from nearcode.daemon.prompting.templates import FimTemplate
from nearcode.daemon.scheduler import GenerationHandle, Scheduler
from nearcode.daemon.stats import DaemonStats, RequestProgress, final_event
from nearcode.daemon.streams import FAILED_ENDINGS, PRIORITY_BY_NAME, ServiceError, ServiceEvent
from nearcode.shared.completion_end import StreamingEnd, block_indent_at
from nearcode.shared.protocol.daemon_api import (
    ALTERNATIVE_TEMPERATURES,
    ContextQuery,
    DeltaEvent,
    DoneEvent,
    FimRequest,
)
from nearcode.shared.protocol.editor import ContextResult

log = logging.getLogger("nearcode.daemon")

# Sampled alternatives after the first choice, on an engine that shares the cores: together at
# most as long as the first one took (at least ALTERNATIVES_MIN_S), each at most twice its length.
# They only generate (the prompt is cached): warm, that is a few hundred ms; on a machine so busy
# that it is not, an explicit request takes at most about twice as long, never more.
ALTERNATIVES_SHARE = 1.0
ALTERNATIVES_MIN_S = 2.0
ALTERNATIVE_MIN_TOKENS = 16

# A choice that ended so: nobody waits for the request any more.
_ABANDONED = (str(FinishReason.SUPERSEDED), str(FinishReason.CANCELLED))

# Endings that may come before the whole prompt was read.
_UNREAD = (str(FinishReason.CANCELLED), str(FinishReason.SUPERSEDED), str(FinishReason.DEADLINE))

@dataclasses.dataclass
class _Prepared:
    """A request's prompt as built (its source, the record showContext shows) and its engine request."""

    source: PromptRequest
    built: BuiltPrompt
    generation: GenerationRequest


class FimService:
    def __init__(
        self, scheduler: Scheduler, template: FimTemplate, budget: PromptBudget, stats: DaemonStats,
        context: ContextAssembler | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.template = template
        self.stats = stats
        self.reading = ReadBudget(budget, scheduler.gate.interactive_clients)
        engine = scheduler.engine
        self.prompts = DocumentPrompts(template, engine.count_tokens, context or ContextAssembler(),
                                       getattr(engine, "holds_slot", None))
        # Read-ahead into the same prompts; a completion of a document stops the document's.
        self.read_ahead = PrefillService(scheduler, self.prompts, self.reading)

    async def stream(self, req: FimRequest) -> AsyncIterator[ServiceEvent]:
        """The request's events. With `n` > 1 the first choice is greedy and the others sampled
        from the same prompt: one after another in the same engine slot on an engine that shares
        this machine's cores (each reuses the prompt the first one left in the KV cache, so an
        alternative costs only its generation), all at once on an engine that batches. A choice
        that is superseded or cancelled ends the request: nobody waits for its alternatives."""
        started = time.monotonic()
        prepared = await self._prepare(req, started)
        with self.stats.request(started) as first:
            try:
                async for event in self._choices(req, prepared.generation, started, first):
                    yield event
            finally:
                self._prompt_read(req, prepared, first)

    async def _choices(
        self, req: FimRequest, generation: GenerationRequest, started: float, first: RequestProgress
    ) -> AsyncIterator[ServiceEvent]:
        key = f"{req.client}\x00{req.document}" if req.document else None
        if req.n == 1:
            events = self._choice(req, generation, key, started, 0, first)
        elif self.scheduler.engine.info.shares_local_compute:
            events = self._sequential_choices(req, generation, key, started, first)
        else:
            events = self._batched_choices(req, generation, key, started, first)
        async for event in events:
            yield event

    async def _sequential_choices(
        self, req: FimRequest, generation: GenerationRequest, key: str | None, started: float, first: RequestProgress
    ) -> AsyncIterator[ServiceEvent]:
        """One choice after another in the document's slot (an engine that shares the cores): each
        alternative reuses the prompt the first left in the KV cache, so it costs only its tokens."""
        choice = generation
        for index in range(req.n):
            if index:
                choice = dataclasses.replace(choice, temperature=ALTERNATIVE_TEMPERATURES[index - 1])
            done: DoneEvent | None = None
            async for event in self._choice(req, choice, key, started, index, first if index == 0 else None):
                done = event if isinstance(event, DoneEvent) else done
                yield event
            if done is None or done.finish_reason in _ABANDONED:
                return
            if index == 0:
                choice = _alternatives_after(generation, done)

    def _prompt_read(self, req: FimRequest, prepared: _Prepared, first: RequestProgress) -> None:
        """What the engine now holds for the document's slot, and the record `showContext` shows."""
        source, built = prepared.source, prepared.built
        live, done = first.live, first.done
        self.read_ahead.completion_ended(source.record_key)
        read_all = bool(live and live.generated_tokens) or bool(done and done.finish_reason not in _UNREAD)
        self.prompts.read(source, prepared.generation.prompt, complete=read_all)
        if req.document and req.priority == "interactive":
            built.record.prompt_tokens = done.prompt_tokens if done else (live.prompt_tokens if live else 0)
            built.record.cached_tokens = done.cached_tokens if done else (live.cached_tokens if live else 0)
            self.prompts.records.put(source.record_key, built.record)

    async def _prepare(self, req: FimRequest, started: float) -> _Prepared:
        """The engine request for a FIM request: its prompt within budget (context block first,
        anchored where the document's previous prompt started), and the stops of its mode."""
        deadline = started + req.deadline_ms / 1000 if req.deadline_ms else None
        source = PromptRequest(
            client=req.client, document=req.document, affinity=req.affinity, path=req.path, language=req.language,
            prefix=req.prefix, suffix=req.suffix, context_mode=req.context_mode, single_line=req.mode == "single",
            extra_context=tuple(req.context),
        )
        # A completion reads what it needs itself: a read-ahead of the same document stops.
        self.read_ahead.completion_started(source.record_key)
        try:
            budget = self.reading.budget_for(req.client, req.priority)
            built = await self.prompts.build(source, budget, self.reading.warm_tokens())
            text, forced = await self._healed(req, built.prompt.text, built.prompt.prefix_end)
        except BaseException:
            self.read_ahead.completion_ended(source.record_key)
            raise
        stop = self.template.stop + (("\n",) if req.mode == "single" else ())
        max_tokens = req.max_tokens
        if self.scheduler.gate.one_at_a_time:  # under load, shorter answers (read_budget.py)
            max_tokens = self.reading.answer_tokens(req.client, req.max_tokens, req.priority)
        built.record.prompt, built.record.forced_start = text, forced  # showContext shows what was sent
        generation = GenerationRequest(
            prompt=text,
            forced_start=forced,
            max_tokens=max_tokens,
            stop=stop,
            deadline=deadline,
            max_generation_ms=req.max_generation_ms,
            priority=PRIORITY_BY_NAME[req.priority],
            affinity=req.affinity or req.document or None,
            temperature=req.temperature,
        )
        return _Prepared(source, built, generation)

    async def _healed(self, req: FimRequest, text: str, prefix_end: int) -> tuple[str, str]:
        """The prompt cut before the prefix's last token, and that token's text, which the answer
        must start with (engines/token_healing.py); the prompt as built where the engine cannot."""
        piece_of = getattr(self.scheduler.engine, "healing_piece", None)
        if piece_of is None or not may_heal(req.prefix) or prefix_end <= 0:
            return text, ""
        try:
            piece = await piece_of(req.prefix)
        except Exception:  # the engine's tokenizer failed: a completion without healing
            log.debug("token healing skipped: the engine could not tokenize", exc_info=True)
            return text, ""
        cut = cut_prompt(text, prefix_end, piece)
        return (cut, piece) if cut is not None else (text, "")

    async def _choice(
        self, req: FimRequest, generation: GenerationRequest, key: str | None, started: float, index: int,
        seen: RequestProgress | None = None,
    ) -> AsyncIterator[ServiceEvent]:
        """One choice through the scheduler, its events tagged with `index`; `seen` (the first
        choice's) keeps its last counters and final event for the request's counters and the
        prompt's bookkeeping."""
        handle = self.scheduler.submit(generation, key, req.client)
        async for event in self._fim_events(req, handle, started):
            if isinstance(event, GenerationStats):
                if seen is not None:
                    seen.live = event
                continue
            if isinstance(event, DoneEvent):
                event.max_tokens = generation.max_tokens  # the cap as applied (lower under load)
                if seen is not None:
                    seen.done = event
            event.index = index
            yield event

    async def _batched_choices(
        self, req: FimRequest, generation: GenerationRequest, key: str | None, started: float, first: RequestProgress
    ) -> AsyncIterator[ServiceEvent]:
        """All choices at once (an engine that batches reads the shared prompt once), merged as
        they arrive, as many as the engine has free slots for. Choice 0 keeps the document's stream
        key, so the next request for the document supersedes it, and with it the alternatives."""
        queue: asyncio.Queue[ServiceEvent | ServiceError | None] = asyncio.Queue()

        async def pump(index: int) -> None:
            choice_key = key if index == 0 or key is None else f"{key}\x00alternative {index}"
            try:
                seen = first if index == 0 else None
                async for event in self._choice(req, _sampled(generation, index), choice_key, started, index, seen):
                    queue.put_nowait(event)
            except ServiceError as exc:
                if index == 0:  # the request failed; a failed alternative is just not offered
                    queue.put_nowait(exc)
            finally:
                queue.put_nowait(None)

        # Cheap only while the engine has room: alternatives take free slots, never a queue place.
        gate = self.scheduler.gate
        free = gate.capacity - sum(gate.running.values())
        choices = 1 + max(0, min(req.n - 1, free - 1))
        tasks = [asyncio.create_task(pump(index)) for index in range(choices)]
        try:
            running = len(tasks)
            while running:
                event = await queue.get()
                if event is None:
                    running -= 1
                    continue
                if isinstance(event, ServiceError):
                    raise event
                yield event
                if isinstance(event, DoneEvent) and event.index == 0 and event.finish_reason in _ABANDONED:
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fim_events(
        self, req: FimRequest, handle: GenerationHandle, started: float
    ) -> AsyncIterator[ServiceEvent | GenerationStats]:
        """The stream's events, with the engine's live counters interleaved for the caller."""
        line_prefix = req.prefix[req.prefix.rfind("\n") + 1 :]
        end = StreamingEnd(
            max_lines=req.max_lines,
            block_indent=block_indent_at(line_prefix) if req.stop_at_block_end else None,
        )
        final: GenerationChunk | None = None
        live: GenerationStats | None = None
        try:
            async for chunk in handle.events():
                live = chunk.stats or live
                if live is not None:
                    yield live
                if chunk.finish_reason is not None:
                    final = chunk
                    if chunk.finish_reason in FAILED_ENDINGS:
                        raise ServiceError(chunk.text)
                    if rest := end.flush():
                        yield DeltaEvent(text=rest)
                    break
                text, over = end.feed(chunk.text)
                if text:
                    yield DeltaEvent(text=text)
                if over:  # the answer is complete (shared/completion_end.py): stop the engine now
                    final = GenerationChunk("", FinishReason.LENGTH if end.ended_by == "line limit" else FinishReason.STOP)
                    break
        except (GeneratorExit, asyncio.CancelledError):
            # The client left (an editor that showed the first line and moved on): what the engine
            # read so far still teaches the reading speed; otherwise a fresh daemon whose first
            # answers are all taken early never learns it and budgets every prompt at the maximum.
            self._ended(live, FinishReason.CANCELLED, started)
            raise
        reason = final.finish_reason if final and final.finish_reason else FinishReason.CANCELLED
        if reason == FinishReason.STOP and req.mode == "single":
            reason = FinishReason.NEWLINE  # the newline stop or end of text: the line is complete
        if final is not None and final.stats is None and live is not None:
            final.stats = live  # stopped early here: report what the engine had done so far
        self._ended(final.stats if final is not None else live, reason, started)
        yield final_event(final.stats if final else None, reason, started)

    def _ended(self, stats: GenerationStats | None, reason: FinishReason, started: float) -> None:
        """A stream ended, however: what the engine read teaches the reading speed; where the time
        went is logged at debug level (counts only, never text)."""
        self.reading.learn(stats)
        if stats is None or not log.isEnabledFor(logging.DEBUG):
            return
        speed = self.reading.tokens_per_s
        log.debug("fim %s after %.0f ms: %s; reading speed %s tokens/s", reason.value,
                  (time.monotonic() - started) * 1000, stats.describe_reading(), f"{speed:.1f}" if speed else "not measured")

    def context_report(self, query: ContextQuery) -> ContextResult:
        """What the last completion of (client, document) was given (`nearcode.showContext`)."""
        return self.prompts.report(query.client, query.document)


def _alternatives_after(generation: GenerationRequest, first: DoneEvent) -> GenerationRequest:
    """The sampled choices that follow the first on an engine that shares the cores: someone is
    waiting for the list, so together they get at most the time the first took (its prompt is
    cached: they only generate), and lines about as long as the first one's."""
    budget_s = max(ALTERNATIVES_MIN_S, ALTERNATIVES_SHARE * first.elapsed_ms / 1000)
    deadline = time.monotonic() + budget_s
    if generation.deadline is not None:
        deadline = min(deadline, generation.deadline)
    max_tokens = min(generation.max_tokens, max(ALTERNATIVE_MIN_TOKENS, 2 * first.generated_tokens))
    return dataclasses.replace(generation, deadline=deadline, max_tokens=max_tokens)


def _sampled(generation: GenerationRequest, index: int) -> GenerationRequest:
    """Choice `index` of a request: the first greedy, the others sampled at rising temperatures."""
    if index == 0:
        return generation
    return dataclasses.replace(generation, temperature=ALTERNATIVE_TEMPERATURES[index - 1])
