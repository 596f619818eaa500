"""What the daemon's streaming services share: the events a stream yields, the error that ends one,
and the names of the priorities requests ask for (daemon/fim_service.py, generate_service.py)."""

from __future__ import annotations

from nearcode.daemon.engines.base import FinishReason, Priority
from nearcode.shared.protocol.daemon_api import DeltaEvent, DoneEvent

# What a stream yields: text pieces, then one DoneEvent (errors raise ServiceError).
ServiceEvent = DeltaEvent | DoneEvent

# Final chunks that carry an error message rather than an answer.
FAILED_ENDINGS = (FinishReason.ERROR, FinishReason.SHED)

PRIORITY_BY_NAME = {
    "interactive": Priority.INTERACTIVE,
    "speculative": Priority.SPECULATIVE,
    "background": Priority.BACKGROUND,
}


class ServiceError(RuntimeError):
    """A request failed (the engine's error, a shed background task, a prompt that cannot be
    built): the HTTP layer ends the stream with an error event carrying this message."""
