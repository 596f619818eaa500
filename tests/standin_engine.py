"""A stand-in model server whose answers the test writes: OpenAI's `/v1/completions` (streamed),
`/v1/models` and `/health`, in the stdlib only.

The real daemon drives it as its `openai` engine (`--remote-url`), or supervises it as its vLLM
child (`--vllm-command`, in its network namespace). The model's answer is the test's to choose:
hostile generated tests, a docstring streamed slowly enough to type while it arrives.

    python tests/standin_engine.py --port PORT --script ANSWERS.json [--probe-port P --probe-file OUT]

ANSWERS.json (read again for every request): `[{"match": "text in the prompt", "text": "answer",
"chunk_chars": 4, "delay_s": 0.05, "error_after": -1}, ...]`; the first entry whose `match` is in the prompt answers,
else an empty answer. `--probe-port`: at start, try to connect to that port on 127.0.0.1 and write
what happened to OUT (a child in its own network namespace must not reach the test's listener).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCRIPT = ""
MODEL_ID = "standin"


def _answer(prompt: str) -> dict[str, Any]:
    try:
        with open(SCRIPT, encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError):
        entries = []
    for entry in entries:
        if entry.get("match", "") in prompt:
            return dict(entry)
    return {"text": ""}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/v1/models"):
            self._json(200, {"data": [{"id": MODEL_ID, "object": "model", "max_model_len": 8192}]})
        elif self.path.startswith("/health"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        if not self.path.startswith("/v1/completions"):
            self._json(404, {"error": "not found"})
            return
        entry = _answer(str(body.get("prompt", "")))
        text, step, delay = str(entry.get("text", "")), int(entry.get("chunk_chars", 8)), float(entry.get("delay_s", 0))
        error_after = int(entry.get("error_after", -1))  # fail mid-stream after this many characters
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        try:
            for i in range(0, len(text), step):
                time.sleep(delay)
                if 0 <= error_after <= i:
                    failure = {"error": {"message": "the stand-in engine failed mid-stream"}}
                    self.wfile.write(f"data: {json.dumps(failure)}\n\n".encode())
                    self.wfile.flush()
                    return
                event = {"choices": [{"index": 0, "text": text[i : i + step], "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            done = {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": max(1, len(text) // 4)}}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon hung up: the request was cancelled
        self.close_connection = True


def probe(port: int, out: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        result = "connected"
    except OSError as exc:
        result = f"{type(exc).__name__}: {exc}"
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"probe": result}, f)


def main() -> None:
    global SCRIPT, MODEL_ID
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--probe-port", type=int, default=0)
    parser.add_argument("--probe-file", default="")
    parser.add_argument("--served-model-name", default="")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    SCRIPT = args.script
    MODEL_ID = args.served_model_name or MODEL_ID
    if args.probe_port:
        probe(args.probe_port, args.probe_file)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print("listening", args.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
