"""What the user is told when something fails: once, with what to do, and then nothing until it is
fixed (a completion tool that pops up the same error at every keystroke gets uninstalled).

A problem has a kind (the daemon cannot start, it does not answer, the model failed, a server bug).
The first report of a kind is shown (window/showMessage); every report keeps it in the status
(`nearcode/status`, `nearcode.status`) with its message; a success clears them all, so a problem
that comes back later is shown again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("nearcode.lsp")

ProblemKind = Literal["daemon-start", "daemon-timeout", "daemon-lost", "engine", "server"]


@dataclass
class Problems:
    show: Callable[[str], None]  # puts a message in front of the user (window/showMessage)
    current: str = ""  # the latest problem's message, for the status
    shown: set[ProblemKind] = field(default_factory=set)
    reports: int = 0

    def report(self, kind: ProblemKind, message: str) -> None:
        self.reports += 1
        self.current = message
        if kind in self.shown:
            log.info("%s (again): %s", kind, message)
            return
        self.shown.add(kind)
        log.error("%s: %s", kind, message)
        self.show(f"nearcode: {message}")

    def clear(self) -> bool:
        """Everything works again; True when there was a problem to clear."""
        had = bool(self.current or self.shown)
        self.current = ""
        self.shown.clear()
        return had
