"""The per-user daemon lock: one daemon per runtime directory.

The daemon holds it from before it loads a model until it has withdrawn its address, then lets it
go before it frees the engine (which can take seconds while llama.cpp finishes a prompt batch), so a
restart right after a stop does not find "a daemon already running" that no longer serves anyone.
Starters that lose the race exit; their clients wait for the winner's address, and start again if
the lock turns out free with no daemon behind it (the winner was a daemon on its way out).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from nearcode.shared import paths


class InstanceLock:
    """The lock, held through an open file descriptor (flock: released by the kernel at exit too)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls) -> InstanceLock | None:
        """The lock, or None when another daemon holds it."""
        fd = os.open(paths.lock_file(), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_is_free() -> bool:
    """Whether no daemon holds the lock. Taking it for a moment is the only portable test; a starter
    racing this check loses it, exits, and its own client comes here too."""
    probe = InstanceLock.acquire()
    if probe is None:
        return False
    probe.release()
    return True
