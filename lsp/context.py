"""The language server's side of project context: reading ahead, and showing what a completion
was given. The daemon chooses and fits the context (daemon/context/); this module tells it when a
document is opened or focused or the cursor rests, and fetches its report for `nearcode.showContext`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import ValidationError

from nearcode.lsp.completion import CursorText, cursor_text
from nearcode.lsp.daemon_client import DaemonClient
from nearcode.shared.protocol.daemon_api import HEAD_WINDOW_CHARS, ContextQuery, PrefillRequest
from nearcode.shared.protocol.editor import ContextResult
from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")

# The cursor rested this long after a completion request: read the prompt's long form ahead there
# (the first request at a new place reads only a short near prefix, to answer fast).
REST_S = 1.5
# A document opened or focused is read ahead once it has stayed in view this long: an editor that
# restores ten tabs, or a user flipping through files, starts one read-ahead, not ten, and a
# keystroke right after opening does not wait behind a read it makes useless (llama.cpp stops a
# read only between prompt batches: seconds for the 1.5B on two cores).
OPEN_SETTLE_S = 0.5

# The document's text and the cursor's offset in it now, or None when it is closed.
TextNow = Callable[[], tuple[str, int] | None]


class ReadAhead:
    """Asks the daemon to read a document's stable prompt part into the engine's cache, at
    background priority, when the document is opened or focused and when the cursor rests."""

    def __init__(self, daemon: DaemonClient, client_id: str) -> None:
        self.daemon = daemon
        self.client_id = client_id
        self._rest: dict[str, asyncio.TimerHandle] = {}
        self._settling: tuple[str, asyncio.TimerHandle] | None = None  # the document last opened or focused
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0

    def opened(self, uri: str, path: str, language: str, text: str, settings: Settings,
               cursor: int | None = None) -> None:
        """A document was opened or focused (`cursor` when the editor said where it is): read ahead
        once it has stayed in view OPEN_SETTLE_S (another document opened meanwhile replaces it)."""
        self.cancel(uri)
        self._stop_settling()
        if settings.enable and settings.context == "workspace" and language not in settings.disabled_languages:
            request = prefill_request(self.client_id, uri, path, language, text, cursor, settings)

            def fire() -> None:
                self._settling = None
                self._send(request)

            self._settling = (uri, asyncio.get_running_loop().call_later(OPEN_SETTLE_S, fire))

    def requested(self, cursor: CursorText, settings: Settings, text_now: TextNow) -> None:
        """A completion was asked for at `cursor`: once the cursor rests there, read ahead."""
        self.cancel(cursor.uri)
        if not settings.enable or settings.context != "workspace":
            return

        def fire() -> None:
            self._rest.pop(cursor.uri, None)
            now = text_now()
            if now is not None:
                text, offset = now
                self._send(prefill_request(self.client_id, cursor.uri, cursor.path, cursor.language, text, offset,
                                           settings))

        self._rest[cursor.uri] = asyncio.get_running_loop().call_later(REST_S, fire)

    def cancel(self, uri: str) -> None:
        """Nothing pending for `uri` is sent (a completion there reads what it needs itself)."""
        timer = self._rest.pop(uri, None)
        if timer is not None:
            timer.cancel()
        if self._settling is not None and self._settling[0] == uri:
            self._stop_settling()

    def _stop_settling(self) -> None:
        if self._settling is not None:
            self._settling[1].cancel()
            self._settling = None

    def _send(self, request: PrefillRequest | None) -> None:
        if request is None:
            return

        async def send() -> None:
            try:
                answer = await self.daemon.post_json("/api/prefill", request)
                log.debug("read ahead %s: %s", request.document, answer.get("reason", ""))
            except Exception as exc:  # reading ahead is an optimisation: never an error for the user
                log.info("read ahead skipped: %s", exc)

        self.sent += 1
        task = asyncio.create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for timer in self._rest.values():
            timer.cancel()
        self._rest.clear()
        self._stop_settling()


def prefill_request(
    client: str, uri: str, path: str, language: str, text: str, cursor: int | None, settings: Settings
) -> PrefillRequest | None:
    """What the daemon needs of a document to read its prompt ahead: its head, and the windows
    around the cursor when known (cut as a completion request's are), never a whole large file.
    None when that text is not valid Unicode (a lone surrogate): a completion there says why."""
    around = cursor_text(text, cursor, uri, path, language) if cursor is not None else None
    try:
        return PrefillRequest(
            document=uri, client=client, path=path, language=language, head=text[:HEAD_WINDOW_CHARS],
            prefix=around.prefix if around else None, suffix=around.suffix if around else "", affinity=uri,
            context_mode=settings.context,
        )
    except ValidationError:
        return None


async def show_context(daemon: DaemonClient, client_id: str, uri: str) -> ContextResult:
    """What the last completion in `uri` was given, as the daemon recorded it."""
    if not uri:
        return ContextResult(available=False, reason="no document: pass {\"uri\": ...} or ask for a completion first")
    answer = await daemon.post_json("/api/context", ContextQuery(client=client_id, document=uri))
    return ContextResult.model_validate(answer)
