"""What context retrieval needs from a workspace index (daemon/workspace builds the real one).

Retrieval is written against this Protocol so that its logic is tested with a small in-memory index
and runs unchanged on the watched, tree-sitter-built one. Every method is synchronous and fast
(an in-memory lookup); retrieval still calls them off the event loop, under a deadline. Paths are
relative to the index's root, in posix form, both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

DefinitionKind = Literal["class", "function", "method", "constant", "variable", "attribute"]


@dataclass(frozen=True)
class Definition:
    name: str
    qualified: str  # e.g. "Model.validate": methods and attributes carry their class
    kind: DefinitionKind
    path: str  # relative to the workspace folder, posix
    line: int  # 0-based
    signature: str  # "def f(a: int, b: str = '') -> bool", "class C(Base)", "X: int = 3"
    doc: str  # first line of its docstring, or ""


@dataclass(frozen=True)
class ImportRef:
    module: str  # "pkg.mod", "./util", "fmt"; relative Python imports without their dots
    names: tuple[str, ...]  # imported names; () for a whole-module import
    alias: str  # `import numpy as np` -> "np"; "" when none
    level: int  # Python relative import level (dots), else 0
    line: int


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
