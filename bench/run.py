#!/usr/bin/env python3
"""Drive `nearcode lsp --stdio` over a cases file like an editor, and score it (see bench/README.md).

Per case: the file is written under the workspace folder, didOpen, textDocument/inlineCompletion
(triggerKind Automatic), didClose. The language servers get a fresh NEARCODE_RUNTIME_DIR, so they
start a daemon of the run's own (stopped at the end with `nearcode stop`).

  .venv/bin/python bench/run.py --limit 80                                     # single requests
  .venv/bin/python bench/run.py --typing-warm                                  # typing, warm start
  .venv/bin/python bench/run.py --cases /tmp/bench/xcases-val.jsonl --workspace --settle 3
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemonctl import OwnDaemon, log
from hostload import OthersMeter
from lspclient import REQUEST_CANCELLED, LspClient, Pending, ServerDied
from results import BENCH_HOME, file_sha256, load_cases, stamp, write_results
from scoring import CaseResult, offset_of, position_of, summary_line, utf16_len

INLINE = "textDocument/inlineCompletion"
AUTOMATIC = 2  # InlineCompletionTriggerKind.Automatic
# The warm-up document: ours, never a case (it loads the model and fills caches before scoring).
WARMUP_TEXT = "import json\n\n\ndef load_settings(path):\n    with open(path, encoding=\"utf-8\") as f:\n        return "


def json_arg(value: str | None) -> Any:
    """A JSON value, or @FILE holding one."""
    if value is None:
        return None
    return json.loads(Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value)


def snippet_text(snippet: str) -> str:
    """An LSP snippet's plain text: placeholders keep their default, tab stops vanish."""
    text = re.sub(r"\$\{\d+:([^}]*)\}", r"\1", snippet)
    text = re.sub(r"\$\{\d+\}|\$\d+", "", text)
    return re.sub(r"\\([$}\\])", r"\1", text)


def inserted_text(result: Any, doc: str, cursor: int) -> tuple[str, str | None]:
    """What the editor would insert at the cursor from an inline completion answer, and a note
    (`range_mismatch` when the item's range repeats text that is not before the cursor)."""
    items = result.get("items", []) if isinstance(result, dict) else result or []
    if not items:
        return "", None
    text = items[0].get("insertText", "")
    if isinstance(text, dict):
        text = snippet_text(text.get("value", ""))
    if span := items[0].get("range"):
        start = offset_of(doc, span["start"]["line"], span["start"]["character"])
        if start > cursor or not text.startswith(doc[start:cursor]):
            return "", "range_mismatch"
        text = text[cursor - start:]
    return text, None


@dataclass
class Options:
    cases: Path
    out: Path
    server: list[str]
    nearcode: Path
    label: str
    timeout: float
    open_pause: float
    typing: bool
    typing_warm: bool
    typing_chars: int
    typing_interval_ms: float
    warm_pause: float
    workspace: bool
    settle: float
    concurrency: int
    warmup: int
    init_options: Any
    settings: Any
    init_timeout: float
    mode: str
    limit: int | None
    kinds: str | None  # comma list; typing modes: --typing-kinds


@dataclass
class Editor:
    """One language-server process, driven the way an editor drives it."""

    client: LspClient
    root: Path
    startup_ms: float
    version: int = 0
    typing: collections.Counter[str] = field(default_factory=collections.Counter)

    @classmethod
    async def start(cls, opts: Options, env: dict[str, str], root: Path, stderr: Path) -> Editor:
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        client = await LspClient.spawn(opts.server, env, stderr, settings=opts.settings)
        client.workspace_folders = [{"uri": root.as_uri(), "name": root.name}]
        caps = {"textDocument": {"inlineCompletion": {"dynamicRegistration": True}, "synchronization": {}},
                "workspace": {"configuration": True, "workspaceFolders": True}, "window": {"workDoneProgress": True},
                "general": {"positionEncodings": ["utf-16"]}}
        try:
            answer = await client.call("initialize", {
                "processId": None, "clientInfo": {"name": "nearcode-bench"}, "rootUri": root.as_uri(),
                "rootPath": str(root), "workspaceFolders": client.workspace_folders, "capabilities": caps,
                "initializationOptions": opts.init_options}, opts.init_timeout)
            await client.notify("initialized", {})
            if opts.settings is not None:
                await client.notify("workspace/didChangeConfiguration", {"settings": opts.settings})
        except BaseException:
            await client.close(2)
            raise
        editor = cls(client, root, round((time.perf_counter() - started) * 1000, 1))
        if "inlineCompletionProvider" not in ((answer or {}).get("capabilities") or {}):
            await asyncio.sleep(1)  # it may register the feature dynamically
            if INLINE not in client.registered:
                await client.close(2)
                raise RuntimeError("the server offers no textDocument/inlineCompletion")
        return editor

    async def open(self, path: Path, text: str) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")  # servers may read the folder: the file is there
        self.version = 1
        await self.client.notify("textDocument/didOpen", {"textDocument": {
            "uri": path.as_uri(), "languageId": "python", "version": 1, "text": text}})
        return path.as_uri()

    async def ask(self, uri: str, doc: str, cursor: int) -> Pending:
        return await self.client.request(INLINE, {"textDocument": {"uri": uri}, "position": position_of(doc, cursor),
                                                  "context": {"triggerKind": AUTOMATIC}})

    async def type_char(self, uri: str, doc: str, cursor: int, char: str) -> None:
        self.version += 1
        here = position_of(doc, cursor)
        await self.client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": self.version},
                                                            "contentChanges": [{"range": {"start": here, "end": here},
                                                                                "text": char}]})


async def answer(ed: Editor, request: Pending, opts: Options, case: dict[str, Any], doc: str, cursor: int,
                 truth: str | None = None, **extra: Any) -> CaseResult:
    """Wait for `request` and score it (a timeout cancels it and counts as an error)."""
    try:
        message = await asyncio.wait_for(asyncio.shield(request.fut), opts.timeout)
    except TimeoutError:
        await ed.client.cancel(request)
        return CaseResult.finished(case, "error", truth=truth, error_kind="timeout",
                                   error=f"no answer in {opts.timeout:g} s", **extra)
    if "error" in message:
        return CaseResult.finished(case, "error", truth=truth, error_kind="rpc", error=json.dumps(message["error"]),
                                   latency_ms=request.latency_ms, **extra)
    text, note = inserted_text(message.get("result"), doc, cursor)
    return CaseResult.finished(case, "ok" if text.strip() else "empty", text, truth, latency_ms=request.latency_ms,
                               note=note, **extra)


async def single_case(ed: Editor, case: dict[str, Any], opts: Options, path: Path) -> CaseResult:
    doc = case["text"]
    cursor = offset_of(doc, case["cursor"]["line"], case["cursor"]["character"])
    uri = await ed.open(path, doc)
    try:
        if opts.open_pause:
            await asyncio.sleep(opts.open_pause)
        return await answer(ed, await ed.ask(uri, doc, cursor), opts, case, doc, cursor)
    finally:
        with contextlib.suppress(ServerDied):
            await ed.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


async def typing_case(ed: Editor, case: dict[str, Any], opts: Options, path: Path) -> CaseResult | None:
    """Type the truth's first characters one by one; the last request is the case's result."""
    first_line = case["ground_truth"].split("\n", 1)[0]
    typed = first_line[: min(opts.typing_chars, len(first_line) - 2)]
    if not typed:
        return None
    doc = case["text"]
    cursor = offset_of(doc, case["cursor"]["line"], case["cursor"]["character"])
    uri = await ed.open(path, doc)
    requests: list[Pending] = []
    try:
        if opts.typing_warm:  # been working at this spot: one untimed request, answered first
            warm = await ed.ask(uri, doc, cursor)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(warm.fut), opts.timeout)
            await ed.client.cancel(warm)
            await asyncio.sleep(opts.warm_pause)
        started = time.perf_counter()
        for index, char in enumerate(typed):
            await asyncio.sleep(max(0.0, started + index * opts.typing_interval_ms / 1000 - time.perf_counter()))
            if requests:
                await ed.client.cancel(requests[-1])
            await ed.type_char(uri, doc, cursor, char)
            doc, cursor = doc[:cursor] + char + doc[cursor:], cursor + len(char)
            requests.append(await ed.ask(uri, doc, cursor))
        result = await answer(ed, requests[-1], opts, case, doc, cursor, case["ground_truth"][len(typed):],
                              detail={"typed": typed, "requests": len(requests)})
        earlier = [r.fut for r in requests[:-1] if not r.fut.done()]
        if earlier:  # a cancelled request still owes an answer
            await asyncio.wait(earlier, timeout=2.0)
        for request in requests[:-1]:
            ed.typing[_earlier_outcome(request)] += 1
        ed.typing.update(requests=len(requests), cancel_sent=sum(r.cancel_sent for r in requests))
        return result
    finally:
        with contextlib.suppress(ServerDied):
            await ed.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def _earlier_outcome(request: Pending) -> str:
    if not request.fut.done() or request.fut.exception() is not None:
        return "unanswered"
    error = request.fut.result().get("error")
    if error:
        return "cancelled" if error.get("code") == REQUEST_CANCELLED else "error"
    return "answered_after_cancel" if request.cancel_sent else "answered"


async def warm_up(ed: Editor, opts: Options) -> list[float | None]:
    """Untimed requests on our own document: the daemon starts, the model loads."""
    case = {"id": "warmup", "kind": "warmup", "source": "warmup", "path": "warmup.py", "ground_truth": "json.load(f)",
            "text": WARMUP_TEXT, "cursor": {"line": 5, "character": utf16_len(WARMUP_TEXT.rsplit("\n", 1)[1])}}
    slow = Options(**{**vars(opts), "timeout": max(opts.timeout, opts.init_timeout), "open_pause": 0})
    return [(await single_case(ed, case, slow, ed.root / "warmup" / "warmup.py")).latency_ms
            for _ in range(opts.warmup)]


def build_workspace(case: dict[str, Any], dest: Path) -> None:
    """A copy of the case's package (source files only) with the case file masked: the truth is
    nowhere in the folder the server sees."""
    workspace = case.get("workspace") or {}
    source = Path(workspace.get("root", "/nonexistent")) / workspace.get("package", "")
    if workspace and source.is_dir():
        shutil.copytree(source, dest / workspace["package"], ignore=lambda folder, names: [
            n for n in names if n == "__pycache__" or (Path(folder, n).is_file()
                                                      and not n.endswith((".py", ".pyi")) and n != "py.typed")])
    (dest / case["path"]).parent.mkdir(parents=True, exist_ok=True)
    (dest / case["path"]).write_text(case["text"], encoding="utf-8")


@dataclass
class Run:
    opts: Options
    env: dict[str, str]
    tmp: Path
    queue: collections.deque[dict[str, Any]]
    results: list[CaseResult] = field(default_factory=list)
    editors: list[Editor] = field(default_factory=list)
    warmup_ms: list[float | None] = field(default_factory=list)

    def stderr(self, worker: int) -> Path:
        return self.opts.out.with_name(f"{self.opts.out.stem}.server{worker}.stderr.log")

    def failed(self, case: dict[str, Any], exc: BaseException) -> CaseResult:
        kind = "crash" if isinstance(exc, ServerDied) else "server"
        return CaseResult.finished(case, "error", error_kind=kind, error=repr(exc))

    async def worker(self, index: int) -> None:
        """One editor (server process) taking cases from the shared queue."""
        root = self.tmp / f"w{index}"
        ed = await Editor.start(self.opts, self.env, root, self.stderr(index))
        self.editors.append(ed)
        try:
            self.warmup_ms += await warm_up(ed, self.opts)
            while self.queue:
                case = self.queue.popleft()
                path = root / case["id"] / case["path"]
                try:
                    run_one = typing_case if self.opts.typing else single_case
                    result = await run_one(ed, case, self.opts, path)
                except (ServerDied, OSError) as exc:
                    result = self.failed(case, exc)
                    if ed.client.dead:  # a crashed server: the next one picks up the queue
                        ed = await Editor.start(self.opts, self.env, root, self.stderr(index))
                        self.editors.append(ed)
                finally:
                    shutil.rmtree(root / case["id"], ignore_errors=True)
                if result is not None:
                    self._done(result)
        finally:
            await ed.client.close()

    async def workspace_worker(self, index: int) -> None:
        """--workspace: each case in a fresh server opened on a copy of the case's package."""
        warm = await Editor.start(self.opts, self.env, self.tmp / f"warm{index}", self.stderr(index))
        try:
            self.warmup_ms += await warm_up(warm, self.opts)
        finally:
            await warm.client.close()
        while self.queue:
            case = self.queue.popleft()
            root = self.tmp / f"ws-{case['id']}"
            build_workspace(case, root)
            try:
                ed = await Editor.start(self.opts, self.env, root, self.stderr(index))
                self.editors.append(ed)
                try:
                    await asyncio.sleep(self.opts.settle)  # the editor's first seconds in the project
                    self._done(await single_case(ed, case, self.opts, root / case["path"]))
                finally:
                    await ed.client.close()
            except (ServerDied, RuntimeError, OSError, TimeoutError) as exc:
                self._done(self.failed(case, exc))
            finally:
                shutil.rmtree(root, ignore_errors=True)

    def _done(self, result: CaseResult) -> None:
        self.results.append(result)
        log(f"{len(self.results)} {result.id} {result.status} {result.latency_ms} ms {result.suggestion[:50]!r}")

    async def all(self) -> None:
        work = self.workspace_worker if self.opts.workspace else self.worker
        await asyncio.gather(*(work(i) for i in range(self.opts.concurrency)))


def parse_args(argv: list[str] | None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    nearcode = Path(sys.executable).parent / "nearcode"
    ap.add_argument("--cases", type=Path, default=BENCH_HOME / "cases-val.jsonl")
    ap.add_argument("--limit", type=int, help="the first N cases")
    ap.add_argument("--kinds", help="comma list of mid_line, line_start, block")
    ap.add_argument("--server", default=f"{shlex.quote(str(nearcode))} lsp --stdio", help="language server command")
    ap.add_argument("--nearcode", type=Path, default=nearcode, help="for `status` and `stop` (default: beside python)")
    ap.add_argument("--label", default="nearcode")
    ap.add_argument("--out", type=Path, help="results JSON (default $BENCH_HOME/results/run-<label>-<time>.json)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request; later is an error")
    ap.add_argument("--open-pause", type=float, default=0.0, metavar="S", help="ask S seconds after didOpen")
    ap.add_argument("--typing", action="store_true", help="type the truth's first characters, score the last")
    ap.add_argument("--typing-warm", action="store_true", help="--typing after one answered request at the cursor")
    ap.add_argument("--typing-chars", type=int, default=6)
    ap.add_argument("--typing-interval-ms", type=float, default=60.0)
    ap.add_argument("--typing-kinds", default="mid_line", help="the cases typing modes use")
    ap.add_argument("--warm-pause", type=float, default=1.0, help="--typing-warm: seconds after the warm answer")
    ap.add_argument("--workspace", action="store_true", help="each case in a fresh server on a copy of its package")
    ap.add_argument("--settle", type=float, default=3.0, help="--workspace: seconds from initialized to didOpen")
    ap.add_argument("--concurrency", type=int, default=1, help="server processes (one daemon) sharing the queue")
    ap.add_argument("--warmup", type=int, default=2, help="untimed requests per server before the cases")
    ap.add_argument("--init-options", help="initializationOptions: JSON or @FILE")
    ap.add_argument("--settings", help="didChangeConfiguration / workspace/configuration: JSON or @FILE")
    ap.add_argument("--init-timeout", type=float, default=180.0, help="seconds for initialize and the warm-up")
    a = ap.parse_args(argv)
    a.typing = a.typing or a.typing_warm
    mode = ("workspace" if a.workspace else "typing-warm" if a.typing_warm else "typing" if a.typing
            else f"open-pause {a.open_pause:g}s" if a.open_pause else "single")
    if a.concurrency > 1:
        mode += f", concurrency {a.concurrency}"
    out = a.out or BENCH_HOME / "results" / f"run-{a.label}-{stamp()}.json"
    return Options(
        cases=a.cases, out=out, server=shlex.split(a.server), nearcode=a.nearcode, label=a.label, timeout=a.timeout,
        open_pause=a.open_pause, typing=a.typing, typing_warm=a.typing_warm, typing_chars=a.typing_chars,
        typing_interval_ms=a.typing_interval_ms, warm_pause=a.warm_pause, workspace=a.workspace, settle=a.settle,
        concurrency=a.concurrency, warmup=a.warmup, init_options=json_arg(a.init_options),
        settings=json_arg(a.settings), init_timeout=a.init_timeout, mode=mode, limit=a.limit,
        kinds=a.typing_kinds if a.typing else a.kinds)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    cases = load_cases(opts.cases, None if opts.typing else opts.limit, opts.kinds)
    if opts.typing:  # typed characters need a first line of 3 or more
        cases = [c for c in cases if len(c["ground_truth"].split("\n", 1)[0]) >= 3][: opts.limit or None]
    if not cases:
        log(f"no cases in {opts.cases}")
        return 2
    daemon = OwnDaemon.fresh(opts.nearcode)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_HOME))
    run = Run(opts, daemon.env, tmp, collections.deque(cases))
    meter, started = OthersMeter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    notes = []
    try:
        asyncio.run(run.all())
    except (RuntimeError, OSError, TimeoutError) as exc:
        log(f"error: {exc!r}")
        notes.append(f"run stopped early: {exc!r}")
    finally:
        host = meter.report([pid] if (pid := daemon.pid()) else [])
        status = daemon.status_text()
        notes += [host.note(), f"`nearcode status` after the run: {status}",
                  daemon.stop(keep_log=opts.out.with_suffix(".daemon.log"))]
        shutil.rmtree(tmp, ignore_errors=True)
    done = {r.id for r in run.results}  # cases a failed start left undone count as errors
    run.results += [CaseResult.finished(c, "error", error_kind="not_run") for c in cases if c["id"] not in done]
    order = {c["id"]: i for i, c in enumerate(cases)}
    results = sorted(run.results, key=lambda r: order[r.id])
    typing = sum((ed.typing for ed in run.editors), collections.Counter())
    meta = {"tool": "bench/run.py", "label": opts.label, "mode": opts.mode, "server": shlex.join(opts.server),
            "cases_file": str(opts.cases), "cases_sha256": file_sha256(opts.cases), "started": started,
            "wall_s": host.wall_s, "timeout_s": opts.timeout, "init_options": opts.init_options,
            "settings": opts.settings, "warmup_ms": run.warmup_ms, "host": vars(host), "nearcode_status": status,
            "startup_ms": run.editors[0].startup_ms if run.editors else None, "notes": notes,
            "command": shlex.join([sys.executable, *(sys.argv if argv is None else ["bench/run.py", *argv])])}
    doc = write_results(opts.out, meta, results, {"typing": dict(typing)} if opts.typing else None)
    for note in notes:
        log(note)
    print(f"results: {opts.out} (and .md)")
    print(summary_line(doc["summary"]) + f" mode={opts.mode.replace(' ', '')}")
    return 0 if len(done) == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
