"""The language server's event loop: the one callback error it does not log, a late wake-up.

httpx reaches the daemon's unix socket through anyio (httpcore's AnyIOBackend). anyio's
`UNIXSocketStream` waits for the socket with `loop.add_reader(sock, future.set_result, None)` and
removes that reader only from the future's done callback, which runs one loop iteration later. When
the task reading a daemon stream is cancelled (`$/cancelRequest`, a stream superseded or closed
after its first line, `shutdown` cancelling what is pending) in the very iteration in which the
socket became readable, the reader's `future.set_result(None)` is already queued, and it runs on
the cancelled future: asyncio logs "Exception in callback Future.set_result(None)" with a traceback
and `InvalidStateError`. Nothing is lost (the bytes stay in the socket, the reader is removed
right after, the cancellation completes as it should), but the editor's log shows an error, often
as the server exits.

`ignore_late_wakeups` drops exactly that: a queued `set_result(None)` on an asyncio future that was
already cancelled. Every other error goes to the loop's handler as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("nearcode.lsp")

Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def is_late_wakeup(context: dict[str, Any]) -> bool:
    """A callback `future.set_result(None)` that failed because `future` had been cancelled."""
    if not isinstance(context.get("exception"), asyncio.InvalidStateError):
        return False
    handle = context.get("handle")
    # asyncio.Handle keeps its callback and arguments here (it has no public accessor); anything
    # else is not recognised, and logged as before.
    callback = getattr(handle, "_callback", None)
    future = getattr(callback, "__self__", None)
    return (
        isinstance(future, asyncio.Future)
        and future.cancelled()
        and getattr(callback, "__name__", "") == "set_result"
        and getattr(handle, "_args", None) == (None,)
    )


class _LateWakeupFilter:
    def __init__(self, previous: Handler | None) -> None:
        self.previous = previous

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if is_late_wakeup(context):
            log.debug("ignored a late wake-up of a cancelled read: %s", context.get("message"))
        elif self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


def ignore_late_wakeups(loop: asyncio.AbstractEventLoop) -> None:
    """Put the filter in front of `loop`'s exception handler (asyncio's default if none); once."""
    previous = loop.get_exception_handler()
    if not isinstance(previous, _LateWakeupFilter):
        loop.set_exception_handler(_LateWakeupFilter(previous))
