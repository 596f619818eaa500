"""Counters the daemon reports in `nearcode status`."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class DaemonStats:
    started_at: float = field(default_factory=time.time)
    requests: int = 0
    finish_reasons: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    # Speculative decoding: tokens drafted for the model to check, and those it kept (the first
    # choice of each request; alternatives are sampled and not recorded, like their latency).
    draft_tokens: int = 0
    draft_accepted: int = 0

    def record(
        self, finish_reason: str, elapsed_ms: float, prompt: int, cached: int, generated: int,
        drafted: int = 0, accepted: int = 0,
    ) -> None:
        self.requests += 1
        self.finish_reasons[finish_reason] += 1
        if finish_reason not in ("cancelled", "superseded", "error"):
            self.latencies_ms.append(elapsed_ms)
        self.prompt_tokens += prompt
        self.cached_tokens += cached
        self.generated_tokens += generated
        self.draft_tokens += drafted
        self.draft_accepted += accepted

    def speculation(self, kind: str) -> dict[str, object]:
        """`/api/status` `speculation`: the kind running and its counts so far."""
        return {
            "type": kind,
            "drafted": self.draft_tokens,
            "accepted": self.draft_accepted,
            "acceptance_rate": round(self.draft_accepted / self.draft_tokens, 3) if self.draft_tokens else None,
        }

    def snapshot(self) -> dict[str, object]:
        samples = list(self.latencies_ms)
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "requests": self.requests,
            "finish_reasons": dict(self.finish_reasons),
            "latency_p50_ms": percentile(samples, 50),
            "latency_p95_ms": percentile(samples, 95),
            "prompt_tokens": self.prompt_tokens,
            # Prompt tokens the engine actually had to read (not reused from its cache), per request.
            "evaluated_prompt_tokens_per_request": round((self.prompt_tokens - self.cached_tokens) / self.requests, 1)
            if self.requests
            else None,
            "cached_tokens": self.cached_tokens,
            "generated_tokens": self.generated_tokens,
        }
