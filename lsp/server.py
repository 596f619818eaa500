"""`nearcode lsp --stdio`: the pygls language server editors start.

Handlers stay thin: they turn LSP messages into a CursorText, run the shared completion pipeline
(lsp/completion.py) and turn its outcome back into LSP items. `$/cancelRequest` cancels the async
handler, which closes the daemon stream, which stops the engine.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, OrderedDict
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcParseError
from pygls.lsp.server import LanguageServer

from nearcode import __version__
from nearcode.lsp.alternatives import alternative_id
from nearcode.lsp.cloud.handoff import run_ask_cloud
from nearcode.lsp.code_actions.docstring_command import run_docstring
from nearcode.lsp.code_actions.handlers import CODE_ACTION_KINDS, code_actions, first_argument
from nearcode.lsp.code_actions.streaming import ActionContext
from nearcode.lsp.code_actions.tests_command import run_generate_tests
from nearcode.lsp.completion import CompletionOutcome, CursorText, ask_alternatives
from nearcode.lsp.coordinator import CompletionCoordinator
from nearcode.lsp.daemon_client import DaemonClient, DaemonUnavailable
from nearcode.lsp.documents import cursor_at
from nearcode.lsp.insight.session import InsightSession
from nearcode.shared import privacy
from nearcode.shared.protocol.daemon_api import StatusEvent
from nearcode.shared.protocol.editor import (
    ACCEPT_COMMAND,
    ASK_CLOUD_COMMAND,
    DID_PARTIALLY_ACCEPT_NOTIFICATION,
    DID_SHOW_NOTIFICATION,
    DOCSTRING_COMMAND,
    PREVIEW_CLOUD_COMMAND,
    STATUS_COMMAND,
    STATUS_NOTIFICATION,
    TESTS_COMMAND,
    ServerState,
    StatusParams,
    StatusResult,
)
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")



class NearcodeServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nearcode", __version__)
        self.settings = Settings()
        self.daemon = DaemonClient()
        self.client_id = uuid.uuid4().hex[:12]
        self.coordinator = CompletionCoordinator(self.daemon, self.client_id)
        self.state: ServerState = "loading"
        self.message = ""
        self.model_name = ""
        self.engine_name = ""
        self.last_latency_ms: float | None = None
        self.counters: Counter[str] = Counter()
        self.offered: OrderedDict[str, str] = OrderedDict()  # completion id -> text, most recent last
        self.client_has_inline = False
        self.engine_batches = False  # the daemon's engine batches requests (vLLM): alternatives are cheap
        self.insight = InsightSession(lambda: self.workspace, lambda: self.settings.insight)
        self.coordinator.on_status = self.on_daemon_status

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, ValueError) and source is JsonRpcException:
            # An unparseable message from the editor: JSON-RPC answers it with id null and -32700.
            # Logged, not shown: the user cannot act on a client's framing bug.
            log.warning("ignored a malformed JSON-RPC message: %s", error)
            self.protocol._send_response(
                None,  # type: ignore[arg-type]
                error=JsonRpcParseError(f"nearcode: malformed JSON-RPC message ignored: {error}").to_response_error(),
            )
            return
        super().report_server_error(error, source)

    def send_status(self, state: ServerState | None = None, message: str = "") -> None:
        if state is not None:
            self.state = state
            self.message = message
        self.protocol.notify(STATUS_NOTIFICATION, self.status().wire())

    def status(self) -> StatusParams:
        return StatusParams(
            state="off" if not self.settings.enable else self.state,
            engine=self.engine_name,
            model=self.model_name,
            last_latency_ms=self.last_latency_ms,
            local_only=self.settings.privacy_mode == "local-only",
            message=self.message,
        )

    def on_daemon_status(self, event: StatusEvent) -> None:
        """The daemon is loading the model again (released while idle): say so until it answers."""
        self.send_status(event.state, event.message)

    async def run_completion(self, cursor: CursorText, invoked: bool, choices: int = 1) -> CompletionOutcome:
        """One completion; `choices` > 1: the client shows alternatives (inline completion). They
        are computed when asked for (an explicit request, or VS Code cycling), and always where
        the engine batches them into one pass; on the embedded engine each costs its generation."""
        self.counters["requested"] += 1
        self.coordinator.choices = choices if self.engine_batches else 1
        try:
            outcome = await self.coordinator.complete(cursor, self.settings, invoked)
            if invoked and choices > 1 and outcome.offered and not outcome.alternatives:
                # The user asked (or VS Code cycles): the sampled ones, after the first is there.
                # The next-line speculation would hold the document's slot meanwhile.
                self.counters["alternativesRequested"] += 1
                self.coordinator.cancel_speculation(cursor.uri)
                outcome.alternatives = await ask_alternatives(
                    self.daemon, cursor, self.settings, self.client_id, outcome, choices - 1, self.on_daemon_status
                )
        except DaemonUnavailable as exc:
            log.error("daemon unavailable: %s", exc)
            self.send_status("error", str(exc))
            return CompletionOutcome(reason=f"daemon unavailable: {exc}")
        if self.state != "ready":
            await self.refresh_model_name()
            self.state, self.message = "ready", ""
        if outcome.offered:
            self.counters["offered"] += 1
            self.counters["alternativesOffered"] += len(outcome.alternatives)
            self.last_latency_ms = outcome.latency_ms
            self.offered[outcome.completion_id] = outcome.text
            while len(self.offered) > 200:
                self.offered.popitem(last=False)
        self.send_status()
        return outcome

    async def refresh_model_name(self) -> None:
        try:
            info = await self.daemon.get_json("/api/model")
            self.model_name = str(info.get("model", ""))
            self.engine_name = str(info.get("engine", ""))
            self.engine_batches = bool(info.get("batches", False))
        except Exception:  # status is cosmetic: never fail a completion over it
            log.debug("could not read model info", exc_info=True)


server = NearcodeServer()


def _field(params: Any, name: str, default: Any = None) -> Any:
    """Custom notifications arrive as dicts or namedtuples depending on the path through pygls."""
    if isinstance(params, dict):
        return params.get(name, default)
    return getattr(params, name, default)


@server.feature(types.INITIALIZE)
def on_initialize(ls: NearcodeServer, params: types.InitializeParams) -> None:
    ls.settings, problem = ls.settings.merged(params.initialization_options)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if problem:
        log.warning(problem)
    text_caps = params.capabilities.text_document
    ls.client_has_inline = bool(text_caps and text_caps.inline_completion)
    ls.insight.use_position_encoding(ls.workspace.position_encoding)
    args: list[str] = []
    if ls.settings.model:
        args += ["--model", ls.settings.model]
    if ls.settings.engine != "auto":
        args += ["--engine", ls.settings.engine]
    ls.daemon.daemon_args = tuple(args)


@server.feature(types.INITIALIZED)
async def on_initialized(ls: NearcodeServer, params: types.InitializedParams) -> None:
    ls.send_status("loading", "starting the nearcode daemon")
    try:
        await ls.daemon.connect()
        await ls.refresh_model_name()
        ls.send_status("ready")
    except DaemonUnavailable as exc:
        ls.send_status("error", str(exc))
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"nearcode: {exc}"))


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_configuration(ls: NearcodeServer, params: types.DidChangeConfigurationParams) -> None:
    ls.settings, problem = ls.settings.merged(params.settings)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if problem:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"nearcode: {problem}"))
    ls.send_status()


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: NearcodeServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.coordinator.forget(params.text_document.uri)
    ls.insight.closed(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: NearcodeServer, params: types.DidChangeTextDocumentParams) -> None:
    # pygls has applied the changes to its copy already; insight follows suggestions through them.
    ls.insight.changed(params)


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: NearcodeServer, params: None) -> None:
    ls.insight.close()


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(
    ls: NearcodeServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    cursor = cursor_at(ls.workspace, params.text_document.uri, params.position)
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    outcome = await ls.run_completion(cursor, invoked, choices=ls.settings.alternatives)
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


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))
async def completion(ls: NearcodeServer, params: types.CompletionParams) -> types.CompletionList:
    """For clients without inline completion (Emacs eglot, Neovim < 0.12 without the plugin)."""
    empty = types.CompletionList(is_incomplete=True, items=[])
    if ls.client_has_inline:
        return empty  # the client asks for ghost text; a popup as well would call the model twice
    cursor = cursor_at(ls.workspace, params.text_document.uri, params.position)
    invoked = bool(params.context and params.context.trigger_kind == types.CompletionTriggerKind.Invoked)
    outcome = await ls.run_completion(cursor, invoked)
    if not outcome.offered:
        return empty
    ls.insight.offered(params.position, cursor, outcome, invoked, ls.engine_name, ls.model_name)
    # Replace the word before the cursor so editors that filter by it keep the item.
    line_prefix = cursor.prefix[cursor.prefix.rfind("\n") + 1 :]
    word = _trailing_word(line_prefix)
    start = types.Position(params.position.line, params.position.character - _utf16_len(word))
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


@server.feature(DID_SHOW_NOTIFICATION)
def did_show(ls: NearcodeServer, params: Any) -> None:
    ls.counters["shown"] += 1
    ls.insight.shown(_field(params, "item"))


@server.feature(DID_PARTIALLY_ACCEPT_NOTIFICATION)
def did_partially_accept(ls: NearcodeServer, params: Any) -> None:
    accepted = int(_field(params, "acceptedLength", 0) or 0)
    ls.counters["partiallyAccepted"] += 1
    ls.counters["partiallyAcceptedChars"] += accepted
    kind = "line" if _field(params, "acceptKind") == "line" else "word"
    ls.insight.partially_accepted(_field(params, "item"), accepted, kind)


@server.command(ACCEPT_COMMAND)
def did_accept(ls: NearcodeServer, *args: Any) -> None:
    ls.counters["accepted"] += 1
    if args:
        ls.insight.accepted(args[0])


@server.command(STATUS_COMMAND)
async def status_command(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    counts = ls.counters
    return StatusResult(
        **ls.status().model_dump(),
        requested=counts["requested"], offered=counts["offered"], shown=counts["shown"],
        accepted=counts["accepted"], partially_accepted=counts["partiallyAccepted"],
        alternatives_offered=counts["alternativesOffered"],
        served=dict(ls.coordinator.counters), network=privacy.network_status(),
    ).wire()


def _actions(ls: NearcodeServer) -> ActionContext:
    return ActionContext(ls, ls.daemon, ls.settings, ls.client_id)


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=CODE_ACTION_KINDS))
def code_action(ls: NearcodeServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    return code_actions(_actions(ls), params)


@server.command(DOCSTRING_COMMAND)
async def generate_docstring(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return (await run_docstring(_actions(ls), first_argument(args))).wire()


@server.command(TESTS_COMMAND)
async def generate_tests(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return (await run_generate_tests(_actions(ls), first_argument(args))).wire()


@server.command(ASK_CLOUD_COMMAND)
async def ask_cloud(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return (await run_ask_cloud(_actions(ls), first_argument(args))).wire()


@server.command(PREVIEW_CLOUD_COMMAND)
async def preview_cloud_payload(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return (await run_ask_cloud(_actions(ls), first_argument(args), preview_only=True)).wire()


def _trailing_word(text: str) -> str:
    i = len(text)
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
        i -= 1
    return text[i:]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def run_stdio() -> None:
    # Local-only until the settings say otherwise: the guard is in place before any handler runs.
    privacy.install_network_guard("lsp", privacy.LOCAL_ONLY)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nearcode-lsp %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # its debug/info logs carry message bodies
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server.start_io()
