"""glibc malloc settings for the processes that live for days: the daemon and the language servers.

llama.cpp's prompt cache keeps each saved prompt's KV state (~12 kB a token on the 0.5B: megabytes
a prompt) in host memory and frees the oldest past its cap. glibc serves a freed large buffer's
successors from its heaps once its dynamic mmap threshold has risen past their size, and a heap
can only give memory back above its last live allocation: with small long-lived objects between
them, freed states stay resident, and the daemon's memory rose by steps through the soak (issue
12: +9% between minutes 10 and 21, most of it in per-thread arenas of ~64 MB). A fixed mmap
threshold keeps every buffer of a megabyte or more in a mapping of its own, returned to the system
when freed; fewer arenas keep the many engine threads from each growing one of their own.

A language server has the same arena problem on a small scale: pygls reads every message in a
worker thread of its pool, and each new reader thread got an arena of its own that kept the freed
message buffers (documents of tens of kB) resident (the soak: +3-5% an hour, in steps).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import sys
from typing import Any

log = logging.getLogger("nearcode")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20  # fixed: glibc stops raising it after a large free
ARENAS = 2


@functools.cache
def _libc_function(name: str) -> Any | None:
    """A function of the C library (None where it has none by that name: not glibc, or too old)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def tune_malloc() -> bool:
    """Apply the settings above (before the process starts its threads); False where the C library
    is not glibc, which then keeps its own policy."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_ARENA_MAX, ARENAS) == 1)
    if not ok:
        log.warning("mallopt refused the malloc settings: memory may grow by steps")
    return ok


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, classes, functions: the start-up's ~80,000 in a
    language server) out of the cyclic collector's reach, and return how many.

    CPython collects its oldest generation only once the objects promoted into it since the last
    full collection exceed a quarter of its size. With the start-up objects counted, a language
    server ran two full collections in 35 minutes of the soak, and the dead objects that wait for
    one (an httpx response and its stream refer to each other; so do finished tasks) piled up by
    the thousand between them: the heap's peak, and with it the resident memory, rose in steps.
    Frozen, they neither count nor get walked: full collections come often and cost little."""
    gc.collect()  # what start-up left for the collector goes now, not into the frozen set
    gc.freeze()
    # The oldest generation's size the next full collection is measured against is taken at a
    # full collection: this one sets it to what is not frozen (nothing yet), not the ~80,000.
    gc.collect()
    return gc.get_freeze_count()


class _MallInfo2(ctypes.Structure):  # glibc >= 2.33 (malloc.h): every field a size_t
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def allocator_report() -> dict[str, int]:
    """Where this process's heap memory is, by allocator: malloc's blocks in use, its free space
    kept in its arenas (fragmentation: resident until a trim), its own mappings for large blocks,
    and CPython's small-object blocks in use (a count: its arenas are mapped apart from malloc),
    with the collector's frozen objects and full collections so far.
    The soak samples it to tell a leak (in use rises) from fragmentation (free rises)."""
    report = {"pymalloc_blocks": sys.getallocatedblocks(), "gc_frozen": gc.get_freeze_count(),
              "gc_full_collections": gc.get_stats()[-1]["collections"]}
    mallinfo2 = _libc_function("mallinfo2")
    if mallinfo2 is not None:
        mallinfo2.argtypes, mallinfo2.restype = [], _MallInfo2
        info = mallinfo2()
        report |= {"malloc_in_use_kb": info.uordblks // 1024, "malloc_free_kb": info.fordblks // 1024,
                   "malloc_mmap_kb": info.hblkhd // 1024}
    return report
