"""The engine interface every backend implements (embedded llama.cpp, vLLM, OpenAI-compatible).

`generate` is an async generator: iterate it to receive text; stop iterating (or cancel the task
consuming it) and the engine stops generating, within a token or two where the backend allows.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


class Priority(enum.IntEnum):
    INTERACTIVE = 0  # inline completions: someone is waiting
    SPECULATIVE = 1  # prefetch of a likely next completion
    BACKGROUND = 2  # docstrings, tests: may wait or be shed


class FinishReason(enum.StrEnum):
    STOP = "stop"  # a stop string or end of text
    LENGTH = "length"  # token limit
    NEWLINE = "newline"  # single-line mode reached the end of the line
    DEADLINE = "deadline"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # a newer request for the same document took over
    SHED = "shed"  # background work dropped: interactive load kept it waiting too long
    ERROR = "error"


class EngineError(RuntimeError):
    """The engine cannot serve (not installed, failed to load, crashed)."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    deadline: float | None = None  # time.monotonic() after which generation stops
    priority: Priority = Priority.INTERACTIVE
    # Requests with the same affinity key should land where the previous one left its KV cache.
    affinity: str | None = None
    # Generation time allowed once the first token is out (prompt reading excluded): a completion
    # that keeps going is cut rather than kept waiting for.
    max_generation_ms: float | None = None
    # The prompt was cut before this text (engines/token_healing.py): the answer must start with it,
    # and comes back without it. Only engines with `healing_piece` are given one.
    forced_start: str = ""


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the engine's prompt cache
    generated_tokens: int = 0
    tokens_after_cancel: int = 0  # generated after cancellation was asked for: wasted work
    prompt_ms: float = 0.0  # time spent reading the uncached part of the prompt (so far, while reading)
    # While the prompt is still being read (llama.cpp's progress events): the uncached tokens read
    # so far. None once reading ended, or where the engine does not report progress: then all of
    # `prompt_tokens - cached_tokens` were read in `prompt_ms`. A request stopped at its deadline
    # mid-read has read only these, not the whole prompt.
    read_so_far: int | None = None
    # Speculative decoding (daemon/engines/speculation.py): tokens drafted for the model to check,
    # and how many of them it kept. llama.cpp's counts, so far in this generation.
    draft_tokens: int = 0
    draft_accepted: int = 0

    def describe_reading(self) -> str:
        """For debug logs (counts only): how much of the prompt was read, and how fast."""
        read = "all" if self.read_so_far is None else str(self.read_so_far)
        return (f"prompt {self.prompt_tokens} tokens ({self.cached_tokens} cached, {read} read when stopped) "
                f"in {self.prompt_ms:.0f} ms, {self.generated_tokens} generated")


@dataclass
class CancelCounters:
    """Wasted work: how many tokens the engine generated after being asked to stop."""

    cancelled: int = 0
    tokens_after_cancel_total: int = 0
    tokens_after_cancel_max: int = 0

    def record(self, tokens_after_cancel: int) -> None:
        self.cancelled += 1
        self.tokens_after_cancel_total += tokens_after_cancel
        self.tokens_after_cancel_max = max(self.tokens_after_cancel_max, tokens_after_cancel)


@dataclass
class GenerationChunk:
    text: str
    finish_reason: FinishReason | None = None
    # Set on the final chunk; on others, the counters so far (a chunk without text: a prompt batch read).
    stats: GenerationStats | None = None


@dataclass(frozen=True)
class EngineInfo:
    engine: str  # "llamacpp", "vllm", "openai"
    model: str  # display name
    model_path: str = ""
    context_tokens: int = 0
    parallel_slots: int = 1
    # True when every generation shares this machine's cores (the embedded engine): a background
    # generation then slows a keystroke's, so the scheduler pauses it while interactive work runs.
    shares_local_compute: bool = False
    # True when start() takes long (vLLM: ~30 s on a CPU, minutes on a GPU): the daemon then serves
    # its API while the engine loads, and reports the loading phase (metadata["startup_phase"]).
    starts_slowly: bool = False
    # Speculative decoding in use: "none", "ngram", "draft (<drafter>)" (daemon/engines/speculation.py).
    speculation: str = "none"
    metadata: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    """What the daemon needs from a backend."""

    @property
    def info(self) -> EngineInfo: ...

    @property
    def cancel_counters(self) -> CancelCounters: ...

    async def start(self) -> None:
        """Load the model / connect; raises EngineError with a message that says how to fix it."""

    async def close(self) -> None: ...

    async def count_tokens(self, text: str) -> int: ...

    async def runtime_status(self) -> dict[str, object]:
        """Engine-side figures for `nearcode status` (vLLM: its prefix-cache hit rate); {} if none."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream the completion of `request`; closing the iterator cancels it."""
        ...
