"""The daemon's malloc settings (nearcode/shared/native_memory.py) give freed large buffers back to the
system, even after glibc has seen a large free (which, untuned, raises its mmap threshold so the
next large buffers come from a heap that small live objects then pin)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import sys
    from nearcode.shared.native_memory import tune_malloc

    def rss_mb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

    if sys.argv[1] == "tuned":
        assert tune_malloc()
    base = rss_mb()
    first = bytearray(8 << 20)
    del first  # untuned glibc now serves buffers of this size from its heap
    states, small = [], []
    for _ in range(50):  # prompt states (~6 MB), with small long-lived objects made between them
        states.append(bytearray(6 << 20))
        small.append(bytearray(600))
    states.clear()
    print(rss_mb() - base)
""")


def resident_after_free(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, read through /proc")
def test_freed_prompt_states_leave_the_process() -> None:
    untuned, tuned = resident_after_free("untuned"), resident_after_free("tuned")
    assert untuned > 200, f"the probe no longer shows glibc keeping freed buffers ({untuned} MB): revisit it"
    assert tuned < 30, f"{tuned} MB of 300 MB freed stayed resident with the daemon's settings"


def test_allocator_report_tells_malloc_in_use_from_free_and_counts_small_objects() -> None:
    """The figures the soak samples to tell a leak (in use rises) from fragmentation (free rises)."""
    from nearcode.shared.native_memory import allocator_report

    before = allocator_report()
    held = [bytearray(100_000) for _ in range(40)]  # 4 MB from malloc's arenas (under any mmap threshold)
    small = [object() for _ in range(20_000)]  # CPython's small-object allocator
    during = allocator_report()
    assert during["malloc_in_use_kb"] - before["malloc_in_use_kb"] >= 3500, (before, during)
    assert during["pymalloc_blocks"] - before["pymalloc_blocks"] >= 19_000, (before, during)
    del held, small
    after = allocator_report()
    assert during["malloc_in_use_kb"] - after["malloc_in_use_kb"] >= 3500, (during, after)


COLLECTOR_PROBE = textwrap.dedent("""
    import gc, sys
    import nearcode.lsp.server  # the language server's start-up objects
    from nearcode.shared.native_memory import freeze_startup_objects

    gc.collect()
    if sys.argv[1] == "frozen":
        freeze_startup_objects()

    class Node:
        def __init__(self):
            self.me = self  # dead only to the cyclic collector, like an httpx response and its stream

    kept = []
    for i in range(300_000):
        Node()
        if i % 50 == 0:
            kept.append([i])  # a few survivors, as a server keeps some of what it makes
    print(gc.get_stats()[-1]["collections"])
""")


def full_collections(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", COLLECTOR_PROBE, mode], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    return int(out.stdout.strip())


def test_frozen_start_up_objects_let_full_collections_run() -> None:
    """In a subprocess (a freeze would hold pytest's own objects for the rest of the run)."""
    plain, frozen = full_collections("plain"), full_collections("frozen")
    assert frozen >= plain + 3, (plain, frozen)
