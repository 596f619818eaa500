#!/usr/bin/env python3
"""Compare nearcode with the llama.cpp anchor on the shared bench's public cases, side by side.

Runs the shared harness (../shared/bench) as subprocesses, one side after the other (never both at
once: the machine has 2 cores), and prints a Markdown table of both results JSONs, also written to
$BENCH_HOME/results/compare-<time>.md. Run it with the project venv's python (it has xllamacpp):

  .venv/bin/python bench/compare.py [--limit 80] [--mode single|typing|typing-warm|concurrency4]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CASES_NAME = "cases-public.jsonl"
OURS_MODES = {"single": [], "typing": ["--typing"], "typing-warm": ["--typing", "--typing-warm"],
              "concurrency4": ["--concurrency", "4"]}
ANCHOR_MODES = {"single": [], "concurrency4": ["--concurrency", "4"]}  # no typing replay for /infill
ANCHOR_ARGS = ["--threads", "2", "--parallel", "4", "--ctx", "16384"]
COMMANDS: list[str] = []
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None,
        capture: bool = False) -> subprocess.CompletedProcess[str]:
    line = shlex.join(cmd)
    if env and env.get("NEARCODE_RUNTIME_DIR") != os.environ.get("NEARCODE_RUNTIME_DIR"):
        line = f"NEARCODE_RUNTIME_DIR={env['NEARCODE_RUNTIME_DIR']} {line}"
    log("$ " + line)
    COMMANDS.append(line)
    return subprocess.run(cmd, env=env, text=True, check=False,
                          stdout=subprocess.PIPE if capture else None)


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def readme_sha(readme: Path, name: str) -> str | None:
    """The digest the shared README's table gives for the cases file `name`."""
    m = re.search(rf"`{re.escape(name)}`.*`([0-9a-f]{{64}})`", readme.read_text(encoding="utf-8"))
    return m.group(1) if m else None


def prepare_cases(args: argparse.Namespace, shared: Path, home: Path, env: dict[str, str]) -> tuple[Path, str]:
    """The cases file (set up and generated when missing) and a note on its digest."""
    cases = Path(args.cases) if args.cases else home / CASES_NAME
    if not cases.exists():
        if args.cases:
            raise BenchError(f"cases file {cases} does not exist")
        log(f"{cases} missing: setting up the shared bench in {home}")
        if run(["bash", str(shared / "setup.sh")], env=env).returncode != 0:
            raise BenchError("setup.sh failed (it needs PyPI for attrs and pydantic)")
        mk = [sys.executable, str(shared / "make_cases.py"), "--home", str(home), "--out", str(cases)]
        if run(mk, env=env).returncode != 0 or not cases.exists():
            raise BenchError("make_cases.py failed")
    want, got = readme_sha(shared / "README.md", cases.name), sha256(cases)
    if want == got:
        return cases, f"sha256 `{got[:16]}…` (as in the shared README)"
    log(f"WARNING: {cases} has sha256 {got}, the shared README says {want} (another Python patch "
        "release, harness version or --cases): scores are not comparable with figures from other runs")
    return cases, f"sha256 `{got}`, **not the shared README's `{want}`**"


def model_path(args: argparse.Namespace, nearcode: Path) -> Path:
    if args.model:
        path = Path(args.model)
    elif not nearcode.exists():
        raise BenchError(f"{nearcode} not found: install nearcode (make install) or pass --model")
    else:  # prints the default model's path, assembling it first if needed
        proc = run([str(nearcode), "model", "path"], capture=True)
        lines = (proc.stdout or "").strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise BenchError("`nearcode model path` failed")
        path = Path(lines[-1].strip())
    if not path.is_file():
        raise BenchError(f"model file {path} does not exist")
    return path.resolve()


def busy_seconds() -> float:
    """CPU seconds spent busy by all processes since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def proc_seconds(pid: int | None) -> float:
    """CPU seconds used so far by one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_busy(seconds: float = 2.0) -> float:
    b0 = busy_seconds()
    time.sleep(seconds)
    return (busy_seconds() - b0) / (seconds * (os.cpu_count() or 1))


class OthersMeter:
    """Share of the CPUs used by processes other than this run's during it (they inflate latencies)."""

    def __init__(self, server_pid: int | None = None, daemon_pid: int | None = None) -> None:
        # daemon_pid: a daemon already running (started first): it and its engine processes count as ours.
        self.pid, self.daemon, self.t0, self.busy0 = server_pid, daemon_pid, time.monotonic(), busy_seconds()
        self.own0 = self.own()

    def own(self) -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited children and their descendants
        tree = sum(proc_seconds(p) for p in descendants(self.daemon)) if self.daemon else 0.0
        return r.ru_utime + r.ru_stime + proc_seconds(self.pid) + tree

    def note(self, side: str, daemon_pid: int | None = None) -> str:
        wall = time.monotonic() - self.t0
        # A daemon the language server started during the run: all of its tree's CPU is this run's.
        ours = sum(proc_seconds(p) for p in descendants(daemon_pid)) if daemon_pid and not self.daemon else 0.0
        others = busy_seconds() - self.busy0 - (self.own() - self.own0) - ours
        share = max(others, 0.0) / (wall * (os.cpu_count() or 1))
        warn = " (**other work inflated these latencies**)" if share > 0.1 else ""
        return f"- other processes used {share * 100:.0f}% of the CPUs during the {side} run{warn}"


def check_idle(side: str, header: list[str], wait_s: float) -> None:
    """Wait up to `wait_s` for the CPUs to be mostly idle (other engineers share the machine)."""
    deadline = time.monotonic() + wait_s
    while (busy := cpu_busy()) > 0.25 and time.monotonic() < deadline:
        log(f"CPUs {busy * 100:.0f}% busy: waiting for them to settle before the {side} run")
    header.append(f"- CPU busy just before the {side} run: {busy * 100:.0f}%")
    if busy > 0.25:
        log(f"WARNING: CPUs {busy * 100:.0f}% busy before the {side} run: other work inflates latencies")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"anchor server exited with {proc.returncode} (see its log)")
        try:
            with NO_PROXY.open(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise BenchError(f"anchor server not healthy after {timeout:.0f} s")


def run_anchor(args: argparse.Namespace, shared: Path, cases: Path, model: Path, out: Path,
               env: dict[str, str], notes: list[str]) -> bool:
    if subprocess.run([sys.executable, "-c", "import xllamacpp"], check=False).returncode != 0:
        raise BenchError(f"{sys.executable} has no xllamacpp: run compare.py with the project venv's python")
    port = free_port()
    log_path = out.with_suffix(".server.log")
    cmd = [sys.executable, str(shared / "anchor_server.py"), str(model), "--port", str(port), *ANCHOR_ARGS]
    log("$ " + shlex.join(cmd) + f"  (log: {log_path})")
    COMMANDS.append(shlex.join(cmd) + " &")
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            wait_healthy(endpoint, proc, 300)
            bench = [sys.executable, str(shared / "llamacpp_infill.py"), "--endpoint", endpoint,
                     "--cases", str(cases), "--label", args.anchor_label, "--out", str(out),
                     *common_args(args), *ANCHOR_MODES[args.mode]]
            meter = OthersMeter(proc.pid)
            ok = run(bench, env=env).returncode == 0
            notes.append(meter.note("anchor"))
            return ok
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            COMMANDS.append(f"kill {proc.pid}  # the anchor")


def run_ours(args: argparse.Namespace, shared: Path, cases: Path, nearcode: Path, out: Path,
             env: dict[str, str], notes: list[str]) -> bool:
    if not nearcode.exists():
        log(f"error: {nearcode} not found: install nearcode (make install) or pass --nearcode")
        return False
    runtime = tempfile.mkdtemp(prefix="ncbench-", dir="/tmp")  # short: it holds a unix socket
    ours_env = {**env, "NEARCODE_RUNTIME_DIR": runtime}
    ok, pid = False, None
    engine_extra: dict[str, Any] = {}
    try:
        label = f"nearcode-{args.engine}" if args.engine else "nearcode"
        bench = [sys.executable, str(shared / "lspbench.py"), "--server",
                 shlex.join([str(nearcode), "lsp", "--stdio"]), "--cases", str(cases), "--label", label,
                 "--out", str(out), *common_args(args), *OURS_MODES[args.mode]]
        if args.model:  # the `model` setting: passed to the daemon the server starts (docs/protocol.md)
            bench += ["--init-options", json.dumps({"model": str(Path(args.model).resolve())})]
        if args.engine:
            # The daemon is started first and measured until its engine is ready (vLLM loads for
            # ~30-90 s): the language servers then find it, and no case waits for the load.
            ours_env["NEARCODE_ENGINE"] = args.engine
            engine_extra["engine_ready_s"] = start_daemon_first(nearcode, ours_env, runtime)
            pid = int(json.loads((Path(runtime) / "daemon.json").read_text())["pid"])
        meter = OthersMeter(daemon_pid=pid)
        ok = run(bench, env=ours_env).returncode == 0
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # the address file has its pid
            pid = int(json.loads((Path(runtime) / "daemon.json").read_text())["pid"])
        notes.append(meter.note("nearcode", pid))
        if pid is not None:
            engine_extra["memory_mb"] = round(tree_pss_kb(pid) / 1024)
            notes.append(f"- memory after the run: {engine_extra['memory_mb']} MB PSS (daemon and its engine processes)")
        status = (run([str(nearcode), "status"], env=ours_env, capture=True).stdout or "").strip()
        notes.append("- `nearcode status` after the run: " + " / ".join(status.splitlines()))
        if engine_extra and out.exists():  # recorded with the results, for --results tables
            doc = json.loads(out.read_text())
            doc.setdefault("meta", {}).update(engine_extra)
            out.write_text(json.dumps(doc, indent=1))
    finally:
        if run([str(nearcode), "stop"], env=ours_env).returncode != 0:
            log(f"WARNING: `nearcode stop` failed (daemon of {runtime})")
        notes.append("- " + ensure_gone(pid, runtime))
        daemon_log = Path(runtime) / "daemon.log"
        if daemon_log.exists():
            shutil.copy(daemon_log, out.with_suffix(".daemon.log"))
        shutil.rmtree(runtime, ignore_errors=True)
    return ok


def start_daemon_first(nearcode: Path, env: dict[str, str], runtime: str, timeout_s: float = 900) -> float:
    """Start `nearcode daemon` (engine from NEARCODE_ENGINE) and wait until its engine is ready."""
    t0 = time.monotonic()
    line = f"NEARCODE_ENGINE={env['NEARCODE_ENGINE']} {shlex.join([str(nearcode), 'daemon'])} &"
    log(f"$ {line}")
    COMMANDS.append(line)
    with open(Path(runtime) / "daemon.log", "ab") as logf:
        daemon = subprocess.Popen([str(nearcode), "daemon"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    while time.monotonic() - t0 < timeout_s:
        if daemon.poll() is not None:
            raise BenchError(f"the daemon exited with {daemon.returncode} (log: {runtime}/daemon.log)")
        status = subprocess.run([str(nearcode), "status"], env=env, capture_output=True, text=True, check=False)
        if re.search(r"^state:\s+ready", status.stdout, re.M):
            ready = time.monotonic() - t0
            log(f"daemon ready after {ready:.1f} s")
            return round(ready, 1)
        time.sleep(0.5)
    raise BenchError(f"the daemon's engine was not ready within {timeout_s:.0f} s (log: {runtime}/daemon.log)")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (the daemon's engine children: vLLM's server and workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def tree_pss_kb(pid: int) -> int:
    """Proportional set size of a process tree (shared pages counted once across it)."""
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


def alive(pid: int, runtime: str) -> bool:
    """Whether `pid` is a live process whose environment names our runtime dir (one we started)."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return f"NEARCODE_RUNTIME_DIR={runtime}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False


def ensure_gone(pid: int | None, runtime: str) -> str:
    """Wait for our daemon to exit after `nearcode stop`, terminate it if it does not; what happened."""
    if pid is None:
        return "no daemon pid in its address file"
    t0 = time.monotonic()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and alive(pid, runtime):
            log(f"WARNING: the daemon (pid {pid}) still runs after `nearcode stop`: sending {sig.name}")
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        for _ in range(40):
            if not alive(pid, runtime):
                how = f" (after {sig.name})" if sig else ""
                return f"daemon pid {pid} exited {time.monotonic() - t0:.1f} s after `nearcode stop`{how}"
            time.sleep(0.5)
    return f"daemon pid {pid} survived SIGKILL"


def common_args(args: argparse.Namespace) -> list[str]:
    extra = ["--limit", str(args.limit), "--timeout", str(args.timeout)]
    return extra + (["--kinds", args.kinds] if args.kinds else [])


# ---- the report -------------------------------------------------------------------------------

def fmt(key: str, v: Any) -> str:
    if v is None:
        return "n/a"
    if key in ("exact_line", "exact_full", "empty", "errors"):
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:.3f}" if key == "edit_sim" else f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"
    return str(v)


METRICS = [("cases", "cases"), ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"), ("exact first line", "exact_line"),
           ("exact full", "exact_full"), ("edit similarity", "edit_sim"), ("empty", "empty"),
           ("errors", "errors")]
KIND_COLS = ["cases", "p50_ms", "p95_ms", "exact_line", "exact_full", "edit_sim", "empty", "errors"]
TYPING_KEYS = ["typing_cases", "requests", "answered", "cancelled", "cancel_sent", "final_p50_ms", "final_p95_ms"]


def side_rows(doc: dict[str, Any]) -> dict[str, Any]:
    """Extra per-run figures beyond the summary: startup, throughput, load, typing counters."""
    meta = doc.get("meta", {})
    sessions = meta.get("sessions") or [{}]
    row = {"startup ms": sessions[0].get("startup_ms"), "engine ready s": meta.get("engine_ready_s"),
           "memory MB (PSS)": meta.get("memory_mb"), "wall s": meta.get("wall_s"),
           "throughput cases/s": meta.get("throughput_cases_per_s"),
           "load avg at start": (meta.get("host", {}).get("load_start") or {}).get("loadavg_1m")}
    typing = doc.get("typing")
    if typing:
        row.update({f"typing {k.removeprefix('typing_')}": typing.get(k) for k in TYPING_KEYS})
        earlier = typing.get("earlier_requests", {})
        row["typing stale_answers"] = earlier.get("answered_after_cancel", 0)
        row["typing unanswered"] = earlier.get("unanswered", 0)
    return row


def report(runs: list[tuple[str, dict[str, Any]]], header: list[str]) -> str:
    names = [name for name, _ in runs]
    out = [*header, "", "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for title, key in METRICS:
        out.append(f"| {title} | " + " | ".join(fmt(key, d["summary"].get(key)) for _, d in runs) + " |")
    extras = [side_rows(d) for _, d in runs]
    for key in dict.fromkeys(k for e in extras for k in e):
        out.append(f"| {key} | " + " | ".join(fmt(key, e.get(key)) for e in extras) + " |")
    out += ["", "By kind:", "", "| kind | run | " + " | ".join(KIND_COLS) + " |",
            "|---" * (len(KIND_COLS) + 2) + "|"]
    kinds = sorted({k for _, d in runs for k in d.get("by_kind", {})})
    for kind in kinds:
        for name, d in runs:
            agg = d.get("by_kind", {}).get(kind)
            if agg:
                out.append(f"| {kind} | {name} | " + " | ".join(fmt(c, agg.get(c)) for c in KIND_COLS) + " |")
    shas = {d.get("meta", {}).get("cases_sha256") for _, d in runs}
    if len(shas) > 1:
        out += ["", "**Warning: the runs used different cases files; they are not comparable.**"]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared-bench", default=str(REPO.parent / "shared" / "bench"),
                    help="the shared harness (default: ../shared/bench from the repository root)")
    ap.add_argument("--bench-home", default=os.environ.get("BENCH_HOME", "/tmp/bench"))
    ap.add_argument("--cases", help=f"cases file (default $BENCH_HOME/{CASES_NAME}, generated if missing)")
    ap.add_argument("--limit", type=int, default=80, help="first N cases (default 80, as in ENVIRONMENT.md)")
    ap.add_argument("--kinds", help="comma list: mid_line,line_start,block")
    ap.add_argument("--mode", choices=list(OURS_MODES), default="single")
    ap.add_argument("--only", choices=["ours", "anchor"])
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request (an error after)")
    ap.add_argument("--model", help="GGUF file for both (default: `nearcode model path` / ours' default)")
    ap.add_argument("--nearcode", default=str(Path(sys.executable).parent / "nearcode"),
                    help="the nearcode command (default: beside this python)")
    ap.add_argument("--wait-idle", type=float, default=60.0, metavar="S",
                    help="wait up to S seconds for idle CPUs before each side (default 60)")
    ap.add_argument("--engine", choices=["auto", "llamacpp", "vllm"],
                    help="ours on this engine: its daemon is started first and timed to ready, its memory measured")
    ap.add_argument("--anchor-label", default="llamacpp-q4")
    ap.add_argument("--results", nargs="+", metavar="JSON", help="only tabulate existing results JSONs")
    return ap.parse_args(argv)


def run_sides(args: argparse.Namespace, header: list[str], stamp: str) -> tuple[list[tuple[str, Any]], bool]:
    """Cases, then the anchor, then ours (one after the other); the results JSONs and success."""
    shared, home = Path(args.shared_bench).resolve(), Path(args.bench_home).resolve()
    if not (shared / "lspbench.py").exists():
        raise BenchError(f"no shared bench at {shared}: pass --shared-bench")
    env, nearcode = {**os.environ, "BENCH_HOME": str(home)}, Path(args.nearcode)
    out_base = str(home / "results") + f"/{{}}-{stamp}{'' if args.mode == 'single' else '-' + args.mode}.json"
    cases, digest = prepare_cases(args, shared, home, env)
    header.append(f"- cases: `{cases}` {digest}, limit {args.limit}" + (f", kinds {args.kinds}" if args.kinds else ""))
    runs: list[tuple[str, Any]] = []
    ok = True
    if args.only != "ours" and args.mode not in ANCHOR_MODES:
        header.append(f"- anchor: not run (llamacpp_infill.py has no {args.mode} replay)")
    elif args.only != "ours":
        out = Path(out_base.format(f"infill-{args.anchor_label}"))
        try:
            model = model_path(args, nearcode)
            header.append(f"- anchor model: `{model}` ({model.stat().st_size:,} bytes), " + " ".join(ANCHOR_ARGS))
            check_idle("anchor", header, args.wait_idle)
            ok = run_anchor(args, shared, cases, model, out, env, header) and out.exists()
        except BenchError as e:
            log(f"error: {e}")
            ok = False
        if out.exists():
            runs.append((f"anchor ({args.anchor_label})", json.loads(out.read_text())))
    if args.only != "anchor":
        check_idle("nearcode", header, args.wait_idle)
        out = Path(out_base.format(f"lsp-nearcode-{args.engine}" if args.engine else "lsp-nearcode"))
        ok = run_ours(args, shared, cases, nearcode, out, env, header) and ok and out.exists()
        if out.exists():
            runs.append(("nearcode", json.loads(out.read_text())))
    return runs, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    COMMANDS.append(shlex.join([sys.executable, *(sys.argv if argv is None else ["bench/compare.py", *argv])]))
    results_dir = Path(args.bench_home).resolve() / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    header = [f"## nearcode vs llama.cpp anchor ({args.mode}, {time.strftime('%Y-%m-%d %H:%M')})", ""]
    runs: list[tuple[str, Any]] = []
    try:
        if args.results:
            docs = [(p, json.loads(Path(p).read_text(encoding="utf-8"))) for p in args.results]
            runs, ok = [(d.get("meta", {}).get("label") or Path(p).stem, d) for p, d in docs], True
        else:
            runs, ok = run_sides(args, header, stamp)
    except BenchError as e:
        log(f"error: {e}")
        ok = False
    if not runs:
        log("no results to compare")
        return 1
    header += ["", "Commands:", "", "```", *COMMANDS, "```"]
    table = report(runs, header)
    md = results_dir / f"compare-{stamp}.md"
    md.write_text(table + "\n", encoding="utf-8")
    print("\n" + table + f"\n\n(written to {md})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
