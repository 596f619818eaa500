"""`nearcode lsp --stdio`: the pygls language server editors start.

Handlers stay thin: they turn LSP messages into a CursorText, run the shared completion pipeline
(lsp/completion.py) and turn its outcome back into LSP items. `$/cancelRequest` cancels the async
handler, which closes the daemon stream, which stops the engine.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from nearcode import __version__
from nearcode.lsp.alternatives import alternative_id
from nearcode.lsp.client_settings import pull_settings
from nearcode.lsp.cloud.handoff import run_ask_cloud
from nearcode.lsp.code_actions.docstring_command import run_docstring
from nearcode.lsp.code_actions.handlers import CODE_ACTION_KINDS, code_actions, first_argument
from nearcode.lsp.code_actions.live_region import DocumentWatchers
from nearcode.lsp.code_actions.streaming import ActionContext, progress_scope
from nearcode.lsp.code_actions.tests_command import run_generate_tests
from nearcode.lsp.completion import CompletionOutcome, CursorText, ask_alternatives
from nearcode.lsp.context import ReadAhead, show_context
from nearcode.lsp.coordinator import CompletionCoordinator
from nearcode.lsp.daemon_client import (
    DaemonClient,
    DaemonRestarting,
    DaemonStartFailed,
    DaemonTimeout,
    DaemonUnavailable,
)
from nearcode.lsp.documents import (
    cursor_at,
    open_document,
    parseable_document,
    require_valid_unicode,
    text_and_offset,
)
from nearcode.lsp.insight.session import InsightSession
from nearcode.lsp.problems import ProblemKind, Problems
from nearcode.lsp.rpc import MalformedMessage, NearcodeProtocol
from nearcode.lsp.workspace_sync import WorkspaceSync
from nearcode.shared import paths, privacy
from nearcode.shared.protocol.daemon_api import StatusEvent
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
    STATUS_NOTIFICATION,
    TESTS_COMMAND,
    ServerState,
    StatusParams,
    StatusResult,
    WireModel,
)
from nearcode.shared.protocol.settings import Settings
from nearcode.shared.text import utf16_length

log = logging.getLogger("nearcode.lsp")

DEBUG_DOCUMENT_COMMAND = "nearcode.debugDocument"  # only with NEARCODE_DEBUG_COMMANDS=1 (tests, fuzzing)

class NearcodeServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nearcode", __version__, protocol_cls=NearcodeProtocol)
        self.settings = Settings()
        self.daemon = DaemonClient()
        self.client_id = uuid.uuid4().hex[:12]
        self.coordinator = CompletionCoordinator(self.daemon, self.client_id)
        self.read_ahead = ReadAhead(self.daemon, self.client_id)
        self.last_completed_uri = ""  # nearcode.showContext without arguments shows this one
        self.state: ServerState = "loading"
        self.message = ""
        self.model_name = ""
        self.engine_name = ""
        # Where the daemon sends prompts, from its /api/model; None until it answers (neither local
        # nor remote: nothing is assumed).
        self.destination: privacy.PromptDestination | None = None
        self.warned_remote = False
        self.watchers = DocumentWatchers()  # streamed edits follow the user's typing
        self.last_latency_ms: float | None = None
        # This session's suggestion counters for `nearcode.status` (requests: coordinator.counters).
        # Not the daemon's (`nearcode status`: model requests of every editor) nor insight's
        # (lsp/insight/: what became of each suggestion, kept across sessions, may be off).
        self.counters: Counter[str] = Counter()
        self.offered: OrderedDict[str, str] = OrderedDict()  # completion id -> text, most recent last
        self.client_has_inline = False
        self.problems = Problems(self.show_error)
        # The daemon's workspace index: this editor's folders and unsaved buffers (lsp/workspace_sync.py).
        self.workspace_sync = WorkspaceSync(self, self.daemon, self.client_id)
        self.workspace_sync.on_change = self.send_status
        self.engine_batches = False  # the daemon's engine batches requests (vLLM): alternatives are cheap
        self.insight = InsightSession(lambda: self.workspace, lambda: self.settings.insight)
        self.coordinator.on_status = self.on_daemon_status

    def show_error(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(types.MessageType.Error, message))

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, MalformedMessage):
            log.warning("%s", error)  # a request among them was answered with invalid-params
            return
        if source is JsonRpcException:
            # A frame that could not be read (-32700) or is no JSON-RPC message (-32600): JSON-RPC
            # answers with id null. Logged, not shown: the user cannot act on a client's bug.
            log.warning("ignored a malformed JSON-RPC message: %r", error)
            kind = JsonRpcParseError if isinstance(error, ValueError) else JsonRpcInvalidRequest
            answer = kind(f"nearcode: malformed JSON-RPC message ignored: {str(error)[:200]}")
            self.protocol._send_response(None, error=answer.to_response_error())  # type: ignore[arg-type]
            return
        if source is FeatureRequestError:
            return  # the request's own answer carries it
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)
        self.problems.report("server", f"internal error: {error}. Completions go on; the editor's log for "
                             "nearcode has the details (please report it)")

    def send_status(self, state: ServerState | None = None, message: str = "") -> None:
        if state is not None:
            self.state = state
            self.message = message
        self.protocol.notify(STATUS_NOTIFICATION, self.status().wire())
        self.workspace_sync.refresh_soon()

    def status(self) -> StatusParams:
        destination = self.destination
        return StatusParams(
            state="off" if not self.settings.enable else self.state,
            engine=self.engine_name,
            model=self.model_name,
            last_latency_ms=self.last_latency_ms,
            # True only when nothing leaves the machine: the settings say local-only AND the daemon
            # runs its model here (a daemon on a remote engine sends every keystroke away).
            local_only=self.settings.privacy_mode == privacy.LOCAL_ONLY and bool(destination and destination.local),
            cloud_allowed=self.settings.privacy_mode == privacy.CLOUD_ALLOWED,
            code_leaves_machine=bool(destination and not destination.local),
            prompt_destination=destination.where if destination else "",
            message=self.message,
            workspace=self.workspace_sync.wire_status(),
        )

    def report_problem(self, kind: ProblemKind, message: str) -> None:
        """Shown once (lsp/problems.py), and in the status until a request succeeds."""
        self.problems.report(kind, message)
        self.send_status("error", message)

    def on_daemon_status(self, event: StatusEvent) -> None:
        """The daemon is loading the model again (released while idle): say so until it answers."""
        self.send_status(event.state, event.message)

    async def run_completion(
        self, cursor: CursorText, invoked: bool, position: types.Position, choices: int = 1
    ) -> CompletionOutcome:
        """One completion; whatever fails, the editor gets an empty answer (never an error
        response at every keystroke) and the problem goes to the status, shown once. `choices` > 1:
        the client shows alternatives (inline completion). They are computed when asked for (an
        explicit request, or VS Code cycling), and always where the engine batches them into one
        pass; on the embedded engine each costs its generation."""
        self.read_ahead.cancel(cursor.uri)
        self.last_completed_uri = cursor.uri
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
        except DaemonRestarting as exc:
            self.send_status("loading", str(exc))
            return CompletionOutcome(reason=str(exc))
        except DaemonUnavailable as exc:
            kind: ProblemKind = "daemon-start" if isinstance(exc, DaemonStartFailed) else (
                "daemon-timeout" if isinstance(exc, DaemonTimeout) else "daemon-lost"
            )
            self.report_problem(kind, str(exc))
            return CompletionOutcome(reason=f"daemon unavailable: {exc}")
        except Exception as exc:  # a bug must cost one suggestion, not the editor's completions
            log.exception("completion failed")
            self.report_problem("server", f"internal error: {exc!r}. Completions go on; please report it")
            return CompletionOutcome(reason=f"internal error: {exc!r}")
        if outcome.error:
            self.report_problem(
                "engine", f"the model failed: {outcome.error}. `nearcode doctor` checks the engine; "
                f"the daemon's log is {paths.daemon_log_file()}",
            )
            return outcome
        # Once the cursor rests here, the daemon reads this place's long prompt ahead.
        self.read_ahead.requested(cursor, self.settings, lambda: text_and_offset(self.workspace, cursor.uri, position))
        if self.state != "ready" or self.destination is None or self.problems.current:  # where prompts go is never left unknown
            self.problems.clear()
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
            self.destination = privacy.prompt_destination(info)
        except Exception:  # never fail a completion over the status
            self.engine_batches = bool(info.get("batches", False))
            log.debug("could not read model info", exc_info=True)
            return
        if not self.destination.local and not self.warned_remote:  # once per server
            self.warned_remote = True
            self.window_show_message(types.ShowMessageParams(
                types.MessageType.Warning,
                f"nearcode: the daemon sends your code to {self.destination.where} (engine {self.engine_name}): "
                "it leaves this machine with every completion",
            ))


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
    await _pull_settings(ls)
    ls.send_status("loading", "starting the nearcode daemon")
    try:
        await ls.daemon.connect()
        await wait_while_engine_loads(ls)
        await ls.refresh_model_name()
        await ls.workspace_sync.register()
        ls.send_status("ready")
    except DaemonUnavailable as exc:
        ls.report_problem("daemon-start", str(exc))


async def wait_while_engine_loads(ls: NearcodeServer, poll_s: float = 1.0) -> None:
    """A daemon whose engine loads slowly (vLLM, ~30 s) answers meanwhile with state "loading" and
    the phase ("loading vllm: loading the weights (12 s)"): passed on to the editor's status line."""
    first_pid = ls.daemon.endpoint.pid if ls.daemon.endpoint else None
    while True:
        status = await ls.daemon.get_json("/api/status")
        if first_pid is not None and status.get("pid") != first_pid:
            # It exited while loading (a start failure ends the daemon) and a new one was started:
            # say so rather than start one after another.
            raise DaemonUnavailable("the daemon exited while its engine was loading; see `nearcode status` "
                                    "and the daemon log")
        if status.get("state", "ready") != "loading":
            if status.get("state") == "failed":
                raise DaemonUnavailable(str(status.get("state_message", "the engine failed to start")))
            return
        ls.send_status("loading", str(status.get("state_message", "")))
        await asyncio.sleep(poll_s)


async def _pull_settings(ls: NearcodeServer) -> None:
    """Settings the client answers for (workspace/configuration), machine keys from its user level only."""
    ls.settings, ignored = await pull_settings(ls, ls.settings)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if ignored:
        ls.window_show_message(types.ShowMessageParams(
            types.MessageType.Warning,
            f"nearcode: ignored {', '.join(ignored)} from this workspace's settings: only your user settings may set them",
        ))


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration(ls: NearcodeServer, params: types.DidChangeConfigurationParams) -> None:
    ls.settings, problem = ls.settings.merged(params.settings)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if problem:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"nearcode: {problem}"))
    await _pull_settings(ls)
    ls.send_status()


@server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
async def on_workspace_folders(ls: NearcodeServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    await ls.workspace_sync.register()  # pygls has already applied the change to ls.workspace


@server.feature(types.SHUTDOWN)
async def on_shutdown(ls: NearcodeServer, params: None) -> None:
    ls.insight.close()
    await ls.workspace_sync.release()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: NearcodeServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    ls.workspace_sync.opened(doc.uri)  # the daemon's index sees the buffer
    ls.read_ahead.opened(doc.uri, to_fs_path(doc.uri) or doc.uri, doc.language_id, doc.text, ls.settings)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: NearcodeServer, params: types.DidChangeTextDocumentParams) -> None:
    # pygls has applied the changes to its copy already.
    ls.watchers.changed(params)  # streamed docstrings move with the user's edits
    ls.workspace_sync.changed(params.text_document.uri)
    ls.insight.changed(params)  # insight follows suggestions through them


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: NearcodeServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.coordinator.forget(params.text_document.uri)
    ls.insight.closed(params.text_document.uri)
    ls.workspace_sync.closed(params.text_document.uri)
    ls.read_ahead.cancel(params.text_document.uri)


@server.feature(FOCUS_NOTIFICATION)
def did_focus(ls: NearcodeServer, params: Any) -> None:
    """An editor shows a document (and maybe where its cursor is): read its prompt's stable part ahead."""
    uri = str(_field(_field(params, "textDocument", {}), "uri", "") or "")
    position = _field(params, "position")
    now = text_and_offset(ls.workspace, uri, position) if uri else None
    if now is not None:
        document = ls.workspace.get_text_document(uri)
        text, offset = now
        ls.read_ahead.opened(uri, to_fs_path(uri) or uri, document.language_id or "", text, ls.settings,
                             offset if position is not None else None)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
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


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))
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


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=CODE_ACTION_KINDS))
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


@server.command(DOCSTRING_COMMAND)
async def generate_docstring(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, run_docstring)


@server.command(TESTS_COMMAND)
async def generate_tests(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, run_generate_tests)


@server.command(ASK_CLOUD_COMMAND)
async def ask_cloud(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, run_ask_cloud, parses=False)


@server.command(SHOW_CONTEXT_COMMAND)
async def show_context_command(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    argument = first_argument(args) if args else None
    uri = argument if isinstance(argument, str) else str(_field(argument or {}, "uri", "") or "")
    return (await show_context(ls.daemon, ls.client_id, uri or ls.last_completed_uri)).wire()


@server.command(PREVIEW_CLOUD_COMMAND)
async def preview_cloud_payload(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    return await _command(ls, args, functools.partial(run_ask_cloud, preview_only=True), parses=False)


async def debug_document(ls: NearcodeServer, *args: Any) -> dict[str, Any]:
    """The server's copy of a document, for fuzzing and tests: never registered by default."""
    uri = first_argument(args).get("uri")
    if not isinstance(uri, str) or uri not in ls.workspace.text_documents:
        return {"uri": uri, "open": False}
    document = ls.workspace.get_text_document(uri)
    return {"uri": uri, "open": True, "version": document.version, "text": document.source}


def _trailing_word(text: str) -> str:
    i = len(text)
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
        i -= 1
    return text[i:]


def run_stdio() -> None:
    # Local-only until the settings say otherwise: the guard is in place before any handler runs.
    privacy.install_network_guard("lsp", privacy.LOCAL_ONLY)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nearcode-lsp %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # its debug/info logs carry message bodies
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if os.environ.get("NEARCODE_DEBUG_COMMANDS") == "1":
        server.command(DEBUG_DOCUMENT_COMMAND)(debug_document)
    server.start_io()
