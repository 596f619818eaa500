"""The temporary copy of a project that generated tests run in: regular files only, never through
a link, never more than a size cap.

A repository is untrusted input: a symbolic link to /dev/zero would be copied forever, a link to
~/.ssh would put the user's keys into the copy, a FIFO would block the copy. So every entry is
opened with O_NOFOLLOW|O_NONBLOCK and copied only if the opened file is a regular file, at most
the size it had when opened; folders that are links are not entered; version control,
virtualenvs and caches are left out; and the copy stops at a total size and a file count.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_COPY_BYTES = 50_000_000
MAX_FILE_BYTES = 5_000_000
MAX_FILES = 20_000
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", ".mypy_cache",
                       ".pytest_cache", ".ruff_cache", ".tox", "build", "dist", "target",
                       # credential stores, should a project hold one: tests have no business there
                       ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker"})  # fmt: skip


@dataclass
class CopyReport:
    files: int = 0
    bytes: int = 0
    links_skipped: int = 0
    special_skipped: int = 0  # FIFOs, sockets, devices
    large_skipped: int = 0
    stopped_at_cap: bool = False


def _copy_file(source: str, target: str, budget: int, report: CopyReport) -> int:
    """Copy one regular file (not through a link); the bytes copied."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            report.links_skipped += 1
        return 0
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            report.special_skipped += 1
            return 0
        size = info.st_size
        if size > MAX_FILE_BYTES or size > budget:
            report.large_skipped += 1
            return 0
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            left = size  # what it held when opened: a file that keeps growing is not followed
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                os.write(out, chunk)
                left -= len(chunk)
        finally:
            os.close(out)
        return size - left
    finally:
        os.close(fd)


def copy_project(root: Path, destination: Path) -> CopyReport:
    """Copy the regular files of `root` (which must be a real folder) into `destination`."""
    report = CopyReport()
    budget = MAX_COPY_BYTES
    if root.is_symlink() or not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    destination.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(root, followlinks=False):
        kept = []
        for name in sorted(dirs):
            if name in SKIP_DIRS or name.endswith(".egg-info"):
                continue
            if os.path.islink(os.path.join(folder, name)):
                report.links_skipped += 1
                continue
            kept.append(name)
        dirs[:] = kept
        relative = os.path.relpath(folder, root)
        target_folder = destination / relative
        target_folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            if report.files >= MAX_FILES or budget <= 0:
                report.stopped_at_cap = True
                return report
            copied = _copy_file(os.path.join(folder, name), str(target_folder / name), budget, report)
            if copied or os.path.isfile(target_folder / name):
                report.files += 1
                report.bytes += copied
                budget -= copied
    return report
