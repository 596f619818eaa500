"""A scripted engine for fast tests of the daemon's logic: it follows the Engine interface exactly
(daemon/engines/base.py) but answers from a script instead of a model.

It is a fake by design and never the only proof that a feature works: the real-model tests drive
the same code with llama.cpp. What it models faithfully is what the logic above depends on:
tokens arrive one at a time with a delay, stop strings end a generation, closing the generator
cancels it (counted like the real engines count it), a prompt shares a cached prefix with the
previous prompt of the same affinity (reported as cached tokens), a slow prompt read reports its
progress halfway (as llama.cpp does per prompt batch), speculation counts grow with each
token as llama.cpp's per-token timings report them, and every request is recorded.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from nearcode.daemon.engines.base import (
    CancelCounters,
    EngineError,
    EngineInfo,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
)

# A deterministic stand-in tokenizer: words, single spaces, other characters each one token.
_TOKEN = re.compile(r"\w+| |\S|\s")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


Script = Callable[[GenerationRequest], str]


@dataclass
class ScriptedEngine:
    """Answers each request with `script(request)`, one token per `token_delay_s`."""

    script: Script = lambda request: "pass\n"
    token_delay_s: float = 0.0
    prompt_delay_s: float = 0.0  # time to "read" the uncached part of a prompt
    parallel_slots: int = 4
    shares_local_compute: bool = True
    fail_with: Exception | None = None  # raised on the next generate, then cleared
    fail_mid_stream_with: Exception | None = None  # raised after the first token of the next generate
    count_fails_with: Exception | None = None  # raised by every count_tokens while set
    speculation: str = "none"  # EngineInfo.speculation
    drafts_per_token: tuple[int, int] = (0, 0)  # (drafted, accepted) added to the stats per token
    requests: list[GenerationRequest] = field(default_factory=list)
    running: int = 0  # generations in progress right now
    _cancel_counters: CancelCounters = field(default_factory=CancelCounters)
    _last_prompt: dict[str, list[str]] = field(default_factory=dict)

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            engine="scripted", model="scripted", parallel_slots=self.parallel_slots,
            context_tokens=4096, shares_local_compute=self.shares_local_compute, speculation=self.speculation,
        )

    @property
    def cancel_counters(self) -> CancelCounters:
        return self._cancel_counters

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def runtime_status(self) -> dict[str, object]:
        return {}

    async def count_tokens(self, text: str) -> int:
        if self.count_fails_with is not None:
            raise self.count_fails_with
        return len(tokens(text))

    def _cached(self, request: GenerationRequest, prompt: list[str]) -> int:
        """Tokens shared with the previous prompt of the same affinity, as a prompt cache reuses."""
        previous = self._last_prompt.get(request.affinity or "", [])
        shared = 0
        for a, b in zip(previous, prompt, strict=False):
            if a != b:
                break
            shared += 1
        self._last_prompt[request.affinity or ""] = prompt
        return shared

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.requests.append(request)
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        prompt = tokens(request.prompt)
        stats = GenerationStats(prompt_tokens=len(prompt), cached_tokens=self._cached(request, prompt))
        started = time.monotonic()
        self.running += 1
        finished = False
        try:
            if self.prompt_delay_s:
                # Halfway, a progress report, as llama.cpp sends one per prompt batch.
                await asyncio.sleep(self.prompt_delay_s / 2)
                read = (stats.prompt_tokens - stats.cached_tokens) // 2
                yield GenerationChunk("", stats=replace(
                    stats, prompt_ms=(time.monotonic() - started) * 1000, read_so_far=read))
                await asyncio.sleep(self.prompt_delay_s / 2)
            stats.prompt_ms = (time.monotonic() - started) * 1000
            text = ""
            for token in tokens(self.script(request)):
                if request.deadline is not None and time.monotonic() > request.deadline:
                    finished = True
                    yield GenerationChunk("", FinishReason.DEADLINE, stats)
                    return
                text += token
                stop = next((s for s in request.stop if s in text), None)
                if stop is not None:
                    finished = True
                    yield GenerationChunk("", FinishReason.STOP, stats)
                    return
                if stats.generated_tokens >= request.max_tokens:
                    finished = True
                    yield GenerationChunk("", FinishReason.LENGTH, stats)
                    return
                if self.token_delay_s:
                    await asyncio.sleep(self.token_delay_s)
                stats.generated_tokens += 1
                stats.draft_tokens += self.drafts_per_token[0]
                stats.draft_accepted += self.drafts_per_token[1]
                yield GenerationChunk(token, stats=stats)
                if self.fail_mid_stream_with is not None:
                    error, self.fail_mid_stream_with = self.fail_mid_stream_with, None
                    finished = True
                    raise error
            finished = True
            yield GenerationChunk("", FinishReason.STOP, stats)
        finally:
            self.running -= 1
            if not finished:
                self._cancel_counters.record(0)  # stopped at once: no token after the cancel


def engine_error(message: str = "scripted failure") -> EngineError:
    return EngineError(message)
