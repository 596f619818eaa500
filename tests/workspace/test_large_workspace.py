"""A workspace of 20,000 files in the real daemon: indexed (or capped with a message) while
completions keep being answered. Prints indexing time, resident memory and completion latencies
(timing goals live in bench/index_bench.py, not in asserts)."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.index_bench import generate_tree
from tests.support import FIB, daemon_http, endpoint

SPLIT = FIB.index("\n        \n") + 9
REQUEST = {"prefix": FIB[:SPLIT], "suffix": FIB[SPLIT:], "mode": "single", "max_tokens": 16, "language": "python",
           "path": "fib.py", "document": "file:///fib-large.py", "client": "large-test"}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _cpu_ms(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system) of a process, or of one of its threads."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _complete(http: httpx.Client) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    with http.stream("POST", "/api/fim", json=REQUEST) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    return time.monotonic() - started, events[-1]


def test_twenty_thousand_files_are_indexed_while_completions_are_answered(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "big"
    generate_tree(root, 20_000)
    pid = int(endpoint(daemon_env)["pid"])
    with daemon_http(daemon_env) as http:
        quiet = [_complete(http)[0] for _ in range(2)]  # the prompt is cached after the first
        rss_before = _rss_mb(pid)
        started = time.monotonic()
        http.post("/api/workspace", json={"client": "large", "pid": os.getpid(), "folders": [str(root)]})
        during: list[float] = []
        folder: dict[str, Any] = {}
        while True:
            folders = http.get("/api/workspace?client=large").json()["folders"]
            folder = folders[0]
            if folder["state"] != "scanning":
                break
            assert time.monotonic() - started < 1200, f"still scanning: {folder}"
            worker = http.get("/api/status").json()["workspace"]["worker_thread"]
            cpu = _cpu_ms(pid), _cpu_ms(pid, worker)
            seconds, done = _complete(http)
            worker_cpu = _cpu_ms(pid, worker) - cpu[1]
            assert done["type"] == "done" and done["finish_reason"] in ("newline", "stop", "length"), done
            during.append(seconds)
            print(f"  {time.monotonic() - started:6.1f} s: completion {seconds * 1000:.0f} ms, daemon CPU "
                  f"{_cpu_ms(pid) - cpu[0]:.0f} ms of which the index worker {worker_cpu:.0f} ms; "
                  f"index {folder['parsed']:,}/{folder['discovered']:,}; load {os.getloadavg()[0]:.1f}")
            time.sleep(1.0)  # typing pauses: the scan runs between completions
        indexed_s = time.monotonic() - started
        rss_after = _rss_mb(pid)
        http.post("/api/workspace", json={"client": "large", "folders": []})
    print(
        f"\n20,000-file tree: {folder['state']} in {indexed_s:.1f} s, {folder['files']:,} files, "
        f"{folder['definitions']:,} definitions; daemon RSS {rss_before:.0f} -> {rss_after:.0f} MB; "
        f"completion before {statistics.median(quiet) * 1000:.0f} ms, during indexing p50 "
        f"{statistics.median(during) * 1000 if during else float('nan'):.0f} ms / max "
        f"{max(during, default=0) * 1000:.0f} ms over {len(during)} completions; message: {folder['message']!r}"
    )
    assert during, "no completion was made while the index was scanning"
    assert folder["state"] in ("ready", "capped")
    if folder["state"] == "capped":
        assert folder["files"] >= 19_000 and "NEARCODE_INDEX_MAX_FILES" in folder["message"]
    else:
        assert folder["files"] >= 20_000
