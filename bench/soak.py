#!/usr/bin/env python3
"""Soak: two editors type for an hour against one daemon; does anything grow? (issue 12, item 5)

Replays realistic typing (bench/replay.py: stdlib functions typed back with pauses, typos and Tab
accepts), sessions after sessions, from two language servers on one daemon the first of them starts
(so the daemon writes daemon.log and rotates it). Every `--sample-s` seconds it records, for the
daemon and both language servers, resident memory, open file descriptors and threads, plus the
daemon's cache sizes (/api/status "caches"), daemon.log's size and the load average. It reports each
series' growth from the first sample after `--settle-min` minutes to the end (goal: under 5%), a
Mann-Kendall trend test over the same samples (goal: no monotonic trend), and plots it all.

  make soak                                   (60 minutes; installs matplotlib for the plot)
  .venv/bin/python bench/soak.py --minutes 5 --sample-s 20 --settle-min 1      (a quick check)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from nearcode.lsp.daemon_client import DaemonClient, DaemonUnavailable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import replay  # bench/replay.py: the typing sessions and the editor client
from daemonctl import start_standin_daemon

GROWTH_GOAL = 0.05
REGIONS = ("heap_kb", "arenas_kb", "anon_kb", "file_kb")
TREND_P = 0.05


def memory_regions(pid: int) -> dict[str, int]:
    """Where `pid`'s resident memory lies (kB), from /proc/<pid>/smaps: malloc's main heap (brk),
    1 MiB anonymous maps (CPython's object arenas), other anonymous maps (malloc's thread arenas and
    large blocks, native libraries' own), and mapped files (code, the model file)."""
    regions = dict.fromkeys(REGIONS, 0)
    kind = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header: range perms offset dev inode [name]
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            kind = ("heap_kb" if name == "[heap]" else "arenas_kb" if not name and end - start == 1 << 20
                    else "anon_kb" if not name or name.startswith("[anon") else "file_kb" if name.startswith("/")
                    else "")  # [stack], [vdso], ...: not counted
        elif fields[0] == "Rss:" and kind:
            regions[kind] += int(fields[1])
    return regions


def proc_sample(pid: int) -> dict[str, int] | None:
    """Resident memory (kB, in total and by region), open file descriptors and threads of `pid`
    (None when it is gone)."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        return {
            "rss_kb": int(status["VmRSS"].split()[0]),
            "threads": int(status["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            **memory_regions(pid),
        }
    except (OSError, KeyError, ValueError):
        return None


async def daemon_status() -> dict[str, Any]:
    """The daemon's /api/status through nearcode's own client ({} if it does not answer)."""
    client = DaemonClient(spawn=False)
    try:
        return dict(await client.get_json("/api/status"))
    except (DaemonUnavailable, httpx.HTTPError, ValueError):
        return {}
    finally:
        await client.close()


async def stop_daemon() -> str:
    """Ask the daemon to stop, then wait for that process (ours: in our runtime dir) to exit."""
    pid = int((await daemon_status()).get("pid") or 0)
    client = DaemonClient(spawn=False)
    try:
        await client.shutdown()
    finally:
        await client.close()
    for _ in range(120):  # 30 s for the process to exit
        if not pid or proc_sample(pid) is None:
            break
        await asyncio.sleep(0.25)
    if pid and proc_sample(pid) is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        return f"daemon pid {pid} did not stop: killed"
    return f"daemon pid {pid} stopped"


def log_bytes(runtime: Path) -> int:
    return sum(p.stat().st_size for p in runtime.glob("daemon.log*") if p.is_file())


async def take_sample(started: float, runtime: Path, editors: list[Any]) -> dict[str, Any]:
    status = await daemon_status()
    sample: dict[str, Any] = {"t_min": round((time.monotonic() - started) / 60, 2), "load1": os.getloadavg()[0]}
    if status.get("pid"):
        sample["daemon"] = proc_sample(int(status["pid"]))
        sample["daemon_pid"] = status["pid"]
    sample["caches"] = status.get("caches", {})
    sample["daemon_alloc"] = status.get("allocator", {})
    heap = status.get("python_heap") or {}
    if heap:  # NEARCODE_TRACE_HEAP=1: Python's share of the daemon's memory, apart from the engine's
        sample["heap"] = {"traced_kb": heap["traced_kb"]}
        sample["heap_top"] = heap["top"]
    sample["daemon_requests"] = status.get("requests")
    sample["daemon_log_bytes"] = log_bytes(runtime)
    for i, ed in enumerate(editors):
        sample[f"lsp{i}"] = proc_sample(ed.lsp.proc.pid)
        # `nearcode.debugHeap` (the debug commands are on): the server's allocators and, while
        # tracing, its traced Python heap.
        with contextlib.suppress(Exception):  # a busy or restarting server: no sample this minute
            report = await ed.lsp.call("workspace/executeCommand", {"command": "nearcode.debugHeap", "arguments": []}, 10)
            sample[f"lsp{i}_alloc"] = report.get("allocator", {})
            sample[f"lsp{i}_caches"] = report.get("caches", {})
            if "traced_kb" in report:
                sample[f"lsp{i}_heap"] = {"traced_kb": report["traced_kb"]}
                sample[f"lsp{i}_heap_top"] = report["top"]
    return sample


def series(samples: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Every numeric measurement over time: 'daemon.rss_kb', 'lsp0.fds', 'caches.prompt_anchors', ..."""
    out: dict[str, list[tuple[float, float]]] = {}
    for sample in samples:
        for group in ("daemon", "lsp0", "lsp1", "caches", "heap", "lsp0_heap", "lsp1_heap",
                      "daemon_alloc", "lsp0_alloc", "lsp1_alloc", "lsp0_caches", "lsp1_caches"):
            for key, value in (sample.get(group) or {}).items():
                out.setdefault(f"{group}.{key}", []).append((sample["t_min"], float(value)))
        out.setdefault("daemon.log_bytes", []).append((sample["t_min"], float(sample["daemon_log_bytes"])))
    return out


def mann_kendall(values: list[float]) -> tuple[float, float]:
    """Kendall's tau of the values against time, and the two-sided p-value of no trend."""
    n = len(values)
    if n < 3:
        return 0.0, 1.0
    s = sum((b > a) - (b < a) for a, b in itertools.combinations(values, 2))
    variance = n * (n - 1) * (2 * n + 5) / 18
    z = (s - (1 if s > 0 else -1 if s < 0 else 0)) / math.sqrt(variance)
    p = 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))
    return s / (n * (n - 1) / 2), p


def verdicts(samples: list[dict[str, Any]], settle_min: float) -> list[dict[str, Any]]:
    rows = []
    for name, points in series(samples).items():
        steady = [v for t, v in points if t >= settle_min]
        if len(steady) < 2:
            continue
        base, last = steady[0], steady[-1]
        growth = (last - base) / base if base else (0.0 if last == base else math.inf)
        tau, p = mann_kendall(steady)
        trend = p < TREND_P and tau > 0
        bounded = "caches" in name.split(".")[0] or name == "daemon.log_bytes"  # judged by their bounds
        # The traced heaps and the regions say where memory goes; the goal is on what the system sees (RSS).
        group = name.split(".")[0]
        diagnostic = "heap" in group or "alloc" in group or name.split(".")[-1] in REGIONS
        ok = (growth < GROWTH_GOAL and not trend) or bounded or diagnostic
        rows.append({"series": name, "at_settle": base, "end": last, "max": max(steady), "growth": growth,
                     "tau": tau, "p": p, "rising_trend": trend, "ok": ok, "judged": not (bounded or diagnostic)})
    return rows


def plot(samples: list[dict[str, Any]], settle_min: float, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        replay.log("matplotlib is not installed (make soak installs it): no plot")
        return False
    data = series(samples) | {"load1": [(s["t_min"], s["load1"]) for s in samples]}  # plotted, not judged
    panels = [  # (title, series names, scale)
        ("daemon: resident memory (MB)", ["daemon.rss_kb"], 1 / 1024),
        ("language servers: resident memory (MB)", ["lsp0.rss_kb", "lsp1.rss_kb"], 1 / 1024),
        ("open file descriptors", ["daemon.fds", "lsp0.fds", "lsp1.fds"], 1),
        ("threads", ["daemon.threads", "lsp0.threads", "lsp1.threads"], 1),
        ("daemon caches (entries)", sorted(n for n in data if n.startswith("caches.")), 1),
        ("daemon.log and rotated files (kB)", ["daemon.log_bytes"], 1 / 1024),
        ("traced Python heap (MB)", ["heap.traced_kb", "lsp0_heap.traced_kb", "lsp1_heap.traced_kb"], 1 / 1024),
        ("load average (1 min)", ["load1"], 1),
        ("language servers: malloc in use, free, mapped (MB)",
         [f"lsp{i}_alloc.{k}" for i in (0, 1) for k in ("malloc_in_use_kb", "malloc_free_kb", "malloc_mmap_kb")], 1 / 1024),
        ("language servers: CPython small-object blocks (thousands)",
         ["lsp0_alloc.pymalloc_blocks", "lsp1_alloc.pymalloc_blocks"], 1 / 1000),
    ]
    fig, axes = plt.subplots(5, 2, figsize=(12, 17), sharex=True)
    for ax, (title, names, scale) in zip(axes.flat, panels, strict=True):
        for name in names:
            points = data.get(name, [])
            ax.plot([t for t, _ in points], [v * scale for _, v in points], marker=".", label=name)
        ax.set_title(title)
    for ax in axes.flat:
        ax.axvline(settle_min, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("minutes")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"nearcode soak: 2 editors, {samples[-1]['t_min']:.0f} min; dotted line: end of settling")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def report(samples: list[dict[str, Any]], rows: list[dict[str, Any]], meta: dict[str, Any], png: str | None) -> str:
    loads = [s["load1"] for s in samples]
    lines = [
        f"## nearcode soak ({meta['started']}, {meta['minutes']:.1f} min, {meta['editors']} editors, one daemon)",
        "",
        f"- command: `{meta['command']}`",
        f"- typing: {meta['sessions']} sessions, {meta['keystrokes']} keystrokes, {meta['requests']} completion requests, "
        f"daemon requests {samples[0].get('daemon_requests')} -> {samples[-1].get('daemon_requests')}",
        f"- load average (1 min) during the run: mean {sum(loads) / len(loads):.2f}, max {max(loads):.2f} "
        f"({os.cpu_count()} CPUs)",
        f"- growth is measured from the first sample at or after minute {meta['settle_min']:g} to the last; "
        f"goal under {GROWTH_GOAL:.0%} and no rising Mann-Kendall trend (p < {TREND_P}); caches and the log are "
        "judged by their bounds, the traced Python heaps are not judged (they say where memory goes)",
        "",
        "| series | at settle | end | max | growth | Kendall tau | p | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        verdict = ("ok" if r.get("judged", True) else "not judged") if r["ok"] else (
            "rising trend" if r["rising_trend"] else "grew")
        lines.append(f"| {r['series']} | {r['at_settle']:.0f} | {r['end']:.0f} | {r['max']:.0f} | {r['growth']:+.1%} | "
                     f"{r['tau']:+.2f} | {r['p']:.3f} | {verdict} |")
    for process, key in (("the daemon", "heap_top"), ("language server 0", "lsp0_heap_top"),
                         ("language server 1", "lsp1_heap_top")):
        tops = [s for s in samples if s.get(key)]
        if not tops:
            continue
        settled = next((s for s in tops if s["t_min"] >= meta["settle_min"]), tops[0])
        lines += ["", f"Largest Python allocation sites in {process} (tracemalloc), at settle and at the end:", ""]
        for label, sample in (("settle", settled), ("end", tops[-1])):
            lines += [f"- {label} (minute {sample['t_min']:.0f}): " + "; ".join(
                f"{t['site']} {t['kb']} kB ({t['count']})" for t in sample[key][:6])]
    if png:
        lines += ["", f"![soak]({png})"]
    return "\n".join(lines) + "\n"


async def soak(args: argparse.Namespace, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    base = Path(tempfile.mkdtemp(prefix="ncsoak-", dir="/tmp"))  # short: it holds a unix socket
    (runtime := base / "rt").mkdir(mode=0o700)
    os.environ["NEARCODE_RUNTIME_DIR"] = str(runtime)  # for this process's client of the daemon, too
    if args.trace_heap:  # the daemon the first editor starts inherits it (nearcode/shared/heap_trace.py)
        os.environ["NEARCODE_TRACE_HEAP"] = "1"
    os.environ["NEARCODE_DEBUG_COMMANDS"] = "1"  # the servers' `nearcode.debugHeap`: their allocators
    env = dict(os.environ)
    defaults = replay.parse_args([])
    rargs = replay.parse_args(["--seed", str(args.seed), "--interval-ms", str(defaults.interval_ms / args.speed),
                               "--pause-ms", str(defaults.pause_ms / args.speed)])
    funcs = replay.pick_functions(args.functions, args.seed)
    spawned: list[Any] = []
    samples: list[dict[str, Any]] = []
    counts = {"sessions": 0}
    # --standin: the editors find this daemon up and use it instead of starting one on the model.
    standin = start_standin_daemon(base, env, out / "standin.log") if args.standin else []
    try:
        editors = [await replay.start_editor(i, rargs, env, out, base / "ws", spawned) for i in range(args.editors)]
        started = time.monotonic()
        stop_at = started + args.minutes * 60
        queue = itertools.cycle(enumerate(funcs))
        # SIGINT or SIGTERM ends the run early with a report of what was sampled and everything
        # cleaned up (a background job started by a script ignores SIGINT: `kill` sends TERM).
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)

        async def type_away(i: int, ed: Any) -> None:
            while time.monotonic() < stop_at and not stopping.is_set():
                sid, func = next(queue)
                # One path per function and editor, written again each time it comes round: a
                # project's files, not a workspace that grows by a file a session (the index, the
                # prompt anchors and pathlib's interned names would grow with it, as data).
                path = base / "ws" / f"e{i}" / f"f{sid}" / func.path
                await replay.replay(ed, func, sid, rargs, path)
                counts["sessions"] += 1

        async def sample_every() -> None:
            while True:
                samples.append(await take_sample(started, runtime, editors))
                (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
                replay.log(f"sample at {samples[-1]['t_min']:.1f} min: " + json.dumps(
                    {k: samples[-1].get(k) for k in ("daemon", "lsp0", "lsp1", "caches", "load1")}))
                await asyncio.sleep(args.sample_s)

        sampler = asyncio.create_task(sample_every())
        typists = [asyncio.create_task(type_away(i, ed)) for i, ed in enumerate(editors)]
        stop_early = asyncio.create_task(stopping.wait())
        # Typists only end at stop_at (or by an error): the first to end, or a signal, ends the run.
        await asyncio.wait([*typists, stop_early], timeout=max(0.0, stop_at - time.monotonic()) + 1,
                           return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            replay.log("stopped by a signal: reporting what was sampled")
        for typist in typists:
            if typist.done() and not typist.cancelled() and typist.exception() is not None:
                replay.log(f"an editor stopped typing: {typist.exception()!r}")
        stop_early.cancel()
        for typist in typists:  # mid-session at the end: stop typing now
            typist.cancel()
        await asyncio.gather(*typists, return_exceptions=True)
        sampler.cancel()
        samples.append(await take_sample(started, runtime, editors))
        totals = sum((ed.counts for ed in editors), collections.Counter())
        meta = {"sessions": counts["sessions"], "keystrokes": totals["keystrokes"], "requests": totals["requests"]}
        return samples, meta
    finally:
        await asyncio.gather(*(lsp.close() for lsp in spawned), return_exceptions=True)
        replay.log(await stop_daemon())
        for child in standin:
            child.kill()
            child.wait()
        with contextlib.suppress(OSError):
            for log_file in runtime.glob("daemon.log*"):
                shutil.copy(log_file, out / log_file.name)
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--settle-min", type=float, default=10.0, help="growth is measured from this minute on")
    ap.add_argument("--editors", type=int, default=2)
    ap.add_argument("--functions", type=int, default=40, help="stdlib functions typed, in a cycle")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--speed", type=float, default=1.0,
                    help="typing speed as a multiple of replay.py's (2: keystrokes and pauses twice as quick); "
                         "more messages an hour tells growth per message from growth per hour")
    ap.add_argument("--standin", action="store_true",
                    help="the daemon's engine answers at once (tests/standin_engine.py over its openai engine): a "
                         "suggestion in every pause and no model on the CPU, so the language servers' life of shown "
                         "suggestions passes faster (with --speed); the daemon's figures are then not the model's")
    ap.add_argument("--trace-heap", action="store_true",
                    help="trace the daemon's and the language servers' Python heaps (names what grows; tracemalloc "
                         "and its snapshots add ~10 MB to each server and steps of their own, so the RSS verdict "
                         "is taken without it)")
    ap.add_argument("--no-trace-heap", dest="trace_heap", action="store_false", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help="results folder (default $BENCH_HOME/results/soak-<time>)")
    ap.add_argument("--report", default="", help="write the report again from a finished run's folder (its soak.json)")
    args = ap.parse_args(argv)
    if args.report:
        return write_report(Path(args.report), **json.loads((Path(args.report) / "soak.json").read_text()))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or Path(os.environ.get("BENCH_HOME", "/tmp/bench")) / "results" / f"soak-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    replay.log(f"soak for {args.minutes:g} min, results in {out}; load average {os.getloadavg()[0]:.2f}")
    samples, meta = asyncio.run(soak(args, out))
    meta |= {"started": stamp, "minutes": samples[-1]["t_min"], "editors": args.editors, "settle_min": args.settle_min,
             "command": " ".join([sys.executable, "bench/soak.py", *(sys.argv[1:] if argv is None else argv)])}
    return write_report(out, meta, samples)


def write_report(out: Path, meta: dict[str, Any], samples: list[dict[str, Any]], **_: Any) -> int:
    """Verdicts, plot and report of a run into `out` (soak.md, soak.png, soak.json); 0 if every goal holds."""
    rows = verdicts(samples, meta["settle_min"])
    png = "soak.png" if plot(samples, meta["settle_min"], out / "soak.png") else None
    text = report(samples, rows, meta, png)
    (out / "soak.md").write_text(text)
    (out / "soak.json").write_text(json.dumps({"meta": meta, "verdicts": rows, "samples": samples}, indent=1))
    print(text)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
