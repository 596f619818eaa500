"""How the language server takes messages apart (lsp/rpc.py): a method lsprotocol has no type for
(nearcode's own notifications, the editor's answers to our requests) keeps its parameters as plain
JSON. pygls made a namedtuple class for every object of every such message, garbage that only the
cyclic collector frees (issue 12's soak: the language servers' memory crept while suggestions were
shown, and not while typing alone)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest

from nearcode.lsp.server_state import NearcodeServer
from nearcode.shared.protocol.editor import DID_PARTIALLY_ACCEPT_NOTIFICATION, DID_SHOW_NOTIFICATION

ITEM = {"insertText": "return a + b", "range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 4}},
        "command": {"title": "accepted", "command": "nearcode.accepted", "arguments": ["c1-0"]}}


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def parse(server: NearcodeServer, message: dict[str, object]) -> object:
    return json.loads(json.dumps(message), object_hook=server.protocol.structure_message)


def test_custom_notifications_keep_their_parameters_as_json() -> None:
    server = NearcodeServer()
    shown = parse(server, {"jsonrpc": "2.0", "method": DID_SHOW_NOTIFICATION, "params": {"item": ITEM}})
    assert shown.params == {"item": ITEM}  # type: ignore[attr-defined]
    answer = parse(server, {"jsonrpc": "2.0", "id": 7, "result": {"nested": [{"a": 1}]}})
    assert answer.result == {"nested": [{"a": 1}]}  # type: ignore[attr-defined]


def test_a_shown_suggestion_leaves_nothing_for_the_cyclic_collector(no_collector: None) -> None:
    server = NearcodeServer()
    for i in range(300):
        parse(server, {"jsonrpc": "2.0", "method": DID_SHOW_NOTIFICATION, "params": {"item": ITEM}})
        parse(server, {"jsonrpc": "2.0", "method": DID_PARTIALLY_ACCEPT_NOTIFICATION,
                       "params": {"item": ITEM, "acceptedLength": i % 7, "acceptKind": "word"}})
    # pygls's own structuring left ~113,000 objects in cycles here (a class and its code per JSON object).
    assert gc.collect() < 100
