"""What context retrieval needs from a workspace index (daemon/workspace builds the real one).

Retrieval is written against this Protocol so that its logic is tested with a small in-memory index
and runs unchanged on the watched, tree-sitter-built one. Every method is synchronous and fast
(an in-memory lookup); retrieval still calls them off the event loop, under a deadline. Paths are
relative to the index's root, in posix form, both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from nearcode.daemon.workspace.model import Definition, DefinitionKind, ImportRef

# One definition and import type for the index and its readers (daemon/workspace/model.py).
__all__ = ["Definition", "DefinitionKind", "ImportRef", "IndexLookup", "WorkspaceIndex", "no_index"]


class WorkspaceIndex(Protocol):
    @property
    def root(self) -> Path: ...

    def definitions(self, name: str) -> list[Definition]: ...

    def file_definitions(self, path: str) -> list[Definition]: ...

    def file_imports(self, path: str) -> list[ImportRef]: ...

    def resolve(self, from_path: str, ref: ImportRef) -> list[str]: ...

    def text(self, path: str) -> str | None: ...

    def recent_edits(self, limit: int) -> list[tuple[str, int, int, float]]:
        """(path, first line, last line, time.monotonic() of the edit), newest first."""
        ...

    def open_buffers(self) -> list[str]: ...


# The index that covers an absolute path, or None (no workspace folder holds it).
IndexLookup = Callable[[str], WorkspaceIndex | None]


def no_index(path: str) -> WorkspaceIndex | None:
    return None
