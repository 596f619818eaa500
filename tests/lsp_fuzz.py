"""A fuzzer for `nearcode lsp`: random but valid LSP sessions plus malformed JSON-RPC frames, against
the real server and daemon. It keeps its own copy of every document (an implementation of LSP's
rules written independently of the server's: its own line splitting, UTF-16 through Python's
codec) and compares the server's copy (`nearcode.debugDocument`, on with NEARCODE_DEBUG_COMMANDS=1)
after every step.

Sessions: opens (several languages), incremental edits with multi-byte and astral text, CRLF, lone
CR and the characters str.splitlines also breaks at (form feed, \\x85, U+2028, ...), whole-document
changes, the odd lone surrogate, completions at random and invalid positions, cancels, code-action
requests, closes (and changes to closed documents), and malformed frames. Findings: server
crashes, document mismatches, internal errors (-32603), invalid-params for valid input, requests
never answered. Goal: all zero.

  .venv/bin/python -m tests.lsp_fuzz --steps 3000 --seed 7     (make fuzz; starts its own daemon)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fuzz_text import MALFORMED, Mirror, random_text
from tests.lsp_wire import ServerGone, WireClient
from tests.support import NEARCODE, env_for, new_runtime_dir, start_daemon, stop_daemon

INTERNAL_ERROR, INVALID_PARAMS, CANCELLED, METHOD_NOT_FOUND = -32603, -32602, -32800, -32601
LANGUAGES = {"python": "py", "javascript": "js", "go": "go", "plaintext": "txt"}
STEPS = {  # relative weights
    "open": 8, "change": 30, "full_change": 3, "complete": 14, "complete_invalid": 6, "cancel": 6,
    "code_action": 8, "close": 4, "change_closed": 2, "malformed": 8, "status": 2,
}


@dataclass
class Findings:
    steps: int = 0
    crashes: int = 0
    mismatches: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    wrongly_refused: list[str] = field(default_factory=list)  # invalid-params for valid input
    unanswered: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # by request kind and outcome
    step_kinds: Counter[str] = field(default_factory=Counter)
    messages_sent: int = 0
    errors_shown: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.crashes or self.mismatches or self.internal_errors or self.wrongly_refused or self.unanswered)

    def report(self) -> dict[str, Any]:
        return {
            "steps": self.steps, "messages_sent": self.messages_sent, "server_crashes": self.crashes,
            "document_mismatches": len(self.mismatches), "internal_errors": len(self.internal_errors),
            "invalid_params_for_valid_input": len(self.wrongly_refused), "unanswered_requests": self.unanswered,
            "errors_shown_to_user": len(self.errors_shown), "step_kinds": dict(self.step_kinds),
            "answers": dict(sorted(self.answers.items())),
            "examples": (self.mismatches + self.internal_errors + self.wrongly_refused)[:5],
            "errors_shown_examples": self.errors_shown[:3],
        }


@dataclass
class Expectation:
    kind: str
    valid: bool  # the input names a real place: an invalid-params answer is a finding


class Fuzzer:
    def __init__(self, env: dict[str, str], seed: int, logs: Path) -> None:
        self.env = {**env, "NEARCODE_DEBUG_COMMANDS": "1"}
        self.rng = random.Random(seed)
        self.logs = logs
        self.findings = Findings()
        self.docs: dict[str, Mirror] = {}
        self.closed: list[str] = []
        self.client: WireClient | None = None
        self.inflight: list[tuple[Expectation, Any, asyncio.Future[dict[str, Any]]]] = []
        self.serial = 0

    async def start(self) -> WireClient:
        client = await WireClient.spawn([*NEARCODE, "lsp", "--stdio"], self.env, self.logs / "fuzz-lsp.stderr.log")
        capabilities = {
            "general": {"positionEncodings": ["utf-8", "utf-16"]},  # like Neovim: the server must pick UTF-16
            "textDocument": {"synchronization": {}, "inlineCompletion": {}, "codeAction": {}},
            "window": {"workDoneProgress": True}, "workspace": {"applyEdit": True, "configuration": True},
        }
        answer = await client.call("initialize", {"processId": None, "rootUri": "file:///tmp", "capabilities": capabilities}, 120)
        encoding = answer["result"]["capabilities"].get("positionEncoding", "utf-16")
        assert encoding == "utf-16", f"the server chose {encoding}"
        await client.notify("initialized", {})
        self.client, self.docs, self.closed = client, {}, []  # a restarted server knows no documents
        return client

    async def run(self, steps: int) -> Findings:
        client = await self.start()
        kinds, weights = list(STEPS), list(STEPS.values())
        for _ in range(steps):
            kind = self.rng.choices(kinds, weights)[0]
            self.findings.step_kinds[kind] += 1
            self.findings.steps += 1
            try:
                touched = await getattr(self, f"_{kind}")(client)
                for uri in touched:
                    await self._check(client, uri)
            except (ServerGone, TimeoutError) as exc:
                self.findings.messages_sent += client.sent
                if client.alive and isinstance(exc, TimeoutError):
                    self.findings.unanswered += 1  # a debug check that never came back
                    continue
                self.findings.crashes += 1
                await client.close()
                client = await self.start()
        await self._settle(client)
        self.findings.messages_sent += client.sent
        self.findings.errors_shown = list(client.shown_errors)
        await client.close()
        return self.findings

    # -- steps; each returns the documents whose copy it changed ------------------------------
    async def _open(self, client: WireClient) -> list[str]:
        language = self.rng.choice(list(LANGUAGES))
        self.serial += 1
        uri = f"file:///tmp/nc-fuzz/doc{self.serial}.{LANGUAGES[language]}"
        if self.closed and self.rng.random() < 0.2:
            uri = self.closed.pop(self.rng.randrange(len(self.closed)))  # reopened
        mirror = Mirror(uri, language, random_text(self.rng, 120), 1)
        self.docs[uri] = mirror
        await client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": language, "version": 1, "text": mirror.text}})
        return [uri]

    def _some_doc(self) -> Mirror | None:
        return self.docs[self.rng.choice(list(self.docs))] if self.docs else None

    async def _change(self, client: WireClient) -> list[str]:
        mirror = self._some_doc()
        if mirror is None:
            return await self._open(client)
        changes = []
        for _ in range(self.rng.choice([1, 1, 1, 2, 3])):
            start, end = mirror.random_range(self.rng)
            text = random_text(self.rng, 6)
            mirror.apply(start, end, text)
            changes.append({"range": {"start": start, "end": end}, "text": text})
        mirror.version += 1
        await client.notify("textDocument/didChange", {
            "textDocument": {"uri": mirror.uri, "version": mirror.version}, "contentChanges": changes})
        return [mirror.uri]

    async def _full_change(self, client: WireClient) -> list[str]:
        mirror = self._some_doc()
        if mirror is None:
            return []
        mirror.text, mirror.version = random_text(self.rng, 80), mirror.version + 1
        await client.notify("textDocument/didChange", {
            "textDocument": {"uri": mirror.uri, "version": mirror.version}, "contentChanges": [{"text": mirror.text}]})
        return [mirror.uri]

    async def _complete(self, client: WireClient) -> list[str]:
        mirror = self._some_doc()
        if mirror is None:
            return []
        line, character = mirror.random_position(self.rng)
        valid = not mirror.has_lone_surrogate()
        await self._ask(client, "completion", valid, "textDocument/inlineCompletion", {
            "textDocument": {"uri": mirror.uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": self.rng.choice([1, 2])}})
        return []

    async def _complete_invalid(self, client: WireClient) -> list[str]:
        mirror = self._some_doc()
        if mirror is None:
            return []
        position = mirror.invalid_position(self.rng)
        await self._ask(client, "completion_invalid", False, "textDocument/inlineCompletion", {
            "textDocument": {"uri": mirror.uri}, "position": position, "context": {"triggerKind": 1}})
        return []

    async def _code_action(self, client: WireClient) -> list[str]:
        mirror = self._some_doc()
        if mirror is None:
            return []
        start, end = mirror.random_range(self.rng)
        await self._ask(client, "code_action", not mirror.has_lone_surrogate(), "textDocument/codeAction", {
            "textDocument": {"uri": mirror.uri}, "range": {"start": start, "end": end}, "context": {"diagnostics": []}})
        return []

    async def _cancel(self, client: WireClient) -> list[str]:
        open_requests = [msg_id for _, msg_id, future in self.inflight if not future.done()]
        target = self.rng.choice(open_requests) if open_requests and self.rng.random() < 0.8 else 10**9
        await client.notify("$/cancelRequest", {"id": target})
        return []

    async def _close(self, client: WireClient) -> list[str]:
        mirror = self._some_doc()
        if mirror is None:
            return []
        del self.docs[mirror.uri]
        if mirror.uri not in self.closed:
            self.closed.append(mirror.uri)
        await client.notify("textDocument/didClose", {"textDocument": {"uri": mirror.uri}})
        return [mirror.uri]

    async def _change_closed(self, client: WireClient) -> list[str]:
        uri = self.rng.choice(self.closed) if self.closed else "file:///tmp/nc-fuzz/never-opened.py"
        await client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 99}, "contentChanges": [
            {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "x"}]})
        return [uri]  # the server must have dropped it: the document is not open

    async def _status(self, client: WireClient) -> list[str]:
        await self._ask(client, "status", True, "workspace/executeCommand", {"command": "nearcode.status"})
        return []

    async def _malformed(self, client: WireClient) -> list[str]:
        name, frame, answered = self.rng.choice(MALFORMED)
        self.serial += 1
        msg_id = f"malformed-{self.serial}"
        if answered:  # a request the server must answer (with an error) under its own id
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            client.pending[msg_id] = future
            self.inflight.append((Expectation(f"malformed:{name}", False), msg_id, future))
        await client.write_frame(frame.replace(b"$ID", json.dumps(msg_id).encode()))
        return []

    # -- checks ---------------------------------------------------------------------------------
    async def _ask(self, client: WireClient, kind: str, valid: bool, method: str, params: dict[str, Any]) -> None:
        msg_id, future = await client.request(method, params)
        self.inflight.append((Expectation(kind, valid), msg_id, future))
        self._collect(done_only=True)

    async def _check(self, client: WireClient, uri: str) -> None:
        answer = await client.call("workspace/executeCommand", {"command": "nearcode.debugDocument", "arguments": [{"uri": uri}]}, 60)
        copy = answer.get("result") or {}
        mirror = self.docs.get(uri)
        if mirror is None:
            if copy.get("open"):
                self.findings.mismatches.append(f"{uri}: closed here, open in the server")
            return
        if copy.get("text") != mirror.text or copy.get("version") != mirror.version:
            self.findings.mismatches.append(
                f"{uri} v{mirror.version}: expected {mirror.text[-80:]!r}, server v{copy.get('version')} "
                f"has {str(copy.get('text'))[-80:]!r}"
            )
            mirror.text, mirror.version = str(copy.get("text", "")), int(copy.get("version") or 0)  # resync

    def _collect(self, done_only: bool) -> None:
        keep = []
        for expectation, msg_id, future in self.inflight:
            if not future.done():
                if done_only:
                    keep.append((expectation, msg_id, future))
                else:
                    self.findings.unanswered += 1
                continue
            if future.exception() is not None:
                continue  # the server went away: counted as a crash
            self._judge(expectation, msg_id, future.result())
        self.inflight = keep

    def _judge(self, expectation: Expectation, msg_id: Any, message: dict[str, Any]) -> None:
        error = message.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        self.findings.answers[f"{expectation.kind}:{'ok' if code is None else code}"] += 1
        if code == INTERNAL_ERROR:
            self.findings.internal_errors.append(f"{expectation.kind} #{msg_id}: {str(error)[:300]}")
        elif code == INVALID_PARAMS and expectation.valid:
            self.findings.wrongly_refused.append(f"{expectation.kind} #{msg_id}: {str(error)[:300]}")

    async def _settle(self, client: WireClient, within_s: float = 180) -> None:
        """Wait for every request to be answered (or cancelled), then judge them all."""
        waiting = [future for _, _, future in self.inflight if not future.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=within_s)
        self._collect(done_only=False)
        for uri in list(self.docs):
            await self._check(client, uri)


async def fuzz(env: dict[str, str], steps: int, seed: int, logs: Path) -> Findings:
    return await Fuzzer(env, seed, logs).run(steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    runtime = new_runtime_dir()
    env = env_for(runtime)
    logs = Path(tempfile.mkdtemp(prefix="nc-fuzz-logs-"))
    started = time.monotonic()
    start_daemon(env)
    try:
        findings = asyncio.run(fuzz(env, args.steps, args.seed, logs))
    finally:
        stop_daemon(env)
        for log in Path(runtime).glob("daemon.log*"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(runtime, ignore_errors=True)
    report = {"seed": args.seed, "seconds": round(time.monotonic() - started), **findings.report(), "logs": str(logs)}
    print(json.dumps(report, indent=2, ensure_ascii=True))
    return 1 if findings.failed else 0


if __name__ == "__main__":
    sys.exit(main())
