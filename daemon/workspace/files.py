"""Which files of a workspace the index may read, and walking them.

A path is left out when any part of it is a vendored or build folder, when .gitignore (at any
depth, and above the root up to the repository's top) or the deny list (nearcode/shared/deny.py)
excludes it or a parent folder, when it is a symlink (folders are never followed; a file link
only when it points inside the workspace), too large, or binary. The walk stops at a file-count
cap and at an entry cap, saying so, so a huge tree ends in a message rather than a hang.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nearcode.shared.deny import DenyList
from nearcode.shared.ignore import IgnoreTree
from nearcode.shared.languages import language_for_path, parseable

SKIPPED_FOLDERS = frozenset({
    "node_modules", ".venv", "venv", "build", "dist", ".git", "__pycache__", "target",
    ".hg", ".svn", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".next", ".gradle",
})  # fmt: skip
IGNORE_FILES = frozenset({".gitignore", ".nearcodeignore"})
# Files whose content the index reads for import resolution (module paths, package names).
MANIFESTS = frozenset({"go.mod", "package.json", "tsconfig.json", "jsconfig.json", "Cargo.toml"})
BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class FileStamp:
    """Enough to tell that a file changed without reading it."""

    mtime_ns: int
    size: int


class PathFilter:
    """The verdict on a workspace-relative path. Folder verdicts are cached; `forget()` drops them
    when an ignore file changes."""

    def __init__(self, root: Path, max_file_bytes: int) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.max_file_bytes = max_file_bytes
        self.gitignore = IgnoreTree(root, ".gitignore")
        self.deny = DenyList.load(root)
        self._folder_reasons: dict[str, str | None] = {}

    def forget(self) -> None:
        self.gitignore = IgnoreTree(self.root, ".gitignore")
        self.deny = DenyList.load(self.root)
        self._folder_reasons.clear()

    def entry_reason(self, relative: str, is_dir: bool) -> str | None:
        """Why this one entry is left out (parents not considered), or None."""
        name = relative.rsplit("/", 1)[-1]
        if is_dir and name in SKIPPED_FOLDERS:
            return "vendored or build folder"
        denied = self.deny.entry_reason(relative, is_dir)
        if denied is not None:
            return "denied"
        if self.gitignore.ignores(relative, is_dir):
            return "ignored"
        return None

    def path_reason(self, relative: str, is_dir: bool = False) -> str | None:
        """Why this path is left out, its parent folders included, or None."""
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in self._folder_reasons:
                self._folder_reasons[folder] = self.entry_reason(folder, True)
            if self._folder_reasons[folder] is not None:
                return self._folder_reasons[folder]
        return self.entry_reason(relative, is_dir)

    def inside(self, path: Path) -> bool:
        """A symlinked file is read only if it resolves inside the workspace."""
        try:
            return path.resolve().is_relative_to(self.real_root)
        except (OSError, RuntimeError):
            return False


def indexable(relative: str) -> bool:
    """Files the index parses: the languages tree-sitter knows here."""
    return parseable(language_for_path(relative))


def stat_file(path: Path, path_filter: PathFilter) -> tuple[FileStamp | None, str | None]:
    """(stamp, None) for a regular file the index may read, else (None, why not)."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            if not path_filter.inside(path):
                return None, "symlink out of the workspace"
            info = path.stat()
    except OSError:
        return None, "gone"
    if not stat.S_ISREG(info.st_mode):
        return None, "not a file"
    if info.st_size > path_filter.max_file_bytes:
        return None, "too large"
    return FileStamp(info.st_mtime_ns, info.st_size), None


def read_source(path: Path, max_bytes: int) -> bytes | None:
    """The file's bytes, or None when it is binary (a NUL byte near the start), too large or gone."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        return None
    if len(data) > max_bytes or b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return None
    return data


@dataclass
class WalkCounts:
    entries: int = 0
    capped: str = ""  # why the walk stopped early


def walk(
    root: Path, path_filter: PathFilter, start: str, counts: WalkCounts, max_entries: int,
    skipped: dict[str, int],
) -> Iterator[str]:
    """Workspace-relative paths of the files below `start` ("" for the root) that pass the filter,
    breadth-first (a project's top-level modules come before deep test fixtures). Folders are
    never followed through symlinks. Stops (setting counts.capped) after max_entries entries."""
    queue = [start]
    while queue:
        folder = queue.pop(0)
        try:
            with os.scandir(root / folder if folder else root) as entries:
                listing = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in listing:
            counts.entries += 1
            if counts.entries > max_entries:
                counts.capped = f"stopped after looking at {max_entries:,} entries"
                return
            relative = f"{folder}/{entry.name}" if folder else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            reason = path_filter.entry_reason(relative, is_dir)
            if reason is not None:
                if not is_dir:
                    skipped[reason] = skipped.get(reason, 0) + 1
                continue
            if is_dir:
                queue.append(relative)
            elif entry.name in MANIFESTS or indexable(relative):
                try:
                    too_large = entry.stat(follow_symlinks=False).st_size > path_filter.max_file_bytes
                except OSError:
                    continue
                if too_large:
                    skipped["too large"] = skipped.get("too large", 0) + 1
                    continue
                yield relative
