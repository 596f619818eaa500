"""The language server's event loop logs no error for a cancelled daemon read (lsp/event_loop.py),
and still logs every other callback error; the real server exits cleanly after one."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from typing import IO, Any

import pytest

from nearcode.lsp.event_loop import ignore_late_wakeups
from tests.late_wakeup import CANCELLED_READ_COMMAND, cancel_a_read_as_data_arrives
from tests.support import REPO, env_for, new_runtime_dir


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_race_is_real_without_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    """What the filter is for: asyncio's default handler logs anyio's late wake-up as an error."""
    assert await cancel_a_read_as_data_arrives()
    assert any("Future.set_result(None)" in m for m in _errors(caplog)), _errors(caplog)


async def test_a_cancelled_read_of_a_unix_socket_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    ignore_late_wakeups(asyncio.get_running_loop())
    ignore_late_wakeups(asyncio.get_running_loop())  # a second initialize installs nothing more
    assert await cancel_a_read_as_data_arrives()
    assert _errors(caplog) == []


async def test_other_callback_errors_are_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    ignore_late_wakeups(loop)

    def fails() -> None:
        raise ValueError("a bug in a callback")

    finished = loop.create_future()
    finished.set_result(1)
    loop.call_soon(fails)
    loop.call_soon(finished.set_result, None)  # done, not cancelled: a real double answer
    cancelled = loop.create_future()
    cancelled.cancel()
    loop.call_soon(cancelled.set_result, 42)  # a value lost, not a wake-up
    for _ in range(3):
        await asyncio.sleep(0)
    errors = _errors(caplog)
    assert len(errors) == 3 and "fails" in errors[0], errors


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _answer_to(stdout: IO[bytes], msg_id: int) -> dict[str, Any]:
    """Read the server's messages until the answer to `msg_id`."""
    while True:
        length = 0
        while (line := stdout.readline().strip()) != b"":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        assert length, "the server closed its output"
        message = json.loads(stdout.read(length))
        if message.get("id") == msg_id and "method" not in message:
            return dict(message)


def test_the_server_exits_cleanly_after_a_cancelled_read() -> None:
    """The real server, over stdio: initialize, the race in its own loop, shutdown, exit; nothing
    on stderr but its start-up lines (no daemon: `initialized` is never sent)."""
    env = env_for(new_runtime_dir())
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "late_wakeup.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    try:
        for msg_id, method, params in [
            (1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}}),
            (2, "workspace/executeCommand", {"command": CANCELLED_READ_COMMAND}),
            (3, "shutdown", None),
        ]:
            process.stdin.write(_frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}))
            process.stdin.flush()
            answer = _answer_to(process.stdout, msg_id)
            assert "error" not in answer, answer
            if msg_id == 2:
                assert answer["result"] is True, "the read was not cancelled as arranged"
        process.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        process.stdin.close()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()  # our own child, by its handle
            process.wait()
        stderr = process.stderr.read().decode(errors="replace")
        shutil.rmtree(env["NEARCODE_RUNTIME_DIR"], ignore_errors=True)
    assert "InvalidStateError" not in stderr and "Traceback" not in stderr, stderr
