"""The language server's state for one editor, and the completion run every handler shares.

`NearcodeServer` is pygls's `LanguageServer` with what this editor's session holds: the settings, the
daemon client, the coordinator (typing cache, in-flight requests), read-ahead, the status shown in
the editor (state, model, where prompts go), this session's suggestion counters, problems shown
once, the workspace sync and insight. `run_completion` turns whatever fails into an empty answer
and a status problem. The handlers that use it: lsp/lifecycle.py, lsp/document_events.py,
lsp/completion_handlers.py, lsp/commands.py; lsp/server.py registers them.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.lsp.server import LanguageServer

from nearcode import __version__
from nearcode.lsp.code_actions.live_region import DocumentWatchers
from nearcode.lsp.completion import CompletionOutcome, CursorText, ask_alternatives
from nearcode.lsp.context import ReadAhead
from nearcode.lsp.coordinator import CompletionCoordinator
from nearcode.lsp.daemon_client import (
    DaemonClient,
    DaemonRestarting,
    DaemonStartFailed,
    DaemonTimeout,
    DaemonUnavailable,
)
from nearcode.lsp.daemon_settings import daemon_settings_mismatch
from nearcode.lsp.documents import text_and_offset
from nearcode.lsp.insight.session import InsightSession
from nearcode.lsp.problems import ProblemKind, Problems
from nearcode.lsp.rpc import MalformedMessage, NearcodeProtocol, plain_json_converter
from nearcode.lsp.workspace_sync import WorkspaceSync
from nearcode.shared import paths, privacy
from nearcode.shared.protocol.daemon_api import StatusEvent
from nearcode.shared.protocol.editor import STATUS_NOTIFICATION, ServerState, StatusParams
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")


class NearcodeServer(LanguageServer):
    def __init__(self) -> None:
        # pygls reads stdin in its thread pool, one submit per read; a pool of several workers
        # started another thread whenever a read was submitted before the last one's worker had
        # counted itself idle, and each new thread's malloc arena kept freed message buffers (the
        # soak: a language server's threads 4 -> 6 and its memory up by steps). One reader is all
        # stdin needs (our handlers never run in this pool).
        super().__init__("nearcode", __version__, protocol_cls=NearcodeProtocol, max_workers=1,
                         converter_factory=plain_json_converter)
        self.settings = Settings()
        self.daemon = DaemonClient()
        self.client_id = uuid.uuid4().hex[:12]
        self.coordinator = CompletionCoordinator(self.daemon, self.client_id)
        self.read_ahead = ReadAhead(self.daemon, self.client_id)
        self.last_completed_uri = ""  # nearcode.showContext without arguments shows this one
        self.state: ServerState = "loading"
        self.message = ""
        self.model_name = ""
        self.model_info: dict[str, object] = {}  # the daemon's `/api/model`, as last read
        self.engine_name = ""
        # Where the daemon sends prompts, from its /api/model; None until it answers (neither local
        # nor remote: nothing is assumed).
        self.destination: privacy.PromptDestination | None = None
        self.warned_remote = False
        self.warned_model: str | None = None  # the engine and model settings last warned about
        self.watchers = DocumentWatchers()  # streamed edits follow the user's typing
        self.last_latency_ms: float | None = None
        # This session's suggestion counters for `nearcode.status` (requests: coordinator.counters).
        # Not the daemon's (`nearcode status`: model requests of every editor) nor insight's
        # (lsp/insight/: what became of each suggestion, kept across sessions, may be off).
        self.counters: Counter[str] = Counter()
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

    def cache_sizes(self) -> dict[str, int]:
        """What the server keeps between requests, each with its bound (docs/reliability.md)."""
        tracker = self.insight.tracker
        return {
            "typing_cache": len(self.coordinator.cache),  # <= 256 suggestions
            "insight_items": len(tracker.by_item),  # <= 128 offered items an accept may still name
            "insight_pending": len(tracker.pending),  # one per document with a suggestion in play
            "insight_surviving": len(tracker.surviving),  # <= 200 accepted texts followed
            "documents": len(self.workspace.text_documents),  # open in the editor
        }

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
        self.send_status()
        return outcome

    async def refresh_model_name(self) -> None:
        try:
            info = await self.daemon.get_json("/api/model")
            self.model_info = info
            self.model_name = str(info.get("model", ""))
            self.engine_name = str(info.get("engine", ""))
            self.engine_batches = bool(info.get("batches", False))
            self.destination = privacy.prompt_destination(info)
        except Exception:  # never fail a completion over the status
            log.debug("could not read model info", exc_info=True)
            return
        self.warn_if_model_differs()
        if not self.destination.local and not self.warned_remote:  # once per server
            self.warned_remote = True
            self.window_show_message(types.ShowMessageParams(
                types.MessageType.Warning,
                f"nearcode: the daemon sends your code to {self.destination.where} (engine {self.engine_name}): "
                "it leaves this machine with every completion",
            ))

    def warn_if_model_differs(self) -> None:
        """Once per pair of setting values: the daemon runs another engine or model than the settings name."""
        wanted = f"{self.settings.engine} {self.settings.model}"
        problem = daemon_settings_mismatch(self.settings.model, self.settings.engine, self.model_info)
        if problem is not None and wanted != self.warned_model:
            self.warned_model = wanted
            log.warning(problem)
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, problem))
