"""What every engine does the same way with a generation's results: the finish-reason mapping, the
usage counters of OpenAI-shaped responses (llama.cpp's server and vLLM both speak it), and the
clock that ends a generation at its deadline or generation-time cap."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nearcode.daemon.engines.base import FinishReason, GenerationRequest, GenerationStats


def finish_reason_of(reason: str | None) -> FinishReason | None:
    """An OpenAI-style `finish_reason` ("stop", "length", "eos", ...) as ours; None while running."""
    if not reason:
        return None
    return FinishReason.LENGTH if reason == "length" else FinishReason.STOP


def read_usage(event: dict[str, Any], stats: GenerationStats) -> None:
    """Update `stats` from an event's `usage` (and llama.cpp's `timings`), keeping what it lacks."""
    usage = event.get("usage") or {}
    if usage:
        stats.prompt_tokens = int(usage.get("prompt_tokens") or stats.prompt_tokens)
        stats.generated_tokens = int(usage.get("completion_tokens") or stats.generated_tokens)
        details = usage.get("prompt_tokens_details") or {}
        stats.cached_tokens = int(details.get("cached_tokens") or stats.cached_tokens)
    timings = event.get("timings") or {}  # llama.cpp's server: cache_n = prompt tokens reused
    if "cache_n" in timings:
        stats.cached_tokens = int(timings["cache_n"])
    if "prompt_ms" in timings:  # the server's own prompt-reading time (better than time to first token)
        stats.prompt_ms = float(timings["prompt_ms"])
    read_draft_counts(event, stats)


def read_draft_counts(event: dict[str, Any], stats: GenerationStats) -> None:
    """llama.cpp's speculation counts so far (`timings.draft_n`, `draft_n_accepted`): on the final
    event, and on every token's when the request asked for `timings_per_token`. Absent until the
    generation has drafted something."""
    timings = event.get("timings") or {}
    if "draft_n" in timings:
        stats.draft_tokens = int(timings["draft_n"])
        stats.draft_accepted = int(timings.get("draft_n_accepted") or 0)


@dataclass
class GenerationClock:
    """When a generation must stop: its deadline (the whole request, prompt reading included), and
    its generation-time cap counted from the first token. `sharing` stretches the cap by the number
    of streams decoding at once on the same cores (each runs at a fraction of one stream's speed)."""

    request: GenerationRequest
    first_token_at: float | None = field(default=None)

    def token(self, now: float | None = None) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic() if now is None else now

    def time_left(self, sharing: int = 1, now: float | None = None) -> float | None:
        """Seconds until a limit ends the generation (negative: past it), or None without limits."""
        now = time.monotonic() if now is None else now
        limits = []
        if self.request.deadline is not None:
            limits.append(self.request.deadline - now)
        if self.request.max_generation_ms is not None and self.first_token_at is not None:
            cap_s = self.request.max_generation_ms / 1000 * max(1, sharing)
            limits.append(self.first_token_at + cap_s - now)
        return min(limits) if limits else None

    def expired(self, sharing: int = 1, now: float | None = None) -> bool:
        left = self.time_left(sharing, now)
        return left is not None and left <= 0
