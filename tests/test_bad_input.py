"""Bad input gets a clear error or an empty answer, and the server goes on serving."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.support import FIB, NEARCODE
from tests.test_lsp_completion import inline, open_doc


async def assert_still_serving(client: LanguageClient) -> None:
    uri = f"file:///tmp/nc-test/alive-{time.monotonic_ns()}.py"
    open_doc(client, uri, FIB)
    items = await inline(client, uri, 3, 8)
    assert items and items[0].insert_text.strip(), "the server must still answer with a suggestion"


async def test_position_past_the_end(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/short.py"
    open_doc(lsp, uri, "x = 1\n")
    with pytest.raises(JsonRpcException, match="outside the document"):
        await inline(lsp, uri, 40, 0)
    await assert_still_serving(lsp)


async def test_unknown_uri(lsp: LanguageClient) -> None:
    with pytest.raises(JsonRpcException, match="not open"):
        await inline(lsp, "file:///tmp/nc-test/never-opened.py", 0, 0)
    await assert_still_serving(lsp)


async def test_binary_content_gets_no_suggestion(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/blob.bin"
    open_doc(lsp, uri, "\x00\x01\x02ELF\x00\x00garbage\n\x00\x7f", language="plaintext")
    assert await inline(lsp, uri, 1, 0) == []
    await assert_still_serving(lsp)


async def test_five_megabyte_file(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/huge.py"
    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(150_000))
    assert len(body) > 5_000_000
    text = body + "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        \n"
    open_doc(lsp, uri, text)
    line = text.count("\n") - 1
    items = await inline(lsp, uri, line, 8)
    # Only a window around the cursor is read: the answer is the usual one.
    assert items and items[0].insert_text.strip().startswith("a, b = b")
    await assert_still_serving(lsp)


def _frame(payload: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(payload) + payload


def _read_message(stream: object, deadline: float) -> dict[str, object]:
    read = stream.readline  # type: ignore[attr-defined]
    length = 0
    while time.monotonic() < deadline:
        line = read()
        if not line:
            raise EOFError("server closed stdout")
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        elif line in (b"\r\n", b"\n") and length:
            return dict(json.loads(stream.read(length)))  # type: ignore[attr-defined]
    raise TimeoutError


def test_malformed_json_rpc_then_valid_requests(daemon_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [*NEARCODE, "lsp", "--stdio"], env=daemon_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        deadline = time.monotonic() + 60
        process.stdin.write(_frame(b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {'))  # cut off
        process.stdin.write(_frame(b"not json at all"))
        process.stdin.write(_frame(b'{"jsonrpc": "2.0", "id": 2, "method": "no/suchMethod", "params": {}}'))
        process.stdin.write(_frame(json.dumps(
            {"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"capabilities": {}, "processId": os.getpid()}}
        ).encode()))
        process.stdin.flush()
        answers: dict[object, dict[str, object]] = {}
        notices: list[dict[str, object]] = []
        while 3 not in answers:
            message = _read_message(process.stdout, deadline)
            if "id" in message:
                answers[message["id"]] = message
            else:
                notices.append(message)
        assert answers[2]["error"]["code"] == -32601  # type: ignore[index]
        result = answers[3]["result"]
        assert result["capabilities"]["inlineCompletionProvider"] is not None  # type: ignore[index]
        # Both unparseable messages are answered with a parse error (id null) and nothing else.
        parse_errors = [m for m in notices if "method" not in m and m.get("error")]
        assert [e["error"]["code"] for e in parse_errors] == [-32700, -32700], parse_errors  # type: ignore[index]
        assert all(e.get("id") is None for e in parse_errors)
        assert "malformed" in str(parse_errors[0]["error"])
        assert process.poll() is None, "the server must survive malformed input"
    finally:
        process.kill()
        process.wait()


async def test_settings_turn_completions_off(lsp: LanguageClient) -> None:
    lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"nearcode": {"enable": False}}))
    uri = "file:///tmp/nc-test/off.py"
    open_doc(lsp, uri, FIB)
    await asyncio.sleep(0.1)
    assert await inline(lsp, uri, 3, 8) == []
    lsp.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nearcode": {"enable": True, "disabledLanguages": ["python"]}})
    )
    assert await inline(lsp, uri, 3, 8) == []
    lsp.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nearcode": {"disabledLanguages": []}})
    )
    await assert_still_serving(lsp)
