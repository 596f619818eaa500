"""Text the way editors see it, on the real language server (and the real daemon behind it).

Lines end only at \\n, \\r\\n and \\r; columns count UTF-16 units, in completions and code actions;
a lone surrogate or a position that names no place is a clear JSON-RPC error (invalid params), and
a request with malformed parameters is answered, not dropped; code actions parse large documents
off the event loop, and not at all beyond a cap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.editor_session import server_document, start_watched_lsp, with_debug_commands
from tests.lsp_actions import _structure_actions, code_actions
from tests.test_bad_input import assert_still_serving
from tests.test_lsp_completion import inline, open_doc

INVALID_PARAMS = -32602


@pytest_asyncio.fixture
async def server(daemon_env: dict[str, str]) -> AsyncIterator[LanguageClient]:
    client, _ = await start_watched_lsp(with_debug_commands(daemon_env))
    _structure_actions(client.protocol._converter)
    yield client
    await client.shutdown_session()


def insert(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    here = types.Position(line=line, character=character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=here, end=here), text=text)],
        )
    )


# (document, where the editor inserts "X" (line, UTF-16 column), the editor's text afterwards)
EDITS = {
    "form feed": ("a = 1\x0c\nb = 2\nc = 3", (2, 0), "a = 1\x0c\nb = 2\nXc = 3"),
    "next line (U+0085)": ("a = 1\x85\nb = 2\nc = 3", (2, 0), "a = 1\x85\nb = 2\nXc = 3"),
    "line separator (U+2028)": ("s = 'x\u2028y'\nb = 2\nc = 3", (2, 0), "s = 'x\u2028y'\nb = 2\nXc = 3"),
    "group separator (U+001D)": ("a = 1\x1d\nb = 2", (1, 1), "a = 1\x1d\nbX = 2"),
    "lone CR": ("a = 1\rb = 2\rc = 3", (2, 0), "a = 1\rb = 2\rXc = 3"),
    "CRLF": ("a = 1\r\nb = 2\r\nc = 3", (1, 5), "a = 1\r\nb = 2X\r\nc = 3"),
    "past the line's end": ("ab\ncd", (0, 99), "abX\ncd"),
    "astral characters": ("s = '😀😀'\nt = 1", (0, 9), "s = '😀😀X'\nt = 1"),
}


@pytest.mark.parametrize("case", list(EDITS))
async def test_edits_land_where_the_editor_put_them(server: LanguageClient, case: str) -> None:
    text, (line, character), expected = EDITS[case]
    uri = f"file:///tmp/nc-test/lines-{abs(hash(case))}.py"
    open_doc(server, uri, text)
    insert(server, uri, 2, line, character, "X")
    copy = await server_document(server, uri)
    assert copy["text"] == expected and copy["version"] == 2


async def test_a_column_inside_a_surrogate_pair_is_invalid_params(server: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/pair.py"
    open_doc(server, uri, "s = '😀'\n")
    with pytest.raises(JsonRpcException, match="surrogate pair") as error:
        await inline(server, uri, 0, 6)  # between the two halves of the emoji
    assert error.value.code == INVALID_PARAMS
    await assert_still_serving(server)


async def test_malformed_parameters_are_answered_with_invalid_params(server: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/malformed.py"
    open_doc(server, uri, "x = 1\n")
    bad = {"textDocument": {"uri": uri}, "position": {"line": -1, "character": "two"}, "context": {"triggerKind": 1}}
    answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    server.protocol._request_futures["malformed-1"] = answer  # raw: the typed client would refuse it
    server.protocol._send_data(
        {"jsonrpc": "2.0", "id": "malformed-1", "method": types.TEXT_DOCUMENT_INLINE_COMPLETION, "params": bad}
    )
    with pytest.raises(JsonRpcException) as error:
        await asyncio.wait_for(answer, 20)
    assert error.value.code == INVALID_PARAMS and "invalid parameters" in str(error.value)
    await assert_still_serving(server)


LONE = "def f(x):\n    return '\ud800' + x\n\n\ndef g(y):\n    \n"


async def test_a_lone_surrogate_is_a_clear_error_for_completions_and_code_actions(server: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/lone.py"
    open_doc(server, uri, LONE)
    with pytest.raises(JsonRpcException, match=r"lone UTF-16 surrogate \(U\+D800\) at 1:12") as error:
        await inline(server, uri, 5, 4)
    assert error.value.code == INVALID_PARAMS
    with pytest.raises(JsonRpcException, match="lone UTF-16 surrogate") as error:
        await code_actions(server, uri, 0, 4)
    assert error.value.code == INVALID_PARAMS
    await assert_still_serving(server)


async def test_code_actions_count_columns_in_utf16_units(server: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/emoji.js"
    line = 'const s = "😀😀😀😀😀😀😀😀"; function foo(x) { return x; } const t = 1;'
    open_doc(server, uri, line + "\n", language="javascript")
    brace = len(line[: line.index("} const")].encode("utf-16-le")) // 2  # the editor's column of foo's `}`
    titles = [action.title for action in await code_actions(server, uri, 0, brace)]
    assert "nearcode: Generate docstring for foo" in titles, titles


async def test_code_actions_refuse_a_document_beyond_the_parse_cap(server: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/huge-actions.py"
    open_doc(server, uri, "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(120_000)))  # 3.3 MB
    started = time.monotonic()
    with pytest.raises(JsonRpcException, match="too large for code actions") as error:
        await code_actions(server, uri, 4, 4)
    assert error.value.code == INVALID_PARAMS and time.monotonic() - started < 30
    await assert_still_serving(server)


async def test_a_large_document_is_parsed_off_the_event_loop(server: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/large-actions.py"
    open_doc(server, uri, "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(50_000)))  # 1.8 MB
    order: list[str] = []
    actions = asyncio.ensure_future(code_actions(server, uri, 48_000 * 3, 4))
    actions.add_done_callback(lambda _: order.append("code actions"))
    await asyncio.sleep(0)  # sent first
    await server.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
    order.append("status")
    titles = [action.title for action in await actions]
    assert order == ["status", "code actions"], "the status had to wait for the parse"
    assert "nearcode: Generate docstring for f48000" in titles
