"""Suggestions for the editor: inline completion (ghost text), the completion popup for clients
without it, and what became of a suggestion (shown, partly accepted, accepted).

Each turns the LSP request into a CursorText, runs `NearcodeServer.run_completion` (the shared
pipeline, lsp/completion.py) and turns its outcome back into LSP items; `$/cancelRequest` cancels
the handler, which closes the daemon stream, which stops the engine. lsp/server.py registers them.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from nearcode.lsp.alternatives import alternative_id
from nearcode.lsp.documents import cursor_at
from nearcode.lsp.rpc import message_field
from nearcode.lsp.server_state import NearcodeServer
from nearcode.shared.protocol.editor import ACCEPT_COMMAND
from nearcode.shared.text import utf16_length


async def inline_completion(
    ls: NearcodeServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    cursor = cursor_at(ls.workspace, params.text_document.uri, params.position)
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    outcome = await ls.run_completion(cursor, invoked, params.position, choices=ls.settings.alternatives)
    if not outcome.offered:
        return types.InlineCompletionList(items=[])
    ls.insight.offered(params.position, cursor, outcome, invoked, ls.engine_name, ls.model_name)
    here = types.Range(start=params.position, end=params.position)
    # Several items: VS Code's inline-suggestion toolbar cycles them, the Neovim plugin with <M-]>.
    items = [
        types.InlineCompletionItem(
            insert_text=text,
            range=here,
            command=types.Command(
                title="accepted", command=ACCEPT_COMMAND, arguments=[alternative_id(outcome.completion_id, index)]
            ),
        )
        for index, text in enumerate([outcome.text, *outcome.alternatives])
    ]
    return types.InlineCompletionList(items=items)


async def completion(ls: NearcodeServer, params: types.CompletionParams) -> types.CompletionList:
    """For clients without inline completion (Emacs eglot, Neovim < 0.12 without the plugin)."""
    empty = types.CompletionList(is_incomplete=True, items=[])
    if ls.client_has_inline:
        return empty  # the client asks for ghost text; a popup as well would call the model twice
    cursor = cursor_at(ls.workspace, params.text_document.uri, params.position)
    invoked = bool(params.context and params.context.trigger_kind == types.CompletionTriggerKind.Invoked)
    outcome = await ls.run_completion(cursor, invoked, params.position)
    if not outcome.offered:
        return empty
    ls.insight.offered(params.position, cursor, outcome, invoked, ls.engine_name, ls.model_name)
    # Replace the word before the cursor so editors that filter by it keep the item.
    line_prefix = cursor.prefix[cursor.prefix.rfind("\n") + 1 :]
    word = _trailing_word(line_prefix)
    start = types.Position(params.position.line, params.position.character - utf16_length(word))
    new_text = word + outcome.text
    first_line = outcome.text.split("\n", 1)[0].strip() or outcome.text.strip()
    item = types.CompletionItem(
        label=(word + first_line)[:80],
        kind=types.CompletionItemKind.Text,
        detail="nearcode",
        sort_text="0",
        filter_text=new_text,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=start, end=params.position), new_text=new_text),
        command=types.Command(title="accepted", command=ACCEPT_COMMAND, arguments=[outcome.completion_id]),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def did_show(ls: NearcodeServer, params: Any) -> None:
    ls.counters["shown"] += 1
    ls.insight.shown(message_field(params, "item"))


def did_partially_accept(ls: NearcodeServer, params: Any) -> None:
    accepted = int(message_field(params, "acceptedLength", 0) or 0)
    ls.counters["partiallyAccepted"] += 1
    ls.counters["partiallyAcceptedChars"] += accepted
    kind = "line" if message_field(params, "acceptKind") == "line" else "word"
    ls.insight.partially_accepted(message_field(params, "item"), accepted, kind)


def did_accept(ls: NearcodeServer, *args: Any) -> None:
    ls.counters["accepted"] += 1
    if args:
        ls.insight.accepted(args[0])



def _trailing_word(text: str) -> str:
    i = len(text)
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
        i -= 1
    return text[i:]
