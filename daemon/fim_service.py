"""From a FIM request to a stream of events: prompt, schedule, generate, stop where asked."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

from nearcode.daemon.engines.base import (
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
    Priority,
)
from nearcode.daemon.prompting.chat import ChatMessage, render_chat
from nearcode.daemon.prompting.fim import (
    FimInput,
    PrefixAnchor,
    PromptBudget,
    Snippet,
    build_fim_prompt,
)
from nearcode.daemon.prompting.templates import FimTemplate
from nearcode.daemon.scheduler import GenerationHandle, Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.shared.completion_end import StreamingEnd, block_indent_at
from nearcode.shared.protocol.daemon_api import (
    ALTERNATIVE_TEMPERATURES,
    DeltaEvent,
    DoneEvent,
    FimRequest,
    GenerateRequest,
)

COLD_READ_TARGET_S = 5.0  # longest cold prompt read an interactive request is budgeted for
MIN_PROMPT_TOKENS = 192
ANCHORS_KEPT = 512  # documents whose prompt start is remembered
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

_PRIORITY = {
    "interactive": Priority.INTERACTIVE,
    "speculative": Priority.SPECULATIVE,
    "background": Priority.BACKGROUND,
}


# What a stream yields: text pieces, then one DoneEvent (errors raise FimError).
ServiceEvent = DeltaEvent | DoneEvent


class FimService:
    def __init__(
        self, scheduler: Scheduler, template: FimTemplate, budget: PromptBudget, stats: DaemonStats
    ) -> None:
        self.scheduler = scheduler
        self.template = template
        self.budget = budget
        self.stats = stats
        self.prompt_tokens_per_s: float | None = None  # measured cold-read speed of the engine
        self._affordable_tokens: float | None = None  # cold-read budget, steadied (see budget_for)
        self._anchors: OrderedDict[str, PrefixAnchor] = OrderedDict()
        self.anchored_prompts = 0  # prompts that started where the document's previous one did

    def budget_for(self, req: FimRequest) -> PromptBudget:
        """The prompt budget for this request: at most what the engine reads within
        COLD_READ_TARGET_S, shared among the interactive requests running at once.

        A cold prompt is read at the engine's measured speed (0.5B on 2 cores ~150 tokens/s, 1.5B
        ~65); a budget fixed for the fastest model would make a slower one, or four editors at
        once, miss every deadline. Less context under load costs some quality; a late answer is
        worth nothing.
        """
        if self.prompt_tokens_per_s is None or req.priority == "background":
            return self.budget
        # Editors with interactive work, not requests: a keystroke's superseded request is still
        # stopping when the next one arrives, and must not halve the next one's prompt.
        sharing = len(self.scheduler.gate.interactive_clients() | {req.client})
        # Steadied and rounded: the measured speed wobbles by a few percent from request to request,
        # and a budget that follows it cuts every prompt a little differently, so the same code
        # gets different answers run after run and cached prompts lose their shape.
        measured = self.prompt_tokens_per_s * COLD_READ_TARGET_S
        level = self._affordable_tokens
        if level is None or abs(measured - level) > BUDGET_HYSTERESIS * level:
            self._affordable_tokens = level = measured
        affordable = round(level / sharing / BUDGET_STEP_TOKENS) * BUDGET_STEP_TOKENS
        total = max(MIN_PROMPT_TOKENS, min(self.budget.total_tokens, affordable))
        return dataclasses.replace(self.budget, total_tokens=total)

    def _remember_anchor(self, key: str, anchor: PrefixAnchor | None) -> None:
        if anchor is None:
            self._anchors.pop(key, None)
            return
        self._anchors[key] = anchor
        self._anchors.move_to_end(key)
        while len(self._anchors) > ANCHORS_KEPT:
            self._anchors.popitem(last=False)

    def _learn_speed(self, stats: GenerationStats | None) -> None:
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
        generation = await self._generation_for(req, started)
        key = f"{req.client}\x00{req.document}" if req.document else None
        if req.n == 1:
            async for event in self._choice(req, generation, key, started, 0):
                yield event
        elif self.scheduler.engine.info.shares_local_compute:
            choice = generation
            for index in range(req.n):
                if index:
                    choice = dataclasses.replace(choice, temperature=ALTERNATIVE_TEMPERATURES[index - 1])
                done: DoneEvent | None = None
                async for event in self._choice(req, choice, key, started, index):
                    done = event if isinstance(event, DoneEvent) else done
                    yield event
                if done is None or done.finish_reason in _ABANDONED:
                    return
                if index == 0:
                    choice = _alternatives_after(generation, done)
        else:
            async for event in self._batched_choices(req, generation, key, started):
                yield event

    async def _generation_for(self, req: FimRequest, started: float) -> GenerationRequest:
        """The engine request for a FIM request: its prompt within budget, anchored where the
        document's previous prompt started, and the stops of its mode."""
        deadline = started + req.deadline_ms / 1000 if req.deadline_ms else None
        anchor_key = f"{req.client}\x00{req.affinity or req.document}" if (req.affinity or req.document) else None
        prompt = await build_fim_prompt(
            FimInput(
                prefix=req.prefix,
                suffix=req.suffix,
                path=req.path,
                language=req.language,
                context=tuple(Snippet(s.path, s.text) for s in req.context),
            ),
            self.template,
            self.budget_for(req),
            self.scheduler.engine.count_tokens,
            single_line=req.mode == "single",
            anchor=self._anchors.get(anchor_key) if anchor_key else None,
        )
        if anchor_key is not None:
            self._remember_anchor(anchor_key, prompt.anchor)
        self.anchored_prompts += prompt.anchored
        stop = self.template.stop + (("\n",) if req.mode == "single" else ())
        return GenerationRequest(
            prompt=prompt.text,
            max_tokens=req.max_tokens,
            stop=stop,
            deadline=deadline,
            max_generation_ms=req.max_generation_ms,
            priority=_PRIORITY[req.priority],
            affinity=req.affinity or req.document or None,
            temperature=req.temperature,
        )

    async def _choice(
        self, req: FimRequest, generation: GenerationRequest, key: str | None, started: float, index: int
    ) -> AsyncIterator[ServiceEvent]:
        """One choice through the scheduler, its events tagged with `index`."""
        handle = self.scheduler.submit(generation, key, req.client)
        live: GenerationStats | None = None
        finished = False
        try:
            async for event in self._fim_events(req, handle, started, record=index == 0):
                if isinstance(event, GenerationStats):
                    live = event
                    continue
                if isinstance(event, DoneEvent):
                    finished = True
                event.index = index
                yield event
        finally:
            if not finished and index == 0:  # the client went away: the work done so far still counts
                self.stats.record(
                    str(FinishReason.CANCELLED),
                    (time.monotonic() - started) * 1000,
                    live.prompt_tokens if live else 0,
                    live.cached_tokens if live else 0,
                    live.generated_tokens if live else 0,
                )

    async def _batched_choices(
        self, req: FimRequest, generation: GenerationRequest, key: str | None, started: float
    ) -> AsyncIterator[ServiceEvent]:
        """All choices at once (an engine that batches reads the shared prompt once), merged as
        they arrive, as many as the engine has free slots for. Choice 0 keeps the document's stream
        key, so the next request for the document supersedes it, and with it the alternatives."""
        queue: asyncio.Queue[ServiceEvent | FimError | None] = asyncio.Queue()

        async def pump(index: int) -> None:
            choice_key = key if index == 0 or key is None else f"{key}\x00alternative {index}"
            try:
                async for event in self._choice(req, _sampled(generation, index), choice_key, started, index):
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
        self, req: FimRequest, handle: GenerationHandle, started: float, record: bool = True
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
        yield self._done(final, reason, started, record)

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
        handle: GenerationHandle = self.scheduler.submit(generation, key, req.client)
        final: GenerationChunk | None = None
        async for chunk in handle.events():
            if chunk.finish_reason is not None:
                if chunk.finish_reason in _FAILED:
                    raise FimError(chunk.text)
                final = chunk
                break
            yield DeltaEvent(text=chunk.text)
        reason = final.finish_reason if final and final.finish_reason else FinishReason.CANCELLED
        yield self._done(final, reason, started)

    def _done(
        self, final: GenerationChunk | None, reason: FinishReason, started: float, record: bool = True
    ) -> DoneEvent:
        stats = final.stats if final and final.stats else None
        elapsed = (time.monotonic() - started) * 1000
        event = DoneEvent(
            finish_reason=str(reason),
            prompt_tokens=stats.prompt_tokens if stats else 0,
            cached_tokens=stats.cached_tokens if stats else 0,
            generated_tokens=stats.generated_tokens if stats else 0,
            elapsed_ms=round(elapsed, 1),
        )
        if record:  # an alternative is part of its request, not a request of its own
            self.stats.record(
                event.finish_reason, elapsed, event.prompt_tokens, event.cached_tokens, event.generated_tokens
            )
        return event


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
