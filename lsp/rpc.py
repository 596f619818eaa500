"""The server's JSON-RPC protocol: pygls's, with the editor's documents and answers for bad input.

- At `initialize`: columns are UTF-16 (every client supports it, and the documents count in it),
  the workspace holds lsp/documents.py's EditorDocuments, and the event loop stops logging the
  late wake-ups of cancelled daemon reads (lsp/event_loop.py; the daemon is reached only later).
- A request whose parameters do not fit its method's types is answered with invalid-params under
  its own id (pygls would leave it unanswered and show the user a server error); a notification
  like that is logged and dropped.
- The futures pygls keeps for handlers it runs itself are dropped once done (it kept one per
  keystroke forever).
- A message of a method lsprotocol does not know (nearcode's own notifications, the editor's answers
  to our requests) keeps its parameters as the JSON gave them: pygls turns every such object into a
  namedtuple of a class it makes for that one message (a new type, with code compiled for it, per
  object of every didShowCompletion), garbage that only the cyclic collector frees.
- `message_field` reads a field of a custom message's parameters, whichever shape pygls gives them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
)
from pygls.protocol.language_server import lsp_method

from nearcode.lsp.documents import EditorWorkspace
from nearcode.lsp.event_loop import ignore_late_wakeups

log = logging.getLogger("nearcode.lsp")


class MalformedMessage(JsonRpcException):
    """A message that could not be taken apart; a request among them was already answered."""


class NearcodeProtocol(LanguageServerProtocol):
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        ignore_late_wakeups(asyncio.get_running_loop())
        general = params.capabilities.general
        if general is not None:
            general.position_encodings = None  # UTF-16: what the documents' columns count
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        assert self._workspace is not None
        self._workspace = EditorWorkspace.adopt(self._workspace)
        return result

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's shutdown, over a copy of the pending futures: cancelling one runs its done
        callback (`_drop_future`) at once, which removes it from the dict pygls iterates."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id  # the shutdown request's own future is not cancelled
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        # pygls files the future of every handler it runs through a generator (didOpen, didChange,
        # didClose, executeCommand, ...) under a made-up id and never removes it: one future per
        # keystroke, for as long as the editor runs (~1 MB a minute of typing). Dropped when done;
        # a client request's own entry is already removed by then, before its answer is sent.
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda done: self._drop_future(msg_id, done))

    def _drop_future(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            method = data.get("method")
            cause = exc.__cause__ or exc
            if isinstance(method, str) and "id" in data:
                msg_id = data["id"] if isinstance(data["id"], (str, int)) else None
                error = JsonRpcInvalidParams(f"nearcode: invalid parameters for {method}: {_brief(cause)}")
                self._send_response(msg_id, error=error.to_response_error())  # type: ignore[arg-type]
            raise MalformedMessage(f"malformed {method or 'message'}: {_brief(cause)}") from exc


def plain_json_converter() -> cattrs.Converter:
    """pygls's converter, with the parameters (or result) of a method it has no type for left as
    plain JSON values (the soak: a class made and dropped per shown suggestion, while the language
    servers' memory crept up)."""
    converter: cattrs.Converter = default_converter()  # type: ignore[no-untyped-call]
    for envelope in (JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage):
        converter.register_structure_hook(envelope, lambda obj, cls: cls(**obj))
    return converter


def message_field(params: Any, name: str, default: Any = None) -> Any:
    """A field of a message's parameters: plain JSON for nearcode's own notifications
    (`plain_json_converter`), lsprotocol objects for LSP's."""
    if isinstance(params, dict):
        return params.get(name, default)
    return getattr(params, name, default)


def _brief(error: BaseException) -> str:
    """One line about a structuring error (cattrs nests the real cause in exception groups)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:300]
