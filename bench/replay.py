#!/usr/bin/env python3
"""Replay realistic editing sessions against `nearcode lsp --stdio` (issue 6, item 7).

Picks K functions from the local standard library (fixed seed; their text never enters this
repository), removes each body and types it back like a person: characters at a jittered interval,
Enter with auto-indent, a pause at each new line and sometimes mid-line, a typo now and then fixed
with backspace, and Tab when the suggestion on screen is what comes next. Each keystroke is an
incremental didChange plus an automatic inlineCompletion, after $/cancelRequest for the previous
request if unanswered. Each `--editors` count runs against a fresh daemon in its own
NEARCODE_RUNTIME_DIR (N language servers, one daemon), stopped afterwards. See bench/README.md.

  .venv/bin/python bench/replay.py --sessions 12 --editors 1,4
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import contextlib
import json
import math
import os
import random
import re
import shlex
import signal
import string
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemonctl import OwnDaemon
from lspclient import LspClient, Pending, ServerDied

REPO = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "turtledemo", "encodings"}
NEWLINE = re.compile(r"\n *")  # Enter, with the editor's auto-indent: one keystroke
WARMUP_DOC = "def add(a, b):\n    return a + b\n\n\ndef scale(values, factor):\n    "
Counts = collections.Counter[str]


def log(msg: str) -> None:
    print(f"replay: {msg}", file=sys.stderr, flush=True)


@dataclass
class Func:
    path: str  # relative to the stdlib directory
    name: str
    doc: str  # the file without the body; the cursor's line keeps the body's indentation
    cursor: int
    body: str  # what the person types


def pick_functions(k: int, seed: int) -> list[Func]:
    """K functions with 4-15 body lines (after any docstring), one per file, deterministically."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(root).parts))
    random.Random(seed).shuffle(files)
    rng, out = random.Random(seed + 1), list[Func]()
    for path in files:
        if len(out) >= k:
            break
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        if len(text) > 150_000 or "\r" in text or "\t" in text:
            continue
        lines, found = text.split("\n"), []
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                body = node.body[1:] if ast.get_docstring(node, clean=False) is not None else node.body
                start, end = (body[0].lineno - 1, node.end_lineno) if body else (0, 0)
                if (start >= node.lineno and 4 <= end - start <= 15 and not lines[start][: body[0].col_offset].strip()
                        and all(line.isascii() and len(line) <= 100 for line in lines[start:end])):
                    found.append((start, end, node.name))
        if found:
            start, end, name = rng.choice(found)
            indent = " " * (len(lines[start]) - len(lines[start].lstrip(" ")))
            head = "\n".join(lines[:start]) + "\n" + indent
            doc = head + ("\n" + "\n".join(lines[end:]) if lines[end:] else "")
            out.append(Func(str(path.relative_to(root)), name, doc, len(head), "\n".join(lines[start:end])[len(indent):]))
    return out


@dataclass
class Editor:
    """One open document in one editor: edits, automatic requests, what is on screen."""

    lsp: LspClient
    uri: str = ""
    doc: str = ""
    cursor: int = 0
    version: int = 0
    last: Pending | None = None
    counts: Counts = field(default_factory=collections.Counter)

    def pos(self, off: int) -> dict[str, int]:  # ASCII documents: UTF-16 units = characters
        return {"line": self.doc.count("\n", 0, off), "character": off - self.doc.rfind("\n", 0, off) - 1}

    async def open(self, path: Path, text: str, cursor: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.uri, self.doc, self.cursor, self.version, self.last = path.as_uri(), text, cursor, 1, None
        await self.lsp.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": "python", "version": 1, "text": text}})

    async def key(self, text: str, delete: int = 0) -> Pending:
        """Replace `delete` characters before the cursor by `text`, then ask, as an editor does."""
        if self.last is not None and not self.last.fut.done():
            await self.lsp.cancel(self.last)
            self.counts["cancel_sent"] += 1
        start, end = self.pos(self.cursor - delete), self.pos(self.cursor)
        self.doc = self.doc[: self.cursor - delete] + text + self.doc[self.cursor :]
        self.cursor += len(text) - delete
        self.version += 1
        await self.lsp.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": start, "end": end}, "text": text}]})
        return await self.ask()

    async def ask(self) -> Pending:
        self.counts["requests"] += 1
        self.last = await self.lsp.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": self.uri}, "position": self.pos(self.cursor), "context": {"triggerKind": 2}})
        return self.last

    def shown(self, msg: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """The first item's text after the cursor (an item whose range text is not a prefix: nothing)."""
        result = msg.get("result")
        items = result.get("items", []) if isinstance(result, dict) else result or []
        if not items:
            return "", None
        text = items[0].get("insertText", "")
        text = text.get("value", "") if isinstance(text, dict) else text
        if start := (items[0].get("range") or {}).get("start"):
            here = self.pos(self.cursor)
            before = self.doc[self.cursor - here["character"] + start["character"] : self.cursor]
            if start["line"] != here["line"] or not text.startswith(before):
                return "", None
            text = text[len(before) :]
        return text, items[0]


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def matching(sug: str, rest: str) -> str:
    """What Tab takes of `sug` when the person is about to type `rest`: the whole first line when it
    is the next line, else its longest prefix ending on a word boundary of `rest` ('' if none)."""
    first, line = sug.split("\n", 1)[0], rest.split("\n", 1)[0]
    if first.strip() and first == line:
        return first
    n = 0
    while n < min(len(first), len(line)) and first[n] == line[n]:
        n += 1
    while 0 < n < len(line) and _word(line[n - 1]) and _word(line[n]):
        n -= 1
    return first[:n] if any(_word(c) for c in first[:n]) else ""


async def replay(ed: Editor, func: Func, sid: int, args: argparse.Namespace, path: Path) -> list[dict[str, Any]]:
    """Type one function body; one sample per pause."""
    rng, body, samples = random.Random(args.seed * 1000 + sid), func.body, []
    line_starts = {m.end() for m in NEWLINE.finditer(body)}
    points = set(line_starts)  # where bursts end: after each Enter, and sometimes mid-line
    for start in [0, *sorted(line_starts)]:
        spots = [i for i in range(start + 2, body.find("\n", start) % (len(body) + 1) - 2) if body[i - 1] in " (.,[="]
        if spots and rng.random() < args.midline:
            points.add(rng.choice(spots))

    def interval() -> float:
        return float(args.interval_ms) / 1000 * rng.uniform(0.6, 1.4)

    await ed.open(path, func.doc, func.cursor)
    if args.warm:  # been working here: one request at the spot, answered before typing starts
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield((await ed.ask()).fut), 30)
        await asyncio.sleep(1.0)
    await asyncio.sleep(0.3)
    pos = 0
    while pos < len(body):
        stop = min((p for p in points if p > pos), default=len(body))
        while pos < stop:
            unit = m.group() if (m := NEWLINE.match(body, pos)) else body[pos]
            if unit.isalpha() and rng.random() < args.typo_rate:
                await ed.key(rng.choice(string.ascii_lowercase))
                await asyncio.sleep(0.15)
                await ed.key("", delete=1)
                ed.counts["typos"] += 1
                await asyncio.sleep(interval())
            await ed.key(unit)
            pos += len(unit)
            ed.counts["keystrokes"] += 1
            if pos < stop:
                await asyncio.sleep(interval())
        if pos >= len(body) or (req := ed.last) is None:
            break
        pause, sug, item = args.pause_ms / 1000 * rng.uniform(0.8, 1.5), "", None
        sample: dict[str, Any] = {"session": sid, "line": body.count("\n", 0, pos), "pause_ms": round(pause * 1000),
                                  "where": "line_start" if pos in line_starts else "mid_line", "latency_ms": None}
        try:
            msg = await asyncio.wait_for(asyncio.shield(req.fut), max(0.0, req.t_send + pause - time.perf_counter()))
            sug, item = ("", None) if "error" in msg else ed.shown(msg)
            sample["outcome"] = "error" if "error" in msg else "shown" if sug.strip() else "empty"
        except (TimeoutError, ServerDied) as e:
            sample["outcome"] = "late" if isinstance(e, TimeoutError) else "error"
        if sample["outcome"] == "shown" and req.t_recv is not None:
            sample["latency_ms"] = round((req.t_recv - req.t_send) * 1000, 1)
            await ed.lsp.notify("textDocument/didShowCompletion", {"item": item})
        await asyncio.sleep(max(0.0, req.t_send + pause - time.perf_counter()))
        take = matching(sug, body[pos:]) if item is not None else ""
        samples.append({**sample, "suggestion_chars": len(sug), "accepted_chars": len(take)})
        if take and item is not None:  # Tab
            await ed.key(take)
            pos += len(take)
            ed.counts.update(accepts=1, accepted_chars=len(take))
            if take == sug and item.get("command"):  # the whole item: run its command
                cmd = item["command"]
                await ed.lsp.request("workspace/executeCommand", {"command": cmd["command"],
                                                                  "arguments": cmd.get("arguments", [])})
            else:  # a word, or the first line of several (docs/protocol.md)
                await ed.lsp.notify("textDocument/didPartiallyAcceptCompletion", {"item": item, "acceptedLength": len(take)})
            await asyncio.sleep(interval())
    if ed.last is not None:
        with contextlib.suppress(TimeoutError, ServerDied):
            await asyncio.wait_for(asyncio.shield(ed.last.fut), 2.0)
    await ed.lsp.notify("textDocument/didClose", {"textDocument": {"uri": ed.uri}})
    return samples


async def start_editor(idx: int, args: argparse.Namespace, env: dict[str, str], logs: Path, ws: Path,
                       spawned: list[LspClient]) -> Editor:
    lsp = await LspClient.spawn(shlex.split(args.server), env, logs / f"lsp{idx}.stderr.log")
    spawned.append(lsp)
    caps = {"textDocument": {"inlineCompletion": {}, "synchronization": {}}, "workspace": {"configuration": True}}
    await lsp.call("initialize", {"processId": os.getpid(), "rootUri": ws.as_uri(), "capabilities": caps,
                                  "workspaceFolders": [{"uri": ws.as_uri(), "name": "replay"}],
                                  "initializationOptions": json.loads(args.init_options)}, args.init_timeout)
    await lsp.notify("initialized", {})
    ed = Editor(lsp)
    await ed.open(ws / f"warmup{idx}.py", WARMUP_DOC, len(WARMUP_DOC))  # one untimed request: daemon up
    await asyncio.wait_for((await ed.ask()).fut, args.init_timeout)
    await lsp.notify("textDocument/didClose", {"textDocument": {"uri": ed.uri}})
    ed.counts.clear()
    return ed


async def server_counters(eds: list[Editor]) -> Counts:
    """The servers' nearcode.status counters (requested, accepted, served_cache, ...), summed."""
    total: Counts = collections.Counter()
    for ed in eds:
        with contextlib.suppress(Exception):
            st = await ed.lsp.call("workspace/executeCommand", {"command": "nearcode.status", "arguments": []}, 10)
            total.update({k: v for k, v in st.items() if isinstance(v, int) and not isinstance(v, bool)})
            total.update({f"served_{k}": v for k, v in (st.get("served") or {}).items()})
    return total


async def run_phase(n: int, funcs: list[Func], args: argparse.Namespace, daemon: OwnDaemon, logs: Path,
                    ws: Path) -> dict[str, Any]:
    """N editors take the sessions from one queue; all talk to one daemon."""
    spawned = list[LspClient]()
    try:
        eds = list(await asyncio.gather(*(start_editor(i, args, daemon.env, logs, ws, spawned) for i in range(n))))
        return await run_sessions(eds, funcs, args, daemon, ws)
    finally:
        await asyncio.gather(*(lsp.close() for lsp in spawned))


async def run_sessions(eds: list[Editor], funcs: list[Func], args: argparse.Namespace, daemon: OwnDaemon,
                       ws: Path) -> dict[str, Any]:
    n = len(eds)
    srv0, d0 = await server_counters(eds), await asyncio.to_thread(daemon.api_status)
    queue, samples, t0 = collections.deque(enumerate(funcs)), list[dict[str, Any]](), time.perf_counter()

    async def work(i: int, ed: Editor) -> None:
        while queue:
            sid, func = queue.popleft()
            try:
                rows = await replay(ed, func, sid, args, ws / f"e{i}" / f"s{sid}" / func.path)
            except (ServerDied, ConnectionError) as e:
                log(f"editor {i}: {e!r}; it stops here")
                return
            samples.extend({"editor": i, **r} for r in rows)
            seen = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
            log(f"{n} editor(s), #{i}: session {sid} {func.path}:{func.name}: {len(rows)} pauses, "
                f"{len(seen)} shown, p50 {pct(seen, 50)} ms")

    await asyncio.gather(*(work(i, ed) for i, ed in enumerate(eds)))
    wall = time.perf_counter() - t0
    srv, d1 = await server_counters(eds), await asyncio.to_thread(daemon.api_status)
    counts = sum((ed.counts for ed in eds), collections.Counter())
    return summarize(n, samples, counts, srv - srv0, d0, d1, wall)


def pct(xs: list[float], q: float) -> float | None:  # nearest rank
    return sorted(xs)[max(0, math.ceil(q / 100 * len(xs)) - 1)] if xs else None


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def summarize(n: int, samples: list[dict[str, Any]], counts: Counts, srv: Counts, d0: dict[str, Any],
              d1: dict[str, Any], wall: float) -> dict[str, Any]:
    def lat(where: str | None = None) -> list[float]:
        return [s["latency_ms"] for s in samples if s["latency_ms"] is not None and where in (None, s["where"])]

    def dd(key: str) -> int:  # the daemon's counters over the sessions (warm-up excluded)
        return int(d1.get(key) or 0) - int(d0.get(key) or 0)

    req = srv["served_requests"]
    return {
        "editors": n, "sessions": len({s["session"] for s in samples}), "pauses": len(samples),
        **{f"{w or 'all'}_p{q}_ms": pct(lat(w), q) for w in (None, "line_start", "mid_line") for q in (50, 95)},
        "none_rate": ratio(len(samples) - len(lat()), len(samples)),
        "outcomes": dict(collections.Counter(s["outcome"] for s in samples)), **counts,
        "tab_share": ratio(counts["accepted_chars"], counts["keystrokes"] + counts["accepted_chars"]),
        "no_model_share": ratio(req - srv["served_model"], req), "cache_share": ratio(srv["served_cache"], req),
        "joined_share": ratio(srv["served_joined"], req), "server_counters": dict(srv),
        "answered_no_model_share": ratio(srv["served_cache"] + srv["served_joined"], req),
        "daemon_requests": dd("requests"), "cancelled_in_engine": dd("cancelled_in_engine"),
        "evaluated_prompt_tokens_per_request": ratio(dd("prompt_tokens") - dd("cached_tokens"), dd("requests")),
        "tokens_after_cancel_total": dd("tokens_after_cancel_total"),
        "tokens_after_cancel_max": d1.get("tokens_after_cancel_max"),  # since the daemon started
        "daemon_finish_reasons": d1.get("finish_reasons"), "model": d1.get("model"), "wall_s": round(wall, 1),
        "samples": samples,
    }


def fmt(v: Any, share: bool = False) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%" if share else f"{v:g}" if isinstance(v, float) else str(v)


ROWS: list[tuple[str, Any]] = [
    ("sessions / pauses", lambda p: f"{p['sessions']} / {p['pauses']}"),
    ("burst end → suggestion p50 / p95 ms", lambda p: f"{fmt(p['all_p50_ms'])} / {fmt(p['all_p95_ms'])}"),
    ("  at a line start", lambda p: f"{fmt(p['line_start_p50_ms'])} / {fmt(p['line_start_p95_ms'])}"),
    ("  mid-line", lambda p: f"{fmt(p['mid_line_p50_ms'])} / {fmt(p['mid_line_p95_ms'])}"),
    ("no suggestion within the pause", lambda p: fmt(p["none_rate"], True)),
    ("  empty / late / error", lambda p: " / ".join(str(p["outcomes"].get(k, 0)) for k in ("empty", "late", "error"))),
    ("requests / cancels sent", lambda p: f"{p.get('requests', 0)} / {p.get('cancel_sent', 0)}"),
    ("answered without a model call (cache + joined)", lambda p: fmt(p["answered_no_model_share"], True)),
    ("  typing cache / joined in-flight", lambda p: f"{fmt(p['cache_share'], True)} / {fmt(p['joined_share'], True)}"),
    ("no model call started (also: cancelled first)", lambda p: fmt(p["no_model_share"], True)),
    ("chars accepted by Tab / chars entered", lambda p: fmt(p["tab_share"], True)),
    ("Tab accepts (server: whole / partial)", lambda p: f"{p.get('accepts', 0)} ({p['server_counters'].get('accepted', 0)}"
                                                         f" / {p['server_counters'].get('partiallyAccepted', 0)})"),
    ("daemon requests / cancelled in engine", lambda p: f"{p['daemon_requests']} / {p['cancelled_in_engine']}"),
    ("prompt tokens evaluated per model request", lambda p: fmt(p["evaluated_prompt_tokens_per_request"])),
    ("tokens after cancel: total / max", lambda p: f"{p['tokens_after_cancel_total']} / {fmt(p['tokens_after_cancel_max'])}"),
    ("wall s", lambda p: fmt(p["wall_s"])),
]


def report(phases: list[dict[str, Any]], header: list[str]) -> str:
    out = [*header, "", "| metric | " + " | ".join(f"{p['editors']} editor(s)" for p in phases) + " |",
           "|---" * (len(phases) + 1) + "|"]
    out += [f"| {title} | " + " | ".join(row(p) for p in phases) + " |" for title, row in ROWS]
    if one := next((p for p in phases if p["editors"] == 1 and p["all_p95_ms"]), None):
        out.append("| p95 / 1-editor p95 | " + " | ".join(fmt(ratio(p["all_p95_ms"] or 0, one["all_p95_ms"]))
                                                         for p in phases) + " |")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    venv = REPO / ".venv" / "bin" / "nearcode"
    ap.add_argument("--server", default=shlex.join([str(venv), "lsp", "--stdio"]), help="language server command")
    ap.add_argument("--nearcode", default=str(venv), help="the nearcode command, for `stop`")
    ap.add_argument("--sessions", type=int, default=12, help="functions to type (default 12)")
    ap.add_argument("--editors", default="1", help="comma list of editor counts, e.g. 1,4 (a fresh daemon each)")
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--interval-ms", type=float, default=70.0, help="per character (×0.6-1.4)")
    ap.add_argument("--pause-ms", type=float, default=700.0, help="pause after a burst (×0.8-1.5)")
    ap.add_argument("--midline", type=float, default=0.3, help="chance of a mid-line pause per line")
    ap.add_argument("--typo-rate", type=float, default=0.02, help="chance of a typo per letter")
    ap.add_argument("--warm", action="store_true",
                    help="one untimed request at the cursor after opening, answered before typing (steady state)")
    ap.add_argument("--init-options", default="{}", help="the servers' initializationOptions (settings), JSON")
    ap.add_argument("--init-timeout", type=float, default=180.0, help="seconds for initialize and the warm-up")
    ap.add_argument("--bench-home", default=os.environ.get("BENCH_HOME", "/tmp/bench"))
    return ap.parse_args(argv)


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM as Ctrl-C: the phase's `finally` stops its daemon. Killed outright, the replay left
    it running (a daemon started by a language server has a session of its own)."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args, load0 = parse_args(argv), os.getloadavg()[0]
    if load0 > 0.5:
        log(f"WARNING: load average {load0:.2f}: other work inflates latencies (the machine has {os.cpu_count()} CPUs)")
    funcs = pick_functions(args.sessions, args.seed)
    log(f"{len(funcs)} functions: " + ", ".join(f"{fn.path}:{fn.name}" for fn in funcs))
    results, stamp = Path(args.bench_home).resolve() / "results", time.strftime("%Y%m%d-%H%M%S")
    phases, counts = [], [int(x) for x in args.editors.split(",")]
    for n in counts:
        daemon = OwnDaemon.fresh(Path(args.nearcode))
        (logs := results / f"replay-{stamp}-logs" / f"editors{n}").mkdir(parents=True, exist_ok=True)
        phase = None
        try:
            phase = asyncio.run(run_phase(n, funcs, args, daemon, logs, daemon.base / "ws"))
        except (OSError, RuntimeError, TimeoutError, ServerDied) as e:
            log(f"error with {n} editor(s): {e!r}")
        finally:
            note = daemon.stop(keep_log=logs / "daemon.log")
            log(note)
        if phase is not None:
            phases.append({**phase, "daemon_stop": note})
    if not phases:
        log("no results")
        return 1
    cmd = shlex.join([sys.executable, *(sys.argv if argv is None else ["bench/replay.py", *argv])])
    header = [f"## nearcode editing-session replay ({time.strftime('%Y-%m-%d %H:%M')}, model {phases[0]['model']})",
              "", f"- {len(funcs)} stdlib functions (Python {sys.version.split()[0]}, seed {args.seed}), "
              f"{args.interval_ms:g} ms/char, pauses {args.pause_ms:g} ms ×0.8-1.5, mid-line pauses "
              f"{args.midline:g}/line, typos {args.typo_rate:g}/letter{', warm start' if args.warm else ''}; load avg {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
              "- " + "; ".join(p["daemon_stop"] for p in phases), f"- command: `{cmd}`"]
    table = report(phases, header)
    (results / f"replay-{stamp}.md").write_text(table + "\n", encoding="utf-8")
    meta = {"args": vars(args), "command": cmd, "functions": [
        {"path": fn.path, "name": fn.name, "body_chars": len(fn.body), "body_lines": fn.body.count("\n") + 1}
        for fn in funcs]}
    (results / f"replay-{stamp}.json").write_text(json.dumps({"meta": meta, "phases": phases}, indent=1) + "\n")
    line = " | ".join(f"editors={p['editors']} pauses={p['pauses']} p50_ms={fmt(p['all_p50_ms'])} "
                      f"p95_ms={fmt(p['all_p95_ms'])} none={fmt(p['none_rate'], True)} "
                      f"no_model={fmt(p['answered_no_model_share'], True)} tab={fmt(p['tab_share'], True)} "
                      f"eval_tokens={fmt(p['evaluated_prompt_tokens_per_request'])} "
                      f"after_cancel_max={fmt(p['tokens_after_cancel_max'])}" for p in phases)
    print(f"\n{table}\n\n(written to {results}/replay-{stamp}.md and .json)\nreplay: {line}")
    return 0 if len(phases) == len(counts) else 1


if __name__ == "__main__":
    sys.exit(main())
