"""The daemon's request counters (`nearcode status`), recorded in one place.

Every request that streams an answer (`/api/fim`, `/api/generate`, the `/v1` endpoints) runs inside
`DaemonStats.request`, which records it once when it ends: from its final event (`final_event`, the
one way a stream's DoneEvent is made), or, when it ended without one, as cancelled (the client went
away) or as an error, with what the engine had done by then. Alternatives and read-aheads are part
of a request or no request: they are not counted. What each editor's user did with suggestions is a
different concern, kept by the language server (lsp/insight/).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from nearcode.daemon.engines.base import FinishReason, GenerationStats
from nearcode.shared.percentile import percentile
from nearcode.shared.protocol.daemon_api import DoneEvent

# Endings that say nothing about how long an answer takes: nobody waited for the rest.
_NOT_TIMED = (str(FinishReason.CANCELLED), str(FinishReason.SUPERSEDED), str(FinishReason.ERROR))


def final_event(stats: GenerationStats | None, reason: FinishReason, started: float) -> DoneEvent:
    """A stream's final event: why it ended, the engine's counters, the time since `started`."""
    return DoneEvent(
        finish_reason=str(reason),
        prompt_tokens=stats.prompt_tokens if stats else 0,
        cached_tokens=stats.cached_tokens if stats else 0,
        generated_tokens=stats.generated_tokens if stats else 0,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        draft_tokens=stats.draft_tokens if stats else 0,
        draft_accepted=stats.draft_accepted if stats else 0,
    )


@dataclass
class RequestProgress:
    """How far one request got: the engine's last counters and, once sent, its final event (the
    first choice's, for a request with alternatives)."""

    started: float
    live: GenerationStats | None = None
    done: DoneEvent | None = None


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

    @contextlib.contextmanager
    def request(self, started: float | None = None) -> Iterator[RequestProgress]:
        """Count the request run inside: the caller notes its counters and final event on the
        progress this yields; whatever way it ends (done, the client gone, an error), it is
        recorded once, here."""
        progress = RequestProgress(time.monotonic() if started is None else started)
        ending = FinishReason.CANCELLED  # closed from outside: the client went away
        try:
            yield progress
        except Exception:
            ending = FinishReason.ERROR
            raise
        finally:
            self._record(progress.done or final_event(progress.live, ending, progress.started))

    def _record(self, event: DoneEvent) -> None:
        self.requests += 1
        self.finish_reasons[event.finish_reason] += 1
        if event.finish_reason not in _NOT_TIMED:
            self.latencies_ms.append(event.elapsed_ms)
        self.prompt_tokens += event.prompt_tokens
        self.cached_tokens += event.cached_tokens
        self.generated_tokens += event.generated_tokens
        self.draft_tokens += event.draft_tokens
        self.draft_accepted += event.draft_accepted

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
