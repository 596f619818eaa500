"""How busy the machine is around a bench run (Linux /proc; standard library only).

The machine has 2 cores shared with other people's work: a latency taken while someone else
computes is inflated. These helpers wait for idle CPUs before a run and measure, during it, the
share of the CPUs used by processes that are not the run's own.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CPUS = os.cpu_count() or 1


def busy_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (/proc/stat, minus idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def proc_seconds(pid: int | None) -> float:
    """CPU seconds one process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over the next `seconds`."""
    start = busy_seconds()
    time.sleep(seconds)
    return (busy_seconds() - start) / (seconds * CPUS)


def load_average() -> dict[str, float]:
    one, five, _ = os.getloadavg()
    return {"loadavg_1m": round(one, 2), "loadavg_5m": round(five, 2), "cpus": CPUS}


def wait_for_idle(what: str, wait_s: float, threshold: float = 0.25) -> float:
    """Wait up to `wait_s` for the CPUs to be less than `threshold` busy; the last reading."""
    deadline = time.monotonic() + wait_s
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        print(f"bench: CPUs {busy * 100:.0f}% busy: waiting for them to settle before {what}", file=sys.stderr)
        busy = cpu_busy()
    if busy > threshold:
        print(f"bench: WARNING: CPUs {busy * 100:.0f}% busy before {what}: latencies will be inflated",
              file=sys.stderr)
    return busy


@dataclass
class HostLoad:
    """The machine during a run: the CPU share others took, and the load averages at both ends."""

    others_cpu_share: float
    wall_s: float
    load_start: dict[str, float]
    load_end: dict[str, float]

    def note(self) -> str:
        warn = " (**other work inflated these latencies**)" if self.others_cpu_share > 0.1 else ""
        return (f"other processes used {self.others_cpu_share * 100:.0f}% of the CPUs; load average "
                f"{self.load_start.get('loadavg_1m')} at the start, {self.load_end.get('loadavg_1m')} at the end{warn}")


@dataclass
class OthersMeter:
    """CPU used during a run by processes other than this one and its children."""

    started: float = field(default_factory=time.monotonic)
    busy_start: float = field(default_factory=busy_seconds)
    load_start: dict[str, float] = field(default_factory=load_average)
    own_start: float = 0.0

    def __post_init__(self) -> None:
        self.own_start = self._own()

    @staticmethod
    def _own() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # those waited for, and theirs
        return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime

    def report(self, started_since: list[int] | None = None) -> HostLoad:
        """So far; `started_since`: pids of ours that are not our children (a daemon the language
        server started), started after the meter, so all their CPU time is the run's own."""
        wall = time.monotonic() - self.started
        own = self._own() - self.own_start + sum(proc_seconds(pid) for pid in started_since or [])
        others = busy_seconds() - self.busy_start - own
        return HostLoad(round(max(others, 0.0) / (max(wall, 1e-9) * CPUS), 3), round(wall, 1),
                        self.load_start, load_average())
