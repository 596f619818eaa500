#!/usr/bin/env python3
"""What a running docstring/test generation costs a keystroke (issue 5: "never delay an inline
completion").

Starts a daemon of its own (own NEARCODE_RUNTIME_DIR), then times keystroke-like completions
(single line, at line ends of one real file from the local standard library, a pause between
them, as someone typing) three ways: nothing else running; with a background instruction task
always running (a new one starts when one ends), background pause on (the default); and the same
with the daemon started with --no-background-pause. Reports p50/p95 of the keystrokes' latency
and the background tokens generated per second.

  .venv/bin/python bench/background_impact.py [--keystrokes 20]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
SOURCE = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
BACKGROUND = {
    "messages": [{"role": "user", "content": "Write a detailed Google-style docstring for this function:\n\n"
                  "def wrap(text, width=70, **kwargs):\n    w = TextWrapper(width=width, **kwargs)\n"
                  "    return w.wrap(text)\n"}],
    "max_tokens": 200, "priority": "background", "client": "bench-background", "document": "file:///doc.py",
}


@contextlib.contextmanager
def daemon(*args: str) -> Iterator[httpx.Client]:
    runtime = tempfile.mkdtemp(prefix="nc-bg-", dir="/tmp")
    env = {**os.environ, "NEARCODE_RUNTIME_DIR": runtime}
    log = open(Path(runtime) / "daemon.log", "ab")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "nearcode", "daemon", *args], env=env, stdout=log,
                               stderr=log, cwd=REPO)
    try:
        address = Path(runtime) / "daemon.json"
        for _ in range(1200):
            if address.exists():
                info = json.loads(address.read_text())
                client = httpx.Client(base_url="http://localhost", transport=httpx.HTTPTransport(uds=info["path"]),
                                      headers={"Authorization": f"Bearer {info['token']}"}, timeout=300)
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/api/health").status_code == 200:
                        yield client
                        return
            time.sleep(0.1)
        raise RuntimeError("daemon did not start")
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(runtime, ignore_errors=True)


def keystroke_positions(text: str, count: int, per_line: int = 5) -> list[int]:
    """Cursor positions of someone typing a few lines of the file: on each chosen line, after its
    4th, 7th, 10th... character of code (the text after the cursor is what is still to be typed)."""
    lines, offset = [], 0
    for line in text.splitlines(keepends=True):
        code = line.strip()
        looks_like_code = ("(" in code or " = " in code) and not code.startswith(("#", '"', "'"))
        if line.startswith("        ") and len(code) > 3 * per_line + 4 and looks_like_code:
            lines.append(offset + len(line) - len(line.lstrip()))
        offset += len(line)
    wanted = -(-count // per_line)
    chosen = lines[:: max(1, len(lines) // wanted)]
    return [start + 4 + 3 * i for start in chosen for i in range(per_line)][:count]


def time_keystrokes(client: httpx.Client, text: str, positions: list[int]) -> list[float]:
    latencies = []
    for cursor in positions:
        body = {"prefix": text[:cursor], "suffix": text[cursor:], "mode": "single", "max_tokens": 32,
                "language": "python", "path": "textwrap.py", "document": "file:///textwrap.py",
                "client": "bench-editor", "deadline_ms": 9000, "max_generation_ms": 1500}
        started = time.monotonic()
        with client.stream("POST", "/api/fim", json=body) as response:
            for _ in response.iter_lines():
                pass
        latencies.append((time.monotonic() - started) * 1000)
        time.sleep(0.5)  # the person reads the suggestion, then types on
    return latencies


def background_loop(client: httpx.Client, stop: threading.Event, tokens: list[int]) -> None:
    """Keep one background task running; count the tokens it streams (one per delta event)."""
    while not stop.is_set():
        with client.stream("POST", "/api/generate", json=BACKGROUND) as response:
            for line in response.iter_lines():
                if line and json.loads(line).get("type") == "delta":
                    tokens.append(1)
                if stop.is_set():
                    break


def run(label: str, text: str, positions: list[int], daemon_args: tuple[str, ...], busy: bool) -> dict[str, Any]:
    with daemon(*daemon_args) as client:
        time_keystrokes(client, text, positions[:2])  # warm the document's slot
        stop, tokens = threading.Event(), list[int]()
        worker = threading.Thread(target=background_loop, args=(client, stop, tokens)) if busy else None
        if worker:
            worker.start()
            time.sleep(2)
        started = time.monotonic()
        latencies = time_keystrokes(client, text, positions)
        elapsed = time.monotonic() - started
        stop.set()
        if worker:
            worker.join(120)
        status = client.get("/api/status").json()
    ordered = sorted(latencies)
    return {"label": label, "p50_ms": round(statistics.median(ordered)), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))]),
            "background_tokens_per_s": round(sum(tokens) / elapsed, 1), "paused": status.get("background", {}).get("paused", 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keystrokes", type=int, default=20)
    args = ap.parse_args()
    text = SOURCE.read_text(encoding="utf-8")
    positions = keystroke_positions(text, args.keystrokes + 2)
    rows = [
        run("no background work", text, positions, (), busy=False),
        run("background, paused for keystrokes (default)", text, positions, (), busy=True),
        run("background, --no-background-pause", text, positions, ("--no-background-pause",), busy=True),
    ]
    print("| run | keystroke p50 ms | keystroke p95 ms | background tokens/s | pauses |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['p50_ms']} | {r['p95_ms']} | {r['background_tokens_per_s']} | {r['paused']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
