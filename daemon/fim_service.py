"""From a FIM request to a stream of events: prompt, schedule, generate, stop where asked."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator

from nearcode.daemon.context.assembler import ContextAssembler
from nearcode.daemon.context.document_prompts import BuiltPrompt, DocumentPrompts, PromptRequest
from nearcode.daemon.engines.base import (
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
    Priority,
)
from nearcode.daemon.prompting.chat import ChatMessage, render_chat
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import FimTemplate
from nearcode.daemon.scheduler import GenerationHandle, Scheduler
from nearcode.daemon.stats import DaemonStats, RequestProgress, final_event
from nearcode.shared.completion_end import StreamingEnd, block_indent_at
from nearcode.shared.protocol.daemon_api import (
    ALTERNATIVE_TEMPERATURES,
    ContextQuery,
    DeltaEvent,
    DoneEvent,
    FimRequest,
    GenerateRequest,
    PrefillAnswer,
    PrefillRequest,
)
from nearcode.shared.protocol.editor import ContextResult

COLD_READ_TARGET_S = 5.0  # longest cold prompt read an interactive request is budgeted for
# What a request whose context block is already in the engine's cache may read: the first
# completion at a new place in a file opened a moment ago answers in about a second.
WARM_READ_TARGET_S = 0.8
MIN_PROMPT_TOKENS = 192
BUDGET_STEP_TOKENS = 64
BUDGET_HYSTERESIS = 0.15  # the measured reading speed must move this much to move the budget

# Sampled alternatives after the first choice, on an engine that shares the cores: together at
# most as long as the first one took (at least ALTERNATIVES_MIN_S), each at most twice its length.
# They only generate (the prompt is cached): warm, that is a few hundred ms; on a machine so busy
# that it is not, an explicit request takes at most about twice as long, never more.
ALTERNATIVES_SHARE = 1.0
ALTERNATIVES_MIN_S = 2.0
ALTERNATIVE_MIN_TOKENS = 16

# A choice that ended so: nobody waits for the request any more.
_ABANDONED = (str(FinishReason.SUPERSEDED), str(FinishReason.CANCELLED))

# Final chunks that carry an error message rather than an answer.
_FAILED = (FinishReason.ERROR, FinishReason.SHED)
# Endings that may come before the whole prompt was read.
_UNREAD = (str(FinishReason.CANCELLED), str(FinishReason.SUPERSEDED), str(FinishReason.DEADLINE))

_PRIORITY = {
    "interactive": Priority.INTERACTIVE,
    "speculative": Priority.SPECULATIVE,
    "background": Priority.BACKGROUND,
}


# What a stream yields: text pieces, then one DoneEvent (errors raise FimError).
ServiceEvent = DeltaEvent | DoneEvent


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
        self.budget = budget
        self.stats = stats
        self.prompt_tokens_per_s: float | None = None  # measured cold-read speed of the engine
        self._affordable_tokens: float | None = None  # cold-read budget, steadied (see budget_for)
        engine = scheduler.engine
        self.prompts = DocumentPrompts(template, engine.count_tokens, context or ContextAssembler(),
                                       getattr(engine, "holds_slot", None))
        self._prefills: set[asyncio.Task[None]] = set()
        self._prefilling: dict[str, GenerationHandle] = {}  # (client, document) -> its read-ahead
        self._completing: Counter[str] = Counter()  # (client, document) -> completions running
        self._completions_started: Counter[str] = Counter()  # (client, document) -> completions so far
        self._speed_fixed = False
        self.prefills_done = 0  # prefills read to their end

    @property
    def anchor_count(self) -> int:
        """Prompt anchors kept (bounded: one per document, DOCUMENTS_KEPT)."""
        return self.prompts.anchor_count

    @property
    def anchored_prompts(self) -> int:
        """Prompts that started where the document's previous one did."""
        return self.prompts.anchored_prompts

    def warm_tokens(self) -> int:
        """What a request whose context block is cached may read (0 until the speed is known)."""
        if self.prompt_tokens_per_s is None:
            return 0
        return max(MIN_PROMPT_TOKENS // 2, int(self.prompt_tokens_per_s * WARM_READ_TARGET_S))

    def budget_for(self, client: str, priority: str = "interactive") -> PromptBudget:
        """The prompt budget for a request: at most what the engine reads within
        COLD_READ_TARGET_S, shared among the interactive requests running at once.

        A cold prompt is read at the engine's measured speed (0.5B on 2 cores ~150 tokens/s, 1.5B
        ~65); a budget fixed for the fastest model would make a slower one, or four editors at
        once, miss every deadline. Less context under load costs some quality; a late answer is
        worth nothing.
        """
        if self.prompt_tokens_per_s is None or priority == "background":
            return self.budget
        # Editors with interactive work, not requests: a keystroke's superseded request is still
        # stopping when the next one arrives, and must not halve the next one's prompt.
        sharing = len(self.scheduler.gate.interactive_clients() | {client})
        # Steadied and rounded: the measured speed wobbles by a few percent from request to request,
        # and a budget that follows it cuts every prompt a little differently, so the same code
        # gets different answers run after run and cached prompts lose their shape.
        measured = self.prompt_tokens_per_s * COLD_READ_TARGET_S
        level = self._affordable_tokens
        if level is None or abs(measured - level) > BUDGET_HYSTERESIS * level:
            self._affordable_tokens = level = measured
        alone = max(MIN_PROMPT_TOKENS, min(self.budget.total_tokens, round(level / BUDGET_STEP_TOKENS) * BUDGET_STEP_TOKENS))
        affordable = round(level / sharing / BUDGET_STEP_TOKENS) * BUDGET_STEP_TOKENS
        total = max(MIN_PROMPT_TOKENS, min(self.budget.total_tokens, affordable))
        # The context block's share follows the unshared budget: it is read once and then cached,
        # and a block that shrank whenever another editor typed would be read again each time.
        return dataclasses.replace(self.budget, total_tokens=total, stable_total_tokens=alone)

    def assume_speed(self, tokens_per_s: float) -> None:
        """Budget as if the engine read this fast, whatever it measures (benchmarks on a shared
        machine: prompts then have the shape they have on an idle one, only slower)."""
        self.prompt_tokens_per_s = tokens_per_s
        self._speed_fixed = True

    def _learn_speed(self, stats: GenerationStats | None) -> None:
        if self._speed_fixed:
            return
        read = (stats.prompt_tokens - stats.cached_tokens) if stats else 0
        if stats is None or read < 128 or stats.prompt_ms <= 0:
            return  # short reads are dominated by fixed costs
        sample = read / (stats.prompt_ms / 1000)
        old = self.prompt_tokens_per_s
        self.prompt_tokens_per_s = sample if old is None else 0.7 * old + 0.3 * sample

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
        self._completing[source.record_key] -= 1
        read_all = bool(live and live.generated_tokens) or bool(done and done.finish_reason not in _UNREAD)
        self.prompts.read(source, built.prompt.text, complete=read_all)
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
        self._stop_prefill(source.record_key)
        self._completing[source.record_key] += 1
        self._completions_started[source.record_key] += 1
        try:
            built = await self.prompts.build(source, self.budget_for(req.client, req.priority), self.warm_tokens())
        except BaseException:
            self._completing[source.record_key] -= 1
            raise
        prompt = built.prompt
        stop = self.template.stop + (("\n",) if req.mode == "single" else ())
        generation = GenerationRequest(
            prompt=prompt.text,
            max_tokens=req.max_tokens,
            stop=stop,
            deadline=deadline,
            max_generation_ms=req.max_generation_ms,
            priority=_PRIORITY[req.priority],
            affinity=req.affinity or req.document or None,
            temperature=req.temperature,
        )
        return _Prepared(source, built, generation)

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
            if isinstance(event, DoneEvent) and seen is not None:
                seen.done = event
            event.index = index
            yield event

    async def _batched_choices(
        self, req: FimRequest, generation: GenerationRequest, key: str | None, started: float, first: RequestProgress
    ) -> AsyncIterator[ServiceEvent]:
        """All choices at once (an engine that batches reads the shared prompt once), merged as
        they arrive, as many as the engine has free slots for. Choice 0 keeps the document's stream
        key, so the next request for the document supersedes it, and with it the alternatives."""
        queue: asyncio.Queue[ServiceEvent | FimError | None] = asyncio.Queue()

        async def pump(index: int) -> None:
            choice_key = key if index == 0 or key is None else f"{key}\x00alternative {index}"
            try:
                seen = first if index == 0 else None
                async for event in self._choice(req, _sampled(generation, index), choice_key, started, index, seen):
                    queue.put_nowait(event)
            except FimError as exc:
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
                if isinstance(event, FimError):
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
        async for chunk in handle.events():
            live = chunk.stats or live
            if live is not None:
                yield live
            if chunk.finish_reason is not None:
                final = chunk
                if chunk.finish_reason in _FAILED:
                    raise FimError(chunk.text)
                if rest := end.flush():
                    yield DeltaEvent(text=rest)
                break
            text, over = end.feed(chunk.text)
            if text:
                yield DeltaEvent(text=text)
            if over:  # the answer is complete (shared/completion_end.py): stop the engine now
                final = GenerationChunk("", FinishReason.LENGTH if end.ended_by == "line limit" else FinishReason.STOP)
                break
        reason = final.finish_reason if final and final.finish_reason else FinishReason.CANCELLED
        if reason == FinishReason.STOP and req.mode == "single":
            reason = FinishReason.NEWLINE  # the newline stop or end of text: the line is complete
        if final is not None and final.stats is None and live is not None:
            final.stats = live  # stopped early here: report what the engine had done so far
        self._learn_speed(final.stats if final is not None else live)
        yield final_event(final.stats if final else None, reason, started)

    def context_report(self, query: ContextQuery) -> ContextResult:
        """What the last completion of (client, document) was given (`nearcode.showContext`)."""
        return self.prompts.report(query.client, query.document)

    async def prefill(self, req: PrefillRequest) -> PrefillAnswer:
        """Read the document's context block (and, when the cursor is known, the prefix up to it)
        into its engine slot at background priority; a completion request on the document cancels
        it (it reads what it needs itself), other documents' keystrokes pause it."""
        if req.context_mode != "workspace":
            return PrefillAnswer(started=False, reason="context is 'file': there is no context block to read ahead")
        key = f"{req.client}\x00{req.document}"
        if self._completing[key] > 0:
            return PrefillAnswer(started=False, reason="a completion in this document is reading its prompt already")
        completions = self._completions_started[key]
        source = PromptRequest(
            client=req.client, document=req.document, affinity=req.affinity, path=req.path, language=req.language,
            prefix=req.prefix or "", suffix=req.suffix if req.prefix is not None else "",
            context_mode=req.context_mode, head=req.head,
        )
        # Budgeted cold: what is read here is what later requests find cached.
        built = await self.prompts.build(source, self.budget_for(req.client), warm_tokens=0)
        text = built.prompt.text[: built.prompt.prefix_end]
        if not text.strip() or built.prompt.context is None or not built.prompt.context.kept:
            return PrefillAnswer(started=False, reason="nothing to read ahead (the context block is empty)")
        if self.prompts.cache_view(source, 1).text.startswith(text):
            return PrefillAnswer(started=False, reason="already in the engine's cache")
        if self._completions_started[key] != completions:
            # A completion came while this was being built: it read what it needs, and reading
            # this older text after it would only push its prompt out of the slot.
            return PrefillAnswer(started=False, reason="a completion in this document came first")
        generation = GenerationRequest(
            prompt=text, max_tokens=1, priority=Priority.BACKGROUND, affinity=req.affinity or req.document,
        )
        # No stream key: a read-ahead never supersedes a completion (completions stop it, above).
        self._stop_prefill(key)
        handle = self.scheduler.submit(generation, None, req.client)
        self._prefilling[key] = handle

        async def read() -> None:
            complete = False
            async for chunk in handle.events():
                if chunk.finish_reason is not None:
                    complete = chunk.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
            self.prompts.read(source, text, complete)
            self.prefills_done += complete
            if self._prefilling.get(key) is handle:
                del self._prefilling[key]

        task = asyncio.create_task(read())
        self._prefills.add(task)
        task.add_done_callback(self._prefills.discard)
        return PrefillAnswer(started=True, reason=f"reading {len(text)} characters ahead")

    def _stop_prefill(self, key: str) -> None:
        handle = self._prefilling.pop(key, None)
        if handle is not None:
            handle.cancel(FinishReason.SUPERSEDED)

    async def generate(self, req: GenerateRequest) -> AsyncIterator[ServiceEvent]:
        """An instruction task: chat messages through the family's chat template, streamed."""
        chat = self.template.chat
        if chat is None:
            raise FimError(f"model family {self.template.family} has no chat template")
        started = time.monotonic()
        try:
            prompt = render_chat([ChatMessage(m.role, m.content) for m in req.messages], chat)
        except ValueError as exc:
            raise FimError(str(exc)) from exc
        generation = GenerationRequest(
            prompt=prompt,
            max_tokens=req.max_tokens,
            stop=chat.stop + tuple(req.stop),
            temperature=req.temperature,
            deadline=started + req.deadline_ms / 1000 if req.deadline_ms else None,
            priority=_PRIORITY[req.priority],
            # Not the document's completion slot: a long instruction prompt there would evict the
            # KV cache that keystrokes on this document reuse.
            affinity=f"generate\x00{req.document}" if req.document else None,
        )
        key = f"{req.client}\x00generate\x00{req.document}" if req.document else None
        with self.stats.request(started) as progress:
            handle: GenerationHandle = self.scheduler.submit(generation, key, req.client)
            final: GenerationChunk | None = None
            async for chunk in handle.events():
                progress.live = chunk.stats or progress.live
                if chunk.finish_reason is not None:
                    if chunk.finish_reason in _FAILED:
                        raise FimError(chunk.text)
                    final = chunk
                    break
                yield DeltaEvent(text=chunk.text)
            reason = final.finish_reason if final and final.finish_reason else FinishReason.CANCELLED
            progress.done = final_event(final.stats if final else None, reason, started)
            yield progress.done


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


class FimError(RuntimeError):
    pass

