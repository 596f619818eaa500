"""The server's commands (`workspace/executeCommand`) and code actions: status, docstring, tests,
ask the cloud (and its preview), show context; `nearcode.debugDocument` for tests and fuzzing.

A code-action command has its document checked first, its progress always ended and a failure
answered with what went wrong (`_command`). lsp/server.py registers them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError

from nearcode.lsp.cloud.handoff import run_ask_cloud
from nearcode.lsp.code_actions.docstring_command import run_docstring
from nearcode.lsp.code_actions.handlers import code_actions, first_argument
from nearcode.lsp.code_actions.streaming import ActionContext, progress_scope
from nearcode.lsp.code_actions.tests_command import run_generate_tests
from nearcode.lsp.context import show_context
from nearcode.lsp.documents import open_document, parseable_document, require_valid_unicode
from nearcode.lsp.rpc import message_field
from nearcode.lsp.server_state import NearcodeServer
from nearcode.shared import privacy
from nearcode.shared.heap_trace import heap_report
from nearcode.shared.native_memory import allocator_report
from nearcode.shared.protocol.editor import StatusResult, WireModel

log = logging.getLogger("nearcode.lsp")

DEBUG_DOCUMENT_COMMAND = "nearcode.debugDocument"  # only with NEARCODE_DEBUG_COMMANDS=1 (tests, fuzzing)
DEBUG_HEAP_COMMAND = "nearcode.debugHeap"  # only with NEARCODE_TRACE_HEAP=1 or the debug commands (bench/soak.py)


async def status_command(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    if ls.destination is None and ls.daemon.endpoint is not None:
        await ls.refresh_model_name()  # the daemon did not answer at start: ask again
    counts = ls.counters
    return StatusResult(
        **ls.status().model_dump(),
        requested=ls.coordinator.counters["requests"], offered=counts["offered"], shown=counts["shown"],
        accepted=counts["accepted"], partially_accepted=counts["partiallyAccepted"],
        alternatives_offered=counts["alternativesOffered"],
        served=dict(ls.coordinator.counters), network=privacy.network_status(),
    ).wire()


def _actions(ls: NearcodeServer) -> ActionContext:
    return ActionContext(ls, ls.daemon, ls.settings, ls.client_id, ls.watchers)


async def code_action(ls: NearcodeServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    if params.text_document.uri in ls.workspace.text_documents and ls.settings.enable:
        parseable_document(ls.workspace, params.text_document.uri)  # size cap, valid Unicode
    # tree-sitter holds the GIL while it parses, but gives it up between the chunks it reads
    # (lsp/code_actions/symbols.py), so the event loop keeps serving keystrokes meanwhile.
    return await asyncio.to_thread(code_actions, _actions(ls), params)


CommandRun = Callable[[ActionContext, dict[str, Any]], Awaitable[WireModel]]


async def _command(ls: NearcodeServer, args: tuple[Any, ...], run: CommandRun, parses: bool = True) -> dict[str, Any]:
    """A code-action command: its document checked first, its progress always ended, a failure
    answered with what went wrong (not a traceback)."""
    argument = first_argument(args)
    uri = argument.get("uri")
    if isinstance(uri, str) and uri in ls.workspace.text_documents:
        document = parseable_document(ls.workspace, uri) if parses else open_document(ls.workspace, uri)
        require_valid_unicode(document, document.source, 0, "this command")
    try:
        async with progress_scope():
            result = await run(_actions(ls), argument)
    except (JsonRpcException, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("command failed")
        raise JsonRpcInternalError(f"nearcode: the command failed: {exc}") from exc
    return result.wire()


async def generate_docstring(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, run_docstring)


async def generate_tests(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, run_generate_tests)


async def ask_cloud(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, run_ask_cloud, parses=False)


async def show_context_command(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    argument = first_argument(args) if args else None
    uri = argument if isinstance(argument, str) else str(message_field(argument or {}, "uri", "") or "")
    return (await show_context(ls.daemon, ls.client_id, uri or ls.last_completed_uri)).wire()


async def preview_cloud_payload(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, functools.partial(run_ask_cloud, preview_only=True), parses=False)


async def debug_document(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    """The server's copy of a document, for fuzzing and tests: never registered by default."""
    uri = first_argument(args).get("uri")
    if not isinstance(uri, str) or uri not in ls.workspace.text_documents:
        return {"uri": uri, "open": False}
    document = ls.workspace.get_text_document(uri)
    return {"uri": uri, "open": True, "version": document.version, "text": document.source}


async def debug_heap(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    """This server's memory by allocator, what it keeps between requests and, while tracing, its
    traced Python heap and largest sites (nearcode/shared/heap_trace.py)."""
    return {"allocator": allocator_report(), "caches": ls.cache_sizes(), **(heap_report() or {})}
