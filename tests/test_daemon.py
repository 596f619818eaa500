"""The daemon on the real model: its API, token, supersede and restart behaviour, and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from pytest_lsp import LanguageClient

from tests.conftest import start_lsp
from tests.support import (
    FIB,
    NEARCODE,
    daemon_http,
    daemon_status,
    endpoint,
    env_for,
    new_runtime_dir,
    running_daemon,
    stop_daemon,
)
from tests.test_lsp_completion import inline, open_doc

LONG = {"prefix": "class Matrix:\n    \"\"\"A dense matrix.\"\"\"\n\n    ", "suffix": "", "mode": "multi",
        "max_tokens": 200, "document": "file:///m.py", "client": "t"}


def test_token_and_private_files(daemon_env: dict[str, str]) -> None:
    runtime = Path(daemon_env["NEARCODE_RUNTIME_DIR"])
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert stat.S_IMODE((runtime / "daemon.json").stat().st_mode) == 0o600
    with daemon_http(daemon_env, token="wrong") as client:
        assert client.get("/api/health").status_code == 401
        assert client.post("/api/fim", json={"prefix": "x"}).status_code == 401
    with daemon_http(daemon_env) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        model = client.get("/api/model").json()
        assert model["engine"] == "llamacpp" and model["family"] == "qwen2.5-coder"
        bad = client.post("/api/fim", json={"prefix": 3, "mode": "sideways"})
        assert bad.status_code == 422 and "invalid request" in bad.text


def test_fim_stream_single_line(daemon_env: dict[str, str]) -> None:
    request = {"prefix": FIB[: FIB.index("\n        \n") + 9], "suffix": FIB[FIB.index("\n        \n") + 9 :],
               "mode": "single", "max_tokens": 32, "language": "python", "path": "fib.py"}
    with daemon_http(daemon_env) as client, client.stream("POST", "/api/fim", json=request) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    text = "".join(e["text"] for e in events if e["type"] == "delta")
    assert text.strip() == "a, b = b, a + b"
    done = events[-1]
    assert done["type"] == "done" and done["finish_reason"] == "newline" and done["prompt_tokens"] > 0


def test_every_choice_of_an_n_request_streams_to_its_own_done(daemon_env: dict[str, str]) -> None:
    """n = 3 on the real model: the greedy choice, then two sampled ones in the same slot, each
    ending with its own done event (the endpoint once ended the stream at the first choice's)."""
    request = {"prefix": FIB[: FIB.index("\n        \n") + 9], "suffix": FIB[FIB.index("\n        \n") + 9 :],
               "mode": "single", "max_tokens": 8, "language": "python", "path": "fib.py", "n": 3}
    with daemon_http(daemon_env) as client, client.stream("POST", "/api/fim", json=request) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    assert sorted(e["index"] for e in events if e["type"] == "done") == [0, 1, 2], events
    assert not [e for e in events if e["type"] == "error"], events


def test_newer_request_supersedes_older(daemon_env: dict[str, str]) -> None:
    results: dict[str, list[dict[str, object]]] = {}

    def run(name: str, body: dict[str, object]) -> None:
        with daemon_http(daemon_env) as client, client.stream("POST", "/api/fim", json=body) as response:
            results[name] = [json.loads(line) for line in response.iter_lines() if line]

    first = threading.Thread(target=run, args=("old", LONG))
    first.start()
    time.sleep(1.0)  # the old request is reading its prompt or generating
    run("new", {**LONG, "max_tokens": 4})
    first.join(60)
    assert results["old"][-1]["finish_reason"] == "superseded"
    assert results["new"][-1]["type"] == "done" and results["new"][-1]["finish_reason"] != "superseded"


def test_disconnect_cancels_generation(daemon_env: dict[str, str]) -> None:
    before = daemon_status(daemon_env)
    with daemon_http(daemon_env) as client, client.stream(
        "POST", "/api/fim", json={**LONG, "document": "file:///other.py"}
    ) as response:
        for line in response.iter_lines():
            if json.loads(line)["type"] == "delta":
                break  # got a token: now hang up
    give_up = time.monotonic() + 10
    after = before
    while time.monotonic() < give_up and after["cancelled_in_engine"] == before["cancelled_in_engine"]:
        time.sleep(0.05)
        after = daemon_status(daemon_env)
    assert after["cancelled_in_engine"] == before["cancelled_in_engine"] + 1
    assert after["tokens_after_cancel_max"] <= 2


@pytest.mark.real
async def test_killed_daemon_is_restarted_by_next_request() -> None:
    env = env_for(new_runtime_dir())
    client: LanguageClient = await start_lsp(env)  # starts its own daemon in the background
    try:
        uri = "file:///tmp/nc-test/restart.py"
        open_doc(client, uri, FIB)
        assert (await inline(client, uri, 3, 8))[0].insert_text.strip() == "a, b = b, a + b"
        old_pid = endpoint(env)["pid"]
        os.kill(old_pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        # Another document, so the answer cannot come from the typing cache: it needs the daemon.
        other = "file:///tmp/nc-test/restart-2.py"
        open_doc(client, other, FIB.replace("fib", "fibo"))
        items = await inline(client, other, 3, 8)
        assert items and items[0].insert_text.strip().startswith("a, b = b, a + b")
        assert endpoint(env)["pid"] != old_pid
    finally:
        await client.shutdown_session()
        stop_daemon(env)


@pytest.mark.real
async def test_engine_setting_reaches_the_daemon_the_server_starts() -> None:
    env = env_for(new_runtime_dir())
    client: LanguageClient = await start_lsp(env, options={"engine": "llamacpp", "model": "default"})
    try:
        uri = "file:///tmp/nc-test/engine.py"
        open_doc(client, uri, FIB)
        assert (await inline(client, uri, 3, 8))[0].insert_text.strip() == "a, b = b, a + b"
        pid = endpoint(env)["pid"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--engine"): argv.index(b"--engine") + 2] == [b"--engine", b"llamacpp"]
        assert b"--model" in argv and daemon_status(env)["engine"] == "llamacpp"
    finally:
        await client.shutdown_session()
        stop_daemon(env)


def test_second_daemon_refuses_to_start(daemon_env: dict[str, str]) -> None:
    result = subprocess.run([*NEARCODE, "daemon"], env=daemon_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and "already running" in result.stderr


def test_cli_complete_and_status(daemon_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "fib.py"
    source.write_text(FIB)
    done = subprocess.run([*NEARCODE, "complete", f"{source}:4:9"], env=daemon_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a, b = b, a + b"
    bad = subprocess.run([*NEARCODE, "complete", f"{source}:99:1"], env=daemon_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "outside" in bad.stderr
    status = subprocess.run([*NEARCODE, "status"], env=daemon_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0
    for field in ("address:", "engine:   llamacpp", "model:", "uptime:", "requests:", "latency:  p50"):
        assert field in status.stdout


def test_status_without_daemon() -> None:
    env = env_for(new_runtime_dir())
    result = subprocess.run([*NEARCODE, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no nearcode daemon is running" in result.stderr


def test_model_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"<html>not a model</html>")
    env = env_for(new_runtime_dir())
    result = subprocess.run([*NEARCODE, "daemon", "--model", str(fake)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert str(fake) in result.stderr and "not a GGUF file" in result.stderr
    missing = subprocess.run([*NEARCODE, "daemon", "--model", str(tmp_path / "nope.gguf")], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 4 and "does not exist" in missing.stderr


def test_engine_not_installed(tmp_path: Path) -> None:
    # The real start-up path with the xllamacpp import made to fail, as on a machine without it.
    code = "import sys; sys.modules['xllamacpp'] = None; from nearcode.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = env_for(new_runtime_dir())
    result = subprocess.run([sys.executable, "-c", code, "daemon"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 5
    assert "embedded engine is not installed" in result.stderr and "nearcode model install" in result.stderr


@pytest.mark.real
def test_truncated_model_file_fails_cleanly(tmp_path: Path) -> None:
    from nearcode.daemon.model_store import PRESETS, model_path

    real = model_path(PRESETS["fast"])
    broken = tmp_path / "truncated.gguf"
    with real.open("rb") as src:
        broken.write_bytes(src.read(4 << 20))  # a GGUF header, then nothing
    env = env_for(new_runtime_dir())
    result = subprocess.run([*NEARCODE, "daemon", "--model", str(broken)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 5 and "could not load" in result.stderr and str(broken) in result.stderr




def test_generate_instruction_task(daemon_env: dict[str, str]) -> None:
    body = {"messages": [{"role": "user", "content": "Reply with the single word: yes"}], "max_tokens": 8}
    with daemon_http(daemon_env) as client, client.stream("POST", "/api/generate", json=body) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    text = "".join(e["text"] for e in events if e["type"] == "delta")
    assert text.strip() and "<|im_end|>" not in text
    assert events[-1]["type"] == "done" and events[-1]["finish_reason"] in ("stop", "length")
    with daemon_http(daemon_env) as client:
        bad = client.post("/api/generate", json={"messages": [{"role": "robot", "content": "x"}]})
        assert bad.status_code == 422


def test_cancel_while_reading_a_cold_prompt(daemon_env: dict[str, str]) -> None:
    # A long prompt nobody has sent before: the engine is still reading it when we hang up, and
    # must stop between prompt batches, before generating anything.
    prefix = "".join(f"def handler_{i}_{time.time_ns()}(request):\n    return request.args[{i}]\n\n" for i in range(60))
    before = daemon_status(daemon_env)
    with daemon_http(daemon_env) as client, contextlib.suppress(httpx.ReadTimeout):
        # The client gives up after 0.5 s, while the prompt is still being read.
        client.post("/api/fim", json={"prefix": prefix, "mode": "multi", "max_tokens": 50}, timeout=0.5)
    give_up = time.monotonic() + 30
    after = before
    while time.monotonic() < give_up and after["cancelled_in_engine"] == before["cancelled_in_engine"]:
        time.sleep(0.1)
        after = daemon_status(daemon_env)
    assert after["cancelled_in_engine"] == before["cancelled_in_engine"] + 1
    assert after["tokens_after_cancel_total"] == before["tokens_after_cancel_total"]
    assert after["generated_tokens"] == before["generated_tokens"], "stopped before the first token"


@pytest.mark.real  # its own daemon, on the model
def test_a_read_cut_by_its_deadline_is_learned_as_far_as_it_got() -> None:
    """A fresh daemon (no reading speed yet: the first prompt gets the whole configured budget)
    whose first request's deadline falls while the engine reads: it learns the speed of what was
    read by then. It once learned nothing (the request ended without the engine's counts), so the
    1.5B model, slower than the first budget assumes, missed 12 deadlines in a row."""
    # The deadline must fall after the first 256-token prompt batch and before the ~1,000-token
    # prompt is read: 6 s on 2 cores (~70-150 tokens/s); a faster machine reads it all by then (at
    # 166 tokens/s the read ended 50 ms before a 6 s deadline, and no token came before it), so
    # it tries shorter ones, each on a fresh daemon. With the old fault (the whole prompt taken as
    # read by the last progress report) every deadline learns faster than the whole prompt's speed.
    for deadline_ms in (6000, 2000, 1000):
        prefix = "".join(f"def handler_{i}_{time.time_ns()}(request):\n    return request.args[{i}]\n\n" for i in range(120))
        with running_daemon() as env:
            request = {"prefix": prefix, "mode": "multi", "max_tokens": 16, "deadline_ms": deadline_ms}
            with daemon_http(env) as client, client.stream("POST", "/api/fim", json=request) as response:
                done = [json.loads(line) for line in response.iter_lines() if line][-1]
            learned = daemon_status(env)["prompt_tokens_per_s"]
        # If the deadline came before the whole prompt was read, the engine reads slower than that.
        whole_prompt_speed = (done["prompt_tokens"] - done["cached_tokens"]) / (done["elapsed_ms"] / 1000)
        cut_while_reading = learned is not None and learned < whole_prompt_speed
        if done["finish_reason"] == "deadline" and done["generated_tokens"] == 0 and cut_while_reading:
            break
    assert done["type"] == "done" and done["finish_reason"] == "deadline" and done["generated_tokens"] == 0, done
    assert learned is not None and learned < whole_prompt_speed, (learned, done)


@pytest.mark.real  # its own daemon, on the model
def test_a_superseded_request_teaches_the_reading_speed() -> None:
    """Typing supersedes request after request, many while they still read their prompts: each
    ends with the counts of what it had read, and the speed is learned from them. They once ended
    with none, so a fresh daemon under steady typing never learned its speed (every prompt got the
    configured maximum, far more than a slow machine reads before the deadline)."""
    # The newer request must come while the older one still runs (reading, or generating up to 200
    # tokens): 4 s into it on 2 slow cores, sooner on a faster machine, each try on a fresh daemon.
    for wait_s in (4.0, 1.0, 0.3):
        done, learned = _supersede_after(wait_s)
        if done["old"]["finish_reason"] == "superseded":
            break
    assert done["old"]["finish_reason"] == "superseded", done
    assert int(str(done["old"]["prompt_tokens"])) > 0, done
    assert learned is not None and learned > 0, done


@pytest.mark.real  # its own daemon, on the model
def test_a_request_whose_client_hung_up_teaches_the_reading_speed() -> None:
    """An editor shows the first line and moves on, closing the stream: what the engine read still
    teaches the speed. Such requests once taught nothing, so a fresh daemon whose first answers were
    all taken early went on budgeting every prompt at the configured maximum (an empty answer on
    the first completion of a slow machine)."""
    prefix = "".join(f"def handler_{i}_{time.time_ns()}(request):\n    return request.args[{i}]\n\n" for i in range(12))
    with running_daemon() as env:
        assert daemon_status(env)["prompt_tokens_per_s"] is None
        request = {"prefix": prefix + "def main():\n    ", "mode": "multi", "max_tokens": 64}
        with daemon_http(env) as client, client.stream("POST", "/api/fim", json=request) as response:
            for line in response.iter_lines():
                if line and json.loads(line)["type"] == "delta":
                    break  # the first token: hang up
        learned = None
        # Soon: later, the start-up probe (after 2 s without requests) would teach it anyway.
        give_up = time.monotonic() + 1.5
        while learned is None and time.monotonic() < give_up:
            time.sleep(0.1)
            learned = daemon_status(env)["prompt_tokens_per_s"]
    assert learned is not None and learned > 0


@pytest.mark.real  # its own daemon, on the model
def test_a_fresh_daemon_measures_its_reading_speed_before_the_first_request() -> None:
    """A daemon nobody has asked anything yet knows its reading speed soon after start (a probe
    after the canary), so the first prompts are budgeted by it. Before, it took the first answers
    to learn it, and while the user typed (every request superseded before the engine reported
    what it read) 8 requests and 25 s went by without a suggestion (1.5B, 2 slow cores)."""
    with running_daemon() as env:
        learned = None
        give_up = time.monotonic() + 90
        while learned is None and time.monotonic() < give_up:
            time.sleep(0.5)
            learned = daemon_status(env)["prompt_tokens_per_s"]
        status = daemon_status(env)
        shown = subprocess.run([*NEARCODE, "status"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert learned is not None and learned > 0, status
    assert status["requests"] == 0, "learned without a request"
    assert f"reading:  {learned:g} prompt tokens/s measured; a cold prompt gets {status['cold_prompt_tokens']} tokens" in shown


@pytest.mark.real  # its own daemon, on the model
def test_a_fresh_daemon_learns_its_speed_from_a_first_short_read() -> None:
    """The first prompts of a session are often short (a small file, a benchmark's warm-up): before
    any speed is known, a read of 64 tokens or more sets it. Only reads of 128 once counted, so the
    first long prompt got the configured maximum (1,024 tokens, 30 s of the 1.5B here: empty)."""
    prefix = "".join(f"value_{i}_{time.time_ns() % 1000} = {i}\n" for i in range(10))
    with running_daemon() as env:
        with daemon_http(env) as client, client.stream(
            "POST", "/api/fim", json={"prefix": prefix, "mode": "single", "max_tokens": 4}
        ) as response:
            done = [json.loads(line) for line in response.iter_lines() if line][-1]
        learned = daemon_status(env)["prompt_tokens_per_s"]
    read = done["prompt_tokens"] - done["cached_tokens"]
    assert 64 <= read < 128, done  # the case this is about: a read the old rule ignored
    assert learned is not None and learned > 0, done


def _supersede_after(wait_s: float) -> tuple[dict[str, dict[str, object]], float | None]:
    """A 1,300-token request, superseded `wait_s` in by a short one for the same document: both
    final events, and the reading speed the fresh daemon learned (the short one teaches nothing)."""
    prefix = "".join(f"def handler_{i}_{time.time_ns()}(request):\n    return request.args[{i}]\n\n" for i in range(120))
    old = {"prefix": prefix, "mode": "multi", "max_tokens": 200, "document": "file:///h.py", "client": "t"}
    done: dict[str, dict[str, object]] = {}
    with running_daemon() as env:
        assert daemon_status(env)["prompt_tokens_per_s"] is None

        def run(name: str, body: dict[str, object]) -> None:
            with daemon_http(env) as client, client.stream("POST", "/api/fim", json=body) as response:
                done[name] = [json.loads(line) for line in response.iter_lines() if line][-1]

        first = threading.Thread(target=run, args=("old", old))
        first.start()
        time.sleep(wait_s)
        run("new", {**old, "prefix": "def f(x):\n    return ", "max_tokens": 4})  # too short to teach
        first.join(120)
        learned = daemon_status(env)["prompt_tokens_per_s"]
    return done, learned


def test_typing_in_a_long_file_rereads_only_the_end_of_the_prompt(daemon_env: dict[str, str]) -> None:
    """Keystrokes on one line of a file longer than the prompt budget: after the first request, the
    engine reads only the changed end of each prompt, because the prompt keeps starting where the
    previous one did (its KV cache), however the token count near the cursor changes."""
    body = "".join(f"def handler_{i}(request, response):\n    return dispatch(request, response, {i})\n\n"
                   for i in range(120))
    line = "    total = sum(item.price * item.quantity for item in basket)"
    read: list[int] = []
    with daemon_http(daemon_env) as client:
        for n in range(18, len(line), 3):
            request = {"prefix": body + "def checkout(basket):\n" + line[:n], "suffix": "\n", "mode": "single",
                       "max_tokens": 2, "document": "file:///long.py", "client": "anchor-test",
                       "language": "python", "path": "long.py"}
            with client.stream("POST", "/api/fim", json=request, timeout=120) as response:
                done = [json.loads(x) for x in response.iter_lines() if x][-1]
            assert done["type"] == "done" and done["prompt_tokens"] > 150
            read.append(done["prompt_tokens"] - done["cached_tokens"])
    follow_ups = read[1:]
    assert sum(1 for r in follow_ups if r <= 64) >= len(follow_ups) - 1, read
