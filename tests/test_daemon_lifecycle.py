"""One daemon for every editor, through restarts, crashes and start failures (real daemons with
the real model, real language servers, each test in its own runtime directory)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytest_lsp import LanguageClient

from nearcode.shared.endpoint import pid_alive
from tests.editor_session import Seen, start_watched_lsp, status_of
from tests.support import (
    FIB,
    NEARCODE,
    daemon_http,
    daemon_pids,
    daemon_status,
    endpoint,
    env_for,
    new_runtime_dir,
    start_daemon,
    stop_daemon,
)
from tests.test_lsp_completion import inline, open_doc

pytestmark = pytest.mark.real
MATRIX = 'class Matrix:\n    """A dense matrix of floats."""\n\n    \n'  # asks for several lines: long enough to interrupt
MISSING_MODEL = "/nonexistent/nearcode-test-model.gguf"


@pytest.fixture
def fresh_env() -> Iterator[dict[str, str]]:
    """An empty runtime directory; every daemon started in it is stopped afterwards."""
    runtime = new_runtime_dir()
    env = env_for(runtime)
    yield env
    stop_daemon(env)
    give_up = time.monotonic() + 30
    while daemon_pids(runtime) and time.monotonic() < give_up:
        time.sleep(0.2)
    for pid in daemon_pids(runtime):  # the test's own daemons, by pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(runtime, ignore_errors=True)


def healthy(env: dict[str, str]) -> int | None:
    """The pid of a daemon answering at the address file's address, else None."""
    try:
        with daemon_http(env) as client:
            client.timeout = httpx.Timeout(5)
            return int(endpoint(env)["pid"]) if client.get("/api/health").status_code == 200 else None
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None


async def started_daemon(env: dict[str, str], not_pid: int = 0, within_s: float = 240) -> int:
    """The pid of the daemon a language server started, once it answers."""
    give_up = time.monotonic() + within_s
    while time.monotonic() < give_up:
        pid = await asyncio.to_thread(healthy, env)
        if pid not in (None, not_pid):
            assert pid is not None
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("no daemon came up")


def replace_daemon(env: dict[str, str], *args: str) -> int:
    """Stop the running daemon and start another (a new token; `args` may change its address)."""
    old = int(endpoint(env)["pid"])
    stop_daemon(env)
    give_up = time.monotonic() + 60
    while old in daemon_pids(env["NEARCODE_RUNTIME_DIR"]) and time.monotonic() < give_up:
        time.sleep(0.1)
    for _ in range(3):
        try:
            return start_daemon(env, *args).pid
        except RuntimeError as exc:
            # A language server that lost the old daemon mid-request starts the next one at once,
            # and may win the lock: replace that one too.
            if "exited with 3" not in str(exc):
                raise
            stop_daemon(env)
    raise AssertionError("language servers kept starting daemons")


async def suggestion(client: LanguageClient, name: str, timeout_s: float = 120) -> str:
    """An invoked completion in a new document (nothing cached for it); its text, '' if none."""
    uri = f"file:///tmp/nc-test/{name}-{time.monotonic_ns()}.py"
    open_doc(client, uri, FIB.replace("fib", name))
    items = await asyncio.wait_for(inline(client, uri, 3, 8), timeout_s)
    return items[0].insert_text if items else ""


def assert_nothing_shown(seen: Seen) -> None:
    assert not seen.errors_shown and not seen.error_states, (seen.errors_shown, seen.error_states)


async def test_a_replaced_daemon_is_picked_up_with_and_without_a_keep_alive_connection(fresh_env: dict[str, str]) -> None:
    start_daemon(fresh_env)
    client, seen = await start_watched_lsp(fresh_env)
    try:
        assert await suggestion(client, "first")
        # Keep-alive: the server's connection to the old daemon is in its pool right now.
        replace_daemon(fresh_env)
        assert await suggestion(client, "keepalive"), "a new token, the same socket path"
        # No keep-alive connection: past httpx's keep-alive expiry (5 s) the next request opens a
        # new connection, and it reaches the new daemon with the old token.
        await asyncio.sleep(6)
        replace_daemon(fresh_env)
        assert await suggestion(client, "fresh-connection"), "a new token, a new connection"
        replace_daemon(fresh_env, "--transport", "tcp")
        assert await suggestion(client, "tcp"), "a new address (tcp) and a new token"
        assert_nothing_shown(seen)
    finally:
        await client.shutdown_session()


async def test_two_language_servers_starting_at_once_end_with_one_daemon(fresh_env: dict[str, str]) -> None:
    (first, seen1), (second, seen2) = await asyncio.gather(start_watched_lsp(fresh_env), start_watched_lsp(fresh_env))
    try:
        answers = await asyncio.gather(suggestion(first, "one"), suggestion(second, "two"))
        assert all(answers), answers
        assert daemon_pids(fresh_env["NEARCODE_RUNTIME_DIR"]) == [endpoint(fresh_env)["pid"]]
        assert_nothing_shown(seen1)
        assert_nothing_shown(seen2)
    finally:
        await asyncio.gather(first.shutdown_session(), second.shutdown_session())


async def test_a_daemon_that_cannot_start_is_retried_with_backoff_and_the_status_says_why(
    fresh_env: dict[str, str],
) -> None:
    client, seen = await start_watched_lsp(fresh_env, options={"model": MISSING_MODEL})
    try:
        uri = "file:///tmp/nc-test/no-daemon.py"
        open_doc(client, uri, FIB)
        started = time.monotonic()
        for _ in range(20):  # a user typing for six seconds
            assert await asyncio.wait_for(inline(client, uri, 3, 8, invoked=False), 60) == []
            await asyncio.sleep(max(0.0, 0.3 - (time.monotonic() - started) % 0.3))
        log = (Path(fresh_env["NEARCODE_RUNTIME_DIR"]) / "daemon.log").read_text()
        starts = log.count(MISSING_MODEL)
        assert 1 <= starts <= 4, f"{starts} daemons started for 20 requests in {time.monotonic() - started:.1f} s"
        status = await status_of(client)
        assert status["state"] == "error"
        assert "could not start" in status["message"] and MISSING_MODEL in status["message"]
        assert "Next try in" in status["message"] and "nearcode doctor" in status["message"]
        assert len(seen.errors_shown) == 1, seen.errors_shown
        # Fixed (here: someone starts a working daemon): the next request uses it at once.
        start_daemon(fresh_env)
        assert await suggestion(client, "fixed")
        status = await status_of(client)
        assert status["state"] == "ready" and not status["message"]
    finally:
        await client.shutdown_session()


async def _wait_generating(env: dict[str, str], before: int) -> None:
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        status = await asyncio.to_thread(daemon_status, env)
        if status["generated_tokens"] > before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the completion never started generating")


async def test_killing_the_daemon_during_a_completion_costs_no_error(fresh_env: dict[str, str]) -> None:
    client, seen = await start_watched_lsp(fresh_env)  # it starts the daemon
    try:
        killed = await started_daemon(fresh_env)
        uri = "file:///tmp/nc-test/killed-daemon.py"
        open_doc(client, uri, MATRIX)
        before = (await asyncio.to_thread(daemon_status, fresh_env))["generated_tokens"]
        request = asyncio.ensure_future(inline(client, uri, 3, 4))
        await _wait_generating(fresh_env, before)
        os.kill(killed, signal.SIGKILL)
        await asyncio.wait_for(request, 60)  # answered (its first line, or nothing), not an error
        await started_daemon(fresh_env, not_pid=killed)  # the language server starts it by itself
        ready_at = time.monotonic()
        text = await suggestion(client, "after-crash")
        first_s = time.monotonic() - ready_at
        again = time.monotonic()
        await suggestion(client, "warm")  # the same kind of request on the warm daemon: the machine's pace
        print(f"first suggestion {first_s:.2f} s after the new daemon was ready (a fresh document on the "
              f"warm daemon: {time.monotonic() - again:.2f} s; load {os.getloadavg()[0]:.1f})")
        assert text.strip()
        assert_nothing_shown(seen)
        assert any(s.get("state") == "loading" for s in seen.statuses), "the status said it was restarting"
    finally:
        await client.shutdown_session()


async def test_killing_a_language_server_leaves_the_daemon_serving_the_others(fresh_env: dict[str, str]) -> None:
    doomed, _ = await start_watched_lsp(fresh_env)  # it starts the daemon: the daemon is its child
    daemon = await started_daemon(fresh_env)
    survivor, seen = await start_watched_lsp(fresh_env)
    try:
        uri = "file:///tmp/nc-test/doomed.py"
        open_doc(doomed, uri, MATRIX)
        before = (await asyncio.to_thread(daemon_status, fresh_env))["generated_tokens"]
        orphan = asyncio.ensure_future(inline(doomed, uri, 3, 4))
        await _wait_generating(fresh_env, before)
        assert doomed._server is not None
        doomed._server.kill()  # our own child process, by its handle
        assert await suggestion(survivor, "survivor")
        give_up = time.monotonic() + 30
        while True:
            status = await asyncio.to_thread(daemon_status, fresh_env)
            if not status["running"]["interactive"] or time.monotonic() > give_up:
                break
            await asyncio.sleep(0.1)
        assert status["pid"] == daemon and status["running"]["interactive"] == 0, "the dead editor's request stopped"
        assert_nothing_shown(seen)
    finally:
        orphan.cancel()
        with contextlib.suppress(BaseException):
            await doomed.stop()
        await survivor.shutdown_session()


async def test_a_start_that_meets_a_daemon_on_its_way_out_starts_again_once_it_has_gone(
    fresh_env: dict[str, str],
) -> None:
    """A stopping daemon has withdrawn its address but may hold the lock a moment longer: a daemon
    started then exits ("already running"), and the language server must start another once the lock
    is free, not wait out its 180 s start timeout for an address nobody will write."""
    runtime = Path(fresh_env["NEARCODE_RUNTIME_DIR"])
    holder = os.open(runtime / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)  # the daemon on its way out
    fcntl.flock(holder, fcntl.LOCK_EX)
    client, seen = await start_watched_lsp(fresh_env)
    try:
        uri = "file:///tmp/nc-test/on-its-way-out.py"
        open_doc(client, uri, FIB)
        request = asyncio.ensure_future(inline(client, uri, 3, 8))
        for _ in range(600):
            if "already running" in _text(runtime / "daemon.log"):
                break
            await asyncio.sleep(0.1)
        assert "already running" in _text(runtime / "daemon.log"), "the first start met the held lock"
        os.close(holder)  # the old daemon has gone
        items = await asyncio.wait_for(request, 90)
        assert items and str(items[0].insert_text).strip()
        assert_nothing_shown(seen)
    finally:
        with contextlib.suppress(OSError):
            os.close(holder)
        await client.shutdown_session()


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


async def test_a_daemon_started_right_after_nearcode_stop_serves(fresh_env: dict[str, str]) -> None:
    """`nearcode stop` returns once the daemon has gone, and a busy daemon lets others start while
    it frees its engine: `nearcode stop && nearcode daemon` never says "already running"."""
    old = start_daemon(fresh_env)
    before = (await asyncio.to_thread(daemon_status, fresh_env))["generated_tokens"]
    busy = asyncio.ensure_future(asyncio.to_thread(_long_completion, fresh_env))
    try:
        await _wait_generating(fresh_env, before)
        stop = await asyncio.to_thread(subprocess.run, [*NEARCODE, "stop"], env=fresh_env,
                                       capture_output=True, text=True, timeout=60)
        assert "daemon stopped" in stop.stdout, stop
        assert old.poll() is not None or not pid_alive(old.pid), "stop returned while the daemon still ran"
        new = start_daemon(fresh_env)  # raises if it exits ("already running") or does not answer
        assert new.pid != old.pid
    finally:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(busy, 30)


def _long_completion(env: dict[str, str]) -> None:
    with contextlib.suppress(httpx.HTTPError), daemon_http(env) as client:
        client.timeout = httpx.Timeout(60)
        client.post("/api/fim", json={"prefix": MATRIX, "mode": "multi", "max_tokens": 256, "max_lines": 200})
