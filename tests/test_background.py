"""Background work (docstrings, tests) steps aside for keystrokes on the real daemon and model:
paused while an interactive completion runs, resumed afterwards without a restart, shed when too
much of it waits."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.support import daemon_http, daemon_status

WRITE_LONG = {
    "messages": [{"role": "user", "content": "List twenty Python built-in functions, one per line, "
                                             "each with a one-sentence explanation."}],
    "max_tokens": 80,
    "priority": "background",
    "client": "background-test",
}
KEYSTROKE = {"prefix": "def area(radius):\n    return ", "suffix": "\n", "mode": "multi", "max_tokens": 24,
             "document": "file:///keystroke.py", "client": "typing-test", "language": "python"}


def _stream(env: dict[str, str], path: str, body: dict[str, Any], into: list[tuple[float, dict[str, Any]]]) -> None:
    with daemon_http(env) as client, client.stream("POST", path, json=body, timeout=300) as response:
        for line in response.iter_lines():
            if line:
                into.append((time.monotonic(), json.loads(line)))


def test_background_pauses_for_a_keystroke_and_resumes(daemon_env: dict[str, str]) -> None:
    before = daemon_status(daemon_env)["background"]["paused"]
    background: list[tuple[float, dict[str, Any]]] = []
    worker = threading.Thread(target=_stream, args=(daemon_env, "/api/generate", WRITE_LONG, background))
    worker.start()
    give_up = time.monotonic() + 120
    while sum(1 for _, e in background if e["type"] == "delta") < 3 and time.monotonic() < give_up:
        time.sleep(0.05)
    assert worker.is_alive(), "the background job finished before a keystroke could interrupt it"

    keystroke: list[tuple[float, dict[str, Any]]] = []
    asked = time.monotonic()
    _stream(daemon_env, "/api/fim", KEYSTROKE, keystroke)
    answered = keystroke[-1][0]
    worker.join(300)

    assert keystroke[-1][1]["type"] == "done" and keystroke[-1][1]["finish_reason"] != "cancelled"
    assert daemon_status(daemon_env)["background"]["paused"] > before
    # While the keystroke's completion ran, the background job made (almost) no progress: at most
    # the token already on its way when the pause was asked for.
    during = [e for t, e in background if asked + 0.2 < t < answered and e["type"] == "delta"]
    assert len(during) <= 2, f"{len(during)} background tokens streamed during the keystroke"
    # ... and afterwards it went on where it was, to a normal end: one continuous text, one done.
    after = [e for t, e in background if t > answered and e["type"] == "delta"]
    assert after, "the background job never resumed"
    done = [e for _, e in background if e["type"] == "done"]
    assert len(done) == 1 and done[0]["finish_reason"] in ("stop", "length")
    assert done[0]["generated_tokens"] <= WRITE_LONG["max_tokens"]
    text = "".join(e["text"] for _, e in background if e["type"] == "delta")
    assert len(text.splitlines()) >= 3


def test_background_beyond_the_waiting_limit_is_shed_with_a_reason(daemon_env: dict[str, str]) -> None:
    before = daemon_status(daemon_env)["background"]["shed"]
    holding: list[tuple[float, dict[str, Any]]] = []
    long_keystroke = {**KEYSTROKE, "max_tokens": 64, "document": "file:///hold.py",
                      "prefix": "class Matrix:\n    \"\"\"A dense matrix.\"\"\"\n\n    "}
    holder = threading.Thread(target=_stream, args=(daemon_env, "/api/fim", long_keystroke, holding))
    holder.start()
    while not holding and holder.is_alive():
        time.sleep(0.05)  # the keystroke's first token: interactive work is running

    results: list[list[tuple[float, dict[str, Any]]]] = [[] for _ in range(9)]
    waiting = [
        threading.Thread(target=_stream, args=(daemon_env, "/api/generate",
                                               {**WRITE_LONG, "max_tokens": 4, "client": f"bg{i}"}, results[i]))
        for i in range(9)
    ]
    for thread in waiting:
        thread.start()
        time.sleep(0.1)  # in order: the ninth finds eight already waiting
    for thread in waiting:
        thread.join(300)
    holder.join(300)

    errors = [r[-1][1] for r in results if r and r[-1][1]["type"] == "error"]
    assert len(errors) == 1 and "shed" in errors[0]["message"] and "already waiting" in errors[0]["message"]
    assert results[8][-1][1] in errors  # the last to arrive
    finished = [r[-1][1] for r in results if r and r[-1][1]["type"] == "done"]
    assert len(finished) == 8, "the jobs within the limit ran once the keystroke was answered"
    assert daemon_status(daemon_env)["background"]["shed"] >= before + len(errors)
