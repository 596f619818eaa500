"""The language server on the real daemon and model, through a real LSP client (pytest-lsp)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import start_lsp
from tests.support import FIB, daemon_status


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
        )
    )


def inline_params(uri: str, line: int, character: int, invoked: bool = False) -> types.InlineCompletionParams:
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def inline(
    client: LanguageClient, uri: str, line: int, character: int, invoked: bool = True
) -> list[types.InlineCompletionItem]:
    """Invoked by default: the generous deadline keeps a busy CI machine from cutting the answer."""
    result = await client.text_document_inline_completion_async(inline_params(uri, line, character, invoked))
    if result is None:
        return []
    return list(result.items) if isinstance(result, types.InlineCompletionList) else list(result)


async def test_fibonacci_loop_body(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/fib.py"
    open_doc(lsp, uri, FIB)
    items = await inline(lsp, uri, 3, 8)
    assert items, "expected a suggestion for the loop body"
    assert items[0].insert_text.strip() == "a, b = b, a + b"
    assert items[0].command is not None and items[0].command.command == "nearcode.didAcceptCompletion"


async def test_incremental_edit_then_single_line(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/fib-edit.py"
    open_doc(lsp, uri, FIB)
    # Incremental sync: type `a, b = ` into the loop body; the suggestion must continue it.
    lsp.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(3, 8), end=types.Position(3, 8)), text="a, b = "
                )
            ],
        )
    )
    items = await inline(lsp, uri, 3, 15)
    assert items, "expected the rest of the line"
    assert items[0].insert_text.strip() == "b, a + b"


async def test_cancel_stops_generation_within_two_tokens(lsp: LanguageClient, daemon_env: dict[str, str]) -> None:
    uri = "file:///tmp/nc-test/long.py"
    # An empty class body asks for several lines: long enough to cancel in the middle.
    source = "class Matrix:\n    \"\"\"A dense matrix of floats.\"\"\"\n\n    \n"
    open_doc(lsp, uri, source)
    before = daemon_status(daemon_env)
    request = asyncio.ensure_future(
        lsp.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 3, 4, invoked=True), msg_id="cancel-me"
        )
    )
    # Wait until the engine has produced tokens for this request, then cancel it.
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        await asyncio.sleep(0.05)
        status = daemon_status(daemon_env)
        if status["running"]["interactive"] and status["generated_tokens"] == before["generated_tokens"]:
            # Still reading the prompt or generating; wait a little into generation.
            await asyncio.sleep(0.6)
            break
    lsp.protocol.notify("$/cancelRequest", types.CancelParams(id="cancel-me"))
    with contextlib.suppress(Exception):  # -32800 RequestCancelled is the expected answer
        await asyncio.wait_for(request, 10)
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up:
        after = daemon_status(daemon_env)
        if after["cancelled_in_engine"] > before["cancelled_in_engine"]:
            break
        await asyncio.sleep(0.05)
    assert after["cancelled_in_engine"] == before["cancelled_in_engine"] + 1, "the engine was not cancelled"
    assert after["tokens_after_cancel_max"] <= 2


async def test_completion_for_clients_without_inline_support(daemon_env: dict[str, str]) -> None:
    client = await start_lsp(daemon_env, inline=False)
    try:
        uri = "file:///tmp/nc-test/fib2.py"
        open_doc(client, uri, FIB)
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(3, 8),
                context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
            )
        )
        assert isinstance(result, types.CompletionList) and result.items
        edit = result.items[0].text_edit
        assert isinstance(edit, types.TextEdit)
        assert edit.new_text.strip() == "a, b = b, a + b"
    finally:
        await client.shutdown_session()


async def test_status_counts_shown_and_accepted(lsp: LanguageClient) -> None:
    uri = "file:///tmp/nc-test/fib3.py"
    open_doc(lsp, uri, FIB)
    items = await inline(lsp, uri, 3, 8)
    assert items
    lsp.protocol.notify("textDocument/didShowCompletion", {"item": {"insertText": items[0].insert_text}})
    lsp.protocol.notify(
        "textDocument/didPartiallyAcceptCompletion", {"item": {"insertText": items[0].insert_text}, "acceptedLength": 3}
    )
    assert items[0].command is not None
    await lsp.workspace_execute_command_async(
        types.ExecuteCommandParams(command=items[0].command.command, arguments=items[0].command.arguments)
    )
    status = await lsp.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
    assert status["shown"] == 1 and status["partiallyAccepted"] == 1 and status["accepted"] == 1
    assert status["state"] == "ready" and status["localOnly"] is True
