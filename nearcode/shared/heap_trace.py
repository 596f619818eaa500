"""Python heap tracing for the soak (issue 12): name the allocation sites that grow, in the daemon
and in the language servers (`nearcode.debugHeap`, registered only while tracing).

The daemon's resident memory mixes the engine's native allocations (llama.cpp's weights and KV
cache, glibc's arenas) with Python's heap. With NEARCODE_TRACE_HEAP=1 the daemon runs tracemalloc
from start-up and `/api/status` carries `python_heap`: the traced total and the largest allocation
sites, so bench/soak.py can tell a Python leak (the traced total rises) from native growth (RSS
rises, the traced total does not). Off by default: tracing slows every allocation.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

ENV = "NEARCODE_TRACE_HEAP"
FRAMES = 1  # the report groups by the allocating line only: deeper frames would only cost


def start_if_asked() -> bool:
    """Start tracemalloc when the environment asks for it; True when tracing."""
    if os.environ.get(ENV, "") not in ("", "0") and not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    return tracemalloc.is_tracing()


def heap_report(top: int = 8) -> dict[str, Any] | None:
    """The traced heap's size and its `top` largest sites by line (None when not tracing)."""
    if not tracemalloc.is_tracing():
        return None
    current, peak = tracemalloc.get_traced_memory()
    stats = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)).statistics("lineno")
    return {
        "traced_kb": current // 1024,
        "peak_kb": peak // 1024,
        "top": [
            {"site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}", "kb": s.size // 1024, "count": s.count}
            for s in stats[:top]
        ],
    }
