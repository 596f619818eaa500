"""Typing through a suggestion and joining an in-flight request: answers without a model call."""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.support import FIB, daemon_status
from tests.test_lsp_completion import inline, inline_params, open_doc


def type_text(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line, character), end=types.Position(line, character)),
                    text=text,
                )
            ],
        )
    )


async def status(client: LanguageClient) -> dict[str, int]:
    """How the server answered so far (nearcode.status `served`), keys prefixed served_."""
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
    return {f"served_{key}": count for key, count in result["served"].items()}


async def test_typing_through_and_deleting_back(lsp: LanguageClient, daemon_env: dict[str, str]) -> None:
    uri = "file:///tmp/nc-test/typing.py"
    open_doc(lsp, uri, FIB)
    first = await inline(lsp, uri, 3, 8)
    assert first and first[0].insert_text == "a, b = b, a + b"
    # The language server's own count of model calls: the daemon's also counts the speculation
    # started after the first answer, which may end at any moment.
    model_calls_before = (await status(lsp)).get("served_model", 0)
    type_text(lsp, uri, 2, 3, 8, "a, b")
    typed = await inline(lsp, uri, 3, 12, invoked=False)
    assert typed and typed[0].insert_text == " = b, a + b"
    # Delete two characters: the suggestion walks back with them.
    lsp.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(3, 10), end=types.Position(3, 12)), text=""
                )
            ],
        )
    )
    back = await inline(lsp, uri, 3, 10, invoked=False)
    assert back and back[0].insert_text == " b = b, a + b"
    counters = await status(lsp)
    assert counters.get("served_model", 0) == model_calls_before, "no model call for typed-through answers"
    assert counters["served_cache"] == 2


async def test_follow_up_keystroke_joins_the_in_flight_request(lsp: LanguageClient, daemon_env: dict[str, str]) -> None:
    uri = "file:///tmp/nc-test/join.py"
    open_doc(lsp, uri, FIB.replace("fib", "fibonacci"))
    daemon_before = daemon_status(daemon_env)["requests"]
    first = asyncio.ensure_future(
        lsp.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 3, 8, invoked=True), msg_id="first"
        )
    )
    await asyncio.sleep(0.3)  # the first request is reading its prompt
    # The editor cancels the unanswered request and asks again after the next keystroke.
    lsp.protocol.notify("$/cancelRequest", types.CancelParams(id="first"))
    type_text(lsp, uri, 2, 3, 8, "a")
    second = await inline(lsp, uri, 3, 9)
    assert second and second[0].insert_text == ", b = b, a + b"
    await asyncio.gather(first, return_exceptions=True)
    counters = await status(lsp)
    assert counters["served_joined"] == 1 and counters["served_model"] == 1
    assert daemon_status(daemon_env)["requests"] == daemon_before + 1, "one model call for both keystrokes"


async def test_multi_line_answers_at_its_first_line_and_caches_the_rest(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/first-line.py"
    open_doc(lsp, uri, "def fibonacci(n):\n    \n")
    first = await inline(lsp, uri, 1, 4)
    assert first, "expected the start of the function body"
    counters = await status(lsp)
    assert counters.get("served_first_line") == 1, "answered at the first complete line"
    assert first[0].insert_text.strip() and "\n" not in first[0].insert_text.strip()
    # The generation went on into the cache: asking again at the same place gets more, at once.
    fuller: list[types.InlineCompletionItem] = []
    for _ in range(40):
        await asyncio.sleep(0.25)
        fuller = await inline(lsp, uri, 1, 4, invoked=False)
        if fuller and "\n" in fuller[0].insert_text:
            break
    assert fuller and fuller[0].insert_text.startswith(first[0].insert_text)
    assert "\n" in fuller[0].insert_text
    assert (await status(lsp))["served_model"] == 1, "the second answer came from the cache"
