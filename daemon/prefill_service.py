"""Read-ahead (`POST /api/prefill`): a document's context block, and the prefix up to a resting
cursor, read into its engine slot at background priority before the next completion needs them.

A completion of the document stops its read-ahead (it reads what it needs itself; FimService tells
this service when one starts and ends); other documents' keystrokes pause it (the scheduler).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from nearcode.daemon.context.document_prompts import DocumentPrompts, PromptRequest
from nearcode.daemon.engines.base import FinishReason, GenerationRequest, GenerationStats, Priority
from nearcode.daemon.prompting.read_budget import ReadBudget
from nearcode.daemon.scheduler import GenerationHandle, Scheduler
from nearcode.shared.protocol.daemon_api import PrefillAnswer, PrefillRequest

log = logging.getLogger("nearcode.daemon")

# ~160 tokens: over the 128 a sample needs, two prompt batches (2-4 s of the 1.5B on 2 slow cores).
SPEED_PROBE_LINES = 8
SPEED_PROBE_WAIT_S = 60.0  # for a moment without requests; a busy daemon learns from them instead
# A probe stopped for other work is read again at the next quiet moment, each time with other text:
# the same text would be all cached in its slot and teach nothing.
SPEED_PROBE_NAMES = ("scale", "shift", "blend")
SPEED_PROBE_QUIET_S = 1.0  # nothing ran for this long: the user is not typing right now


class PrefillService:
    def __init__(self, scheduler: Scheduler, prompts: DocumentPrompts, reading: ReadBudget) -> None:
        self.scheduler = scheduler
        self.prompts = prompts
        self.reading = reading
        self.tasks: set[asyncio.Task[None]] = set()  # read-aheads being read
        self.prefills_done = 0  # read-aheads read to their end
        self._prefilling: dict[str, GenerationHandle] = {}  # (client, document) -> its read-ahead
        self._completing: Counter[str] = Counter()  # (client, document) -> completions running
        self._completions_started: Counter[str] = Counter()  # (client, document) -> completions so far

    def completion_started(self, key: str) -> None:
        """A completion of the document (`PromptRequest.record_key`) reads its prompt: a
        read-ahead of the same document stops."""
        self._stop(key)
        self._completing[key] += 1
        self._completions_started[key] += 1

    def completion_ended(self, key: str) -> None:
        self._completing[key] -= 1
        if self._completing[key] <= 0:
            del self._completing[key]

    async def prefill(self, req: PrefillRequest) -> PrefillAnswer:
        """Start reading ahead, or say why not."""
        answer = await self._prefill(req)
        log.debug("read-ahead %s: %s", "started" if answer.started else "not started", answer.reason)
        return answer

    async def _prefill(self, req: PrefillRequest) -> PrefillAnswer:
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
        # Budgeted cold, with room for a larger block: what is read here later requests find cached.
        built = await self.prompts.build(source, self.reading.read_ahead_budget(req.client), warm_tokens=0)
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
        self._stop(key)
        handle = self.scheduler.submit(generation, None, req.client)
        self._prefilling[key] = handle
        task = asyncio.create_task(self._read(key, handle, source, text))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return PrefillAnswer(started=True, reason=f"reading {len(text)} characters ahead")

    async def _read(self, key: str, handle: GenerationHandle, source: PromptRequest, text: str) -> None:
        complete = False
        async for chunk in handle.events():
            if chunk.finish_reason is not None:
                complete = chunk.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
                if chunk.stats is not None:
                    log.debug("read-ahead ended (%s): %s", chunk.finish_reason.value, chunk.stats.describe_reading())
                # Its reading speed counts like a completion's: a file opened in a fresh daemon is
                # usually read ahead before the first completion, which is then budgeted by the
                # measured speed rather than the configured maximum (a slow model missed it).
                self.reading.learn(chunk.stats)
        self.prompts.read(source, text, complete)
        self.prefills_done += complete
        if self._prefilling.get(key) is handle:
            del self._prefilling[key]

    async def measure_speed(self) -> None:
        """Once at start-up (after the canary, whose first read also pages the weights in): read a
        prompt of SPEED_PROBE_LINES in the background to learn the reading speed, unless a
        request taught it already. Without it a fresh daemon budgets its first prompts at the
        configured maximum, and while the user types each is superseded before the engine reports
        what it read (llama.cpp reports per 128-token batch): measured, 8 requests and 25 s of
        typing without a suggestion before the speed was known (1.5B on 2 slow cores)."""
        gate = self.scheduler.gate
        give_up = time.monotonic() + SPEED_PROBE_WAIT_S
        for name in SPEED_PROBE_NAMES:
            # Only after a quiet moment: a request that comes first teaches the speed itself.
            if not await gate.idle_for(SPEED_PROBE_QUIET_S, give_up_s=give_up - time.monotonic()):
                return
            if self.reading.tokens_per_s is not None:
                return
            stats = await self._read_speed_probe(name)
            if stats is not None:
                self.reading.learn(stats)
                return

    async def _read_speed_probe(self, name: str) -> GenerationStats | None:
        """What the probe read, or None if other work came while it read: it stops then (an
        editor's first request must not wait behind it), and a read that shared the cores would
        teach the speed of two (measured: 30.8 tokens/s against 45 alone, a first estimate that
        held every cold prompt at the 192-token floor for a whole benchmark run)."""
        text = "".join(f"def {name}_{i}(value, factor={i}):\n    return value * factor + {i}\n\n" for i in range(SPEED_PROBE_LINES))
        # Speculative priority: never paused and resumed (a read cut in two measures nothing).
        probe = GenerationRequest(prompt=text, max_tokens=1, priority=Priority.SPECULATIVE, affinity="nearcode:reading-speed")
        gate = self.scheduler.gate
        alone_admissions = gate.admissions + 1  # the probe's own
        stats: GenerationStats | None = None
        read_to_its_end = False
        with gate.arrivals() as arrival:
            handle = self.scheduler.submit(probe)

            async def stop_for_others() -> None:
                while gate.admissions <= alone_admissions and not gate.waiter_count:
                    await arrival.wait()
                    arrival.clear()
                handle.cancel(FinishReason.SUPERSEDED)

            watch = asyncio.ensure_future(stop_for_others())
            try:
                async for chunk in handle.events():
                    if chunk.finish_reason is not None:
                        stats = chunk.stats
                        read_to_its_end = chunk.finish_reason in (FinishReason.LENGTH, FinishReason.STOP)
                        if stats is not None:
                            log.debug("reading-speed probe ended (%s): %s", chunk.finish_reason.value, stats.describe_reading())
            finally:
                watch.cancel()
        if not read_to_its_end or gate.admissions > alone_admissions:
            log.debug("reading-speed probe stopped for other work: not counted")
            return None
        return stats

    def _stop(self, key: str) -> None:
        handle = self._prefilling.pop(key, None)
        if handle is not None:
            handle.cancel(FinishReason.SUPERSEDED)
