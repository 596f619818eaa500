"""One inline completion through `nearcode lsp --stdio`, as an editor asks for it: initialize,
open a file, ask at a cursor, print the suggestion. Standard library only, so it runs with any
Python against any installed `nearcode` (the wheel check in .ci/wheel-check runs it).

    python lsp_smoke.py NEARCODE_COMMAND FILE LINE CHARACTER     (0-based LSP position)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

TIMEOUT_S = 300.0


def send(pipe: IO[bytes], message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    pipe.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    pipe.flush()


def receive(pipe: IO[bytes]) -> dict[str, Any]:
    length = 0
    while (line := pipe.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if not length:
        raise SystemExit("lsp smoke: the server closed its output")
    return dict(json.loads(pipe.read(length)))


def request(proc: subprocess.Popen[bytes], ident: int, method: str, params: dict[str, Any]) -> Any:
    assert proc.stdin is not None and proc.stdout is not None
    send(proc.stdin, {"id": ident, "method": method, "params": params})
    give_up = time.monotonic() + TIMEOUT_S
    while time.monotonic() < give_up:
        message = receive(proc.stdout)
        if message.get("id") == ident and "method" not in message:
            if "error" in message:
                raise SystemExit(f"lsp smoke: {method} failed: {message['error']}")
            return message.get("result")
        if "id" in message and "method" in message:  # a request from the server: answer it empty
            send(proc.stdin, {"id": message["id"], "result": None})
    raise SystemExit(f"lsp smoke: no answer to {method} within {TIMEOUT_S:.0f} s")


def main() -> int:
    command, file, line, character = sys.argv[1], Path(sys.argv[2]).resolve(), int(sys.argv[3]), int(sys.argv[4])
    proc = subprocess.Popen([command, "lsp", "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        request(proc, 1, "initialize", {
            "processId": None, "rootUri": file.parent.as_uri(),
            "capabilities": {"textDocument": {"inlineCompletion": {}}},
        })
        send(proc.stdin, {"method": "initialized", "params": {}})
        uri = file.as_uri()
        send(proc.stdin, {"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": file.read_text()}}})
        result = request(proc, 2, "textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1},
        })
        items = result.get("items", []) if isinstance(result, dict) else result or []
        if not items or not items[0].get("insertText"):
            print(f"lsp smoke: no suggestion: {result}", file=sys.stderr)
            return 1
        print(f"lsp smoke: {len(items)} suggestion(s), first: {items[0]['insertText']!r}")
        request(proc, 3, "shutdown", {})
        send(proc.stdin, {"method": "exit"})
        proc.wait(timeout=30)
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
