"""The lookup tables of one workspace index, behind one lock: files, definitions by name, files by
folder, by module stem and by package, and the project manifests. Readers on the event loop look
things up here (microseconds under the lock); the index worker applies parsed files.

Everything stored is a tuple of atoms or a dict of them, never an object per file or definition:
see daemon/workspace/model.py on the garbage collector.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import PurePosixPath
from typing import Final

from nearcode.daemon.workspace.files import FileStamp
from nearcode.daemon.workspace.manifests import Manifest
from nearcode.daemon.workspace.model import (
    Definition,
    DefinitionRow,
    FileSummary,
    ImportRef,
    ImportRow,
    definition,
    import_ref,
)

_PACKAGE_FILES = frozenset({"__init__", "index", "mod"})  # named after their folder

# An indexed file is a plain tuple too (one object per file in the garbage collector's lists would be
# 20,000 more, see model.py): language, package, definition rows, import rows, mtime_ns and size
# of what was parsed (-1, -1 for an editor's buffer), hash of its bytes, when it was last checked.
Entry = tuple[str, str, tuple[DefinitionRow, ...], tuple[ImportRow, ...], int, int, int, float]
LANGUAGE: Final = 0
PACKAGE: Final = 1
DEFINITIONS: Final = 2
IMPORTS: Final = 3
MTIME: Final = 4
SIZE: Final = 5
DIGEST: Final = 6
CHECKED: Final = 7


def folder_of(path: str) -> str:
    """The workspace-relative folder of a workspace-relative path ("" at the root)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _stems(path: str) -> list[str]:
    pure = PurePosixPath(path)
    stems = [pure.stem]
    if pure.stem in _PACKAGE_FILES and pure.parent.name:
        stems.append(pure.parent.name)
    return stems


class IndexTables:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, Entry] = {}
        # name -> path -> that file's rows with the name. The "sets" below are dicts of None: dicts of
        # atoms leave the garbage collector's lists, sets never do.
        self._by_name: dict[str, dict[str, tuple[DefinitionRow, ...]]] = {}
        self._by_folder: dict[str, dict[str, None]] = {}
        self._by_stem: dict[str, dict[str, None]] = {}
        self._by_package: dict[str, dict[str, None]] = {}  # Java package, Go package name -> files
        self._manifests: dict[str, Manifest] = {}
        self._definitions = 0

    # ------------------------------------------------------------------ queries (any thread)

    def definitions(self, name: str, limit: int | None = 100) -> list[Definition]:
        """Definitions with this simple name anywhere in the workspace, the first `limit` of them
        (None: all; a name like `__init__` has thousands, ~60 ms to build them all)."""
        with self._lock:
            per_file = self._by_name.get(name, {})
            rows = list(itertools.islice(((path, row) for path, defs in per_file.items() for row in defs), limit))
        return [definition(path, row) for path, row in rows]

    def definitions_in(self, path: str, name: str) -> list[Definition]:
        """Definitions with this simple name in one file."""
        with self._lock:
            rows = self._by_name.get(name, {}).get(path, ())
        return [definition(path, row) for row in rows]

    def file_definitions(self, path: str) -> list[Definition]:
        entry = self._files.get(path)
        return [definition(path, row) for row in entry[DEFINITIONS]] if entry is not None else []

    def file_imports(self, path: str) -> list[ImportRef]:
        entry = self._files.get(path)
        return [import_ref(row) for row in entry[IMPORTS]] if entry is not None else []

    def file_summary(self, path: str) -> FileSummary | None:
        entry = self._files.get(path)
        if entry is None:
            return None
        return FileSummary(entry[LANGUAGE], entry[DEFINITIONS], entry[IMPORTS], entry[PACKAGE])

    def has_file(self, path: str) -> bool:
        return path in self._files

    def files_in(self, folder: str) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._by_folder.get(folder, {})))

    def files_with_stem(self, stem: str) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._by_stem.get(stem, {})))

    def files_in_package(self, package: str) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._by_package.get(package, {})))

    def manifests(self) -> list[Manifest]:
        with self._lock:
            return list(self._manifests.values())

    # ------------------------------------------------------------------ updates (the worker)

    def _touch(self, path: str, entry: Entry, now: float, stamp: FileStamp | None = None) -> None:
        """Unchanged: only when it was checked (and, for the same bytes, the new stamp)."""
        mtime, size = (stamp.mtime_ns, stamp.size) if stamp is not None else (entry[MTIME], entry[SIZE])
        with self._lock:
            if self._files.get(path) is entry:
                self._files[path] = (*entry[:MTIME], mtime, size, entry[DIGEST], now)

    def _apply(self, path: str, entry: Entry) -> None:
        by_name: dict[str, list[DefinitionRow]] = {}
        for row in entry[DEFINITIONS]:
            by_name.setdefault(row[0], []).append(row)
        with self._lock:
            self._unlink(path)
            self._files[path] = entry
            for name, rows in by_name.items():
                self._by_name.setdefault(name, {})[path] = tuple(rows)
            self._definitions += len(entry[DEFINITIONS])
            self._by_folder.setdefault(folder_of(path), {})[path] = None
            for stem in _stems(path):
                self._by_stem.setdefault(stem, {})[path] = None
            if entry[PACKAGE]:
                self._by_package.setdefault(entry[PACKAGE], {})[path] = None

    def _remove(self, path: str) -> None:
        with self._lock:
            self._unlink(path)
            self._manifests.pop(path, None)

    def _set_manifest(self, path: str, manifest: Manifest | None) -> None:
        with self._lock:
            if manifest is not None:
                self._manifests[path] = manifest
            else:
                self._manifests.pop(path, None)

    def _stale(self, prefix: str, checked_before: float) -> list[str]:
        """Files below `prefix` not checked since `checked_before`."""
        with self._lock:
            return [p for p, entry in self._files.items() if p.startswith(prefix) and entry[CHECKED] < checked_before]

    def _clear(self) -> None:
        with self._lock:
            for table in (self._files, self._by_name, self._by_folder, self._by_stem, self._by_package, self._manifests):
                table.clear()
            self._definitions = 0

    def _remove_under(self, prefix: str) -> None:
        with self._lock:
            for path in [p for p in self._files if p.startswith(prefix)]:
                self._unlink(path)
            for path in [p for p in self._manifests if p.startswith(prefix)]:
                del self._manifests[path]

    def _unlink(self, path: str) -> None:
        """Take a file out of every table (the lock is held)."""
        old = self._files.pop(path, None)
        if old is None:
            return
        self._definitions -= len(old[DEFINITIONS])
        for name in {row[0] for row in old[DEFINITIONS]}:
            per_file = self._by_name.get(name)
            if per_file is not None:
                per_file.pop(path, None)
                if not per_file:
                    del self._by_name[name]
        self._by_folder.get(folder_of(path), {}).pop(path, None)
        for stem in _stems(path):
            self._by_stem.get(stem, {}).pop(path, None)
        self._by_package.get(old[PACKAGE], {}).pop(path, None)


