"""daemon.log stays bounded: at most 5 MB, plus three older files (daemon.log.1 .. .3), 20 MB in all.

A daemon that an editor started writes its stdout and stderr straight into daemon.log (the
language server opens the file for it), and llama.cpp writes to stderr from C, so the rotation
works on file descriptors, not on a logging handler: once the file passes its size, it is renamed
to daemon.log.1 (older ones move up, the oldest is dropped), a new daemon.log is opened and put in
place of descriptors 1 and 2. Every writer (Python's logging, print, C code) goes on into the new
file. A daemon whose stderr is anything else (a terminal, a test's log) is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("nearcode.daemon")

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
CHECK_EVERY_S = 10.0


@dataclass
class StderrRotation:
    path: Path  # daemon.log
    max_bytes: int = MAX_BYTES
    backups: int = BACKUPS

    def writes_to_file(self) -> bool:
        """Whether descriptor 2 is this file (not a terminal, a pipe or another file)."""
        try:
            ours, file = os.fstat(2), self.path.stat()
        except OSError:
            return False
        return (ours.st_dev, ours.st_ino) == (file.st_dev, file.st_ino)

    def rotate_if_due(self) -> bool:
        if not self.writes_to_file() or os.fstat(2).st_size < self.max_bytes:
            return False
        self.rotate()
        return True

    def rotate(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)
        log.info("rotated %s (over %d bytes; %d older files kept)", self.path, self.max_bytes, self.backups)

    async def run(self, every_s: float = CHECK_EVERY_S) -> None:
        """Check every few seconds for the daemon's lifetime (a size check is one fstat)."""
        while True:
            with contextlib.suppress(OSError):
                self.rotate_if_due()
            await asyncio.sleep(every_s)
