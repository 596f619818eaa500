"""`nearcode lsp --stdio`: the pygls language server editors start.

This module makes the one server and registers every LSP method and command on it, in one table;
the handlers live by what they are about:

- lsp/server_state.py: `NearcodeServer`, the session's state, status and the completion run;
- lsp/lifecycle.py: initialize, initialized, settings, workspace folders, shutdown;
- lsp/document_events.py: didOpen, didChange, didClose, the editor's focus;
- lsp/completion_handlers.py: inline completion, the completion popup, shown / accepted;
- lsp/commands.py: code actions and `workspace/executeCommand`;
- lsp/rpc.py: the JSON-RPC protocol under them (UTF-16 documents, answers for bad input).

Handlers stay thin: they turn LSP messages into a CursorText, run the shared completion pipeline
(lsp/completion.py) and turn its outcome back into LSP items. `$/cancelRequest` cancels the async
handler, which closes the daemon stream, which stops the engine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from nearcode.lsp import commands, completion_handlers, document_events, lifecycle
from nearcode.lsp.code_actions.handlers import CODE_ACTION_KINDS
from nearcode.lsp.server_state import NearcodeServer
from nearcode.shared import privacy
from nearcode.shared.heap_trace import start_if_asked
from nearcode.shared.native_memory import freeze_startup_objects, tune_malloc
from nearcode.shared.protocol.editor import (
    ACCEPT_COMMAND,
    ASK_CLOUD_COMMAND,
    DID_PARTIALLY_ACCEPT_NOTIFICATION,
    DID_SHOW_NOTIFICATION,
    DOCSTRING_COMMAND,
    FOCUS_NOTIFICATION,
    PREVIEW_CLOUD_COMMAND,
    SHOW_CONTEXT_COMMAND,
    STATUS_COMMAND,
    TESTS_COMMAND,
)

# LSP methods and nearcode's notifications: (method, handler, its options in the capabilities).
FEATURES: tuple[tuple[str, Callable[..., Any], Any], ...] = (
    (types.INITIALIZE, lifecycle.on_initialize, None),
    (types.INITIALIZED, lifecycle.on_initialized, None),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, lifecycle.on_configuration, None),
    (types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS, lifecycle.on_workspace_folders, None),
    (types.SHUTDOWN, lifecycle.on_shutdown, None),
    (types.TEXT_DOCUMENT_DID_OPEN, document_events.did_open, None),
    (types.TEXT_DOCUMENT_DID_CHANGE, document_events.did_change, None),
    (types.TEXT_DOCUMENT_DID_CLOSE, document_events.did_close, None),
    (FOCUS_NOTIFICATION, document_events.did_focus, None),
    (types.TEXT_DOCUMENT_INLINE_COMPLETION, completion_handlers.inline_completion, types.InlineCompletionOptions()),
    (types.TEXT_DOCUMENT_COMPLETION, completion_handlers.completion, types.CompletionOptions(resolve_provider=False)),
    (DID_SHOW_NOTIFICATION, completion_handlers.did_show, None),
    (DID_PARTIALLY_ACCEPT_NOTIFICATION, completion_handlers.did_partially_accept, None),
    (types.TEXT_DOCUMENT_CODE_ACTION, commands.code_action, types.CodeActionOptions(code_action_kinds=CODE_ACTION_KINDS)),
)

# `workspace/executeCommand` commands: (command, handler).
COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    (ACCEPT_COMMAND, completion_handlers.did_accept),
    (STATUS_COMMAND, commands.status_command),
    (DOCSTRING_COMMAND, commands.generate_docstring),
    (TESTS_COMMAND, commands.generate_tests),
    (ASK_CLOUD_COMMAND, commands.ask_cloud),
    (SHOW_CONTEXT_COMMAND, commands.show_context_command),
    (PREVIEW_CLOUD_COMMAND, commands.preview_cloud_payload),
)


def build_server() -> NearcodeServer:
    ls = NearcodeServer()
    for method, handler, options in FEATURES:
        ls.feature(method, options)(handler)
    for command, handler in COMMANDS:
        ls.command(command)(handler)
    return ls


server = build_server()


def run_stdio() -> None:
    tune_malloc()  # before pygls's reader and the insight writer start their threads
    # Local-only until the settings say otherwise: the guard is in place before any handler runs.
    privacy.install_network_guard("lsp", privacy.LOCAL_ONLY)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nearcode-lsp %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # its debug/info logs carry message bodies
    logging.getLogger("httpx").setLevel(logging.WARNING)
    debug_commands = os.environ.get("NEARCODE_DEBUG_COMMANDS") == "1"
    if debug_commands:
        server.command(commands.DEBUG_DOCUMENT_COMMAND)(commands.debug_document)
    if start_if_asked() or debug_commands:  # the soak names what grows here too
        server.command(commands.DEBUG_HEAP_COMMAND)(commands.debug_heap)
    freeze_startup_objects()  # full collections often and cheap: dead objects do not pile up
    server.start_io()
