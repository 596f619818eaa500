"""Engines behind one interface: requests in, an async stream of text out, cancellable."""

from nearcode.daemon.engines.base import (
    CancelCounters,
    Engine,
    EngineError,
    EngineInfo,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
    Priority,
)

__all__ = [
    "CancelCounters",
    "Engine",
    "EngineError",
    "EngineInfo",
    "FinishReason",
    "GenerationChunk",
    "GenerationRequest",
    "GenerationStats",
    "Priority",
]
