"""Instruction generation: chat messages through the model family's chat template (`/api/generate`,
`/v1/chat/completions`), and prompts sent as they are (`/v1/completions` without a suffix).

Both go through the scheduler like completions do, so an editor's keystrokes still come first, and
are counted once in the daemon's stats (daemon/stats.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator

from nearcode.daemon.engines.base import FinishReason, GenerationRequest, Priority
from nearcode.daemon.prompting.chat import ChatMessage, render_chat
from nearcode.daemon.prompting.templates import FimTemplate
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats, final_event
from nearcode.daemon.streams import FAILED_ENDINGS, PRIORITY_BY_NAME, ServiceError, ServiceEvent
from nearcode.shared.protocol.daemon_api import DeltaEvent, GenerateRequest


class GenerateService:
    def __init__(self, scheduler: Scheduler, template: FimTemplate, stats: DaemonStats) -> None:
        self.scheduler = scheduler
        self.template = template
        self.stats = stats

    async def generate(self, req: GenerateRequest) -> AsyncIterator[ServiceEvent]:
        """An instruction task (docstrings, tests, chat), streamed."""
        chat = self.template.chat
        if chat is None:
            raise ServiceError(f"model family {self.template.family} has no chat template")
        started = time.monotonic()
        try:
            prompt = render_chat([ChatMessage(m.role, m.content) for m in req.messages], chat)
        except ValueError as exc:
            raise ServiceError(str(exc)) from exc
        generation = GenerationRequest(
            prompt=prompt,
            max_tokens=req.max_tokens,
            stop=chat.stop + tuple(req.stop),
            temperature=req.temperature,
            deadline=started + req.deadline_ms / 1000 if req.deadline_ms else None,
            priority=PRIORITY_BY_NAME[req.priority],
            # Not the document's completion slot: a long instruction prompt there would evict the
            # KV cache that keystrokes on this document reuse.
            affinity=f"generate\x00{req.document}" if req.document else None,
        )
        key = f"{req.client}\x00generate\x00{req.document}" if req.document else None
        async with contextlib.aclosing(self._run(generation, key, req.client, started)) as events:
            async for event in events:
                yield event

    async def raw(
        self, prompt: str, max_tokens: int, stop: tuple[str, ...] = (), temperature: float = 0.0
    ) -> AsyncIterator[ServiceEvent]:
        """A prompt sent as is (the caller wrote any template), at interactive priority."""
        generation = GenerationRequest(
            prompt=prompt, max_tokens=max_tokens, stop=stop, temperature=temperature, priority=Priority.INTERACTIVE
        )
        async with contextlib.aclosing(self._run(generation, None, "", time.monotonic())) as events:
            async for event in events:
                yield event

    async def _run(
        self, generation: GenerationRequest, key: str | None, client: str, started: float
    ) -> AsyncGenerator[ServiceEvent, None]:
        with self.stats.request(started) as progress:
            handle = self.scheduler.submit(generation, key, client)
            reason = FinishReason.CANCELLED
            # aclosing: a client that goes away closes this generator, which must cancel the handle now.
            async with contextlib.aclosing(handle.events()) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    progress.live = chunk.stats or progress.live
                    if chunk.finish_reason is None:
                        if chunk.text:  # not a progress report
                            yield DeltaEvent(text=chunk.text)
                        continue
                    if chunk.finish_reason in FAILED_ENDINGS:
                        raise ServiceError(chunk.text)
                    reason = chunk.finish_reason
                    break
            progress.done = final_event(progress.live, reason, started)
            yield progress.done
