"""What the workspace index holds and hands out: definitions, imports, one file's summary, the
index's status and its limits.

The index stores definitions and imports as plain tuples of strings and ints (rows), not as objects:
20,000 files make a few hundred thousand of them, and Python's garbage collector stops the whole
daemon to walk every container object it tracks (measured: 0.3-0.5 s pauses with 160,000 dataclass
instances). Tuples of atoms are untracked after their first collection, so they cost nothing
there. `Definition` and `ImportRef` are built from rows when asked for, a handful at a time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

DefinitionKind = Literal["class", "function", "method", "constant", "variable", "attribute"]
IndexState = Literal["scanning", "ready", "capped", "closed"]


@dataclass(frozen=True, slots=True)
class Definition:
    name: str  # "Foo", "bar", "MAX"
    qualified: str  # "Foo.bar" for a method or attribute, else name
    kind: DefinitionKind
    path: str  # workspace-relative, posix
    line: int  # 0-based
    signature: str  # "def bar(self, x: int = 1) -> str:", "class Foo(Base):", "MAX = 3"
    doc: str  # first docstring / doc-comment line, or ""


@dataclass(frozen=True, slots=True)
class ImportRef:
    """One import statement (or one group of it) as written.

    Python `from ..a import b, c` is module "a", names ("b", "c"), level 2; `import a.b as x` is
    module "a.b", alias "x". TS/JS: module is the specifier ("./x", "react"), names the imported
    (exported) names, "default" for a default import, alias the namespace or default binding.
    Go: module is the import path, alias the package name given. Rust: module is the path before
    the last segment ("crate::util"), names the last segments ("parse", "*"); `mod x;` is module
    "self::x" with no names. Java: module is the package or class ("java.util"), names ("List",)
    or ("*",).
    """

    module: str
    names: tuple[str, ...]
    alias: str
    level: int  # Python relative-import dots; 0 elsewhere
    line: int  # 0-based


# name, qualified, kind, line, signature, doc (the path is the file's)
DefinitionRow = tuple[str, str, DefinitionKind, int, str, str]
# module, names, alias, level, line
ImportRow = tuple[str, tuple[str, ...], str, int, int]


def definition(path: str, row: DefinitionRow) -> Definition:
    name, qualified, kind, line, signature, doc = row
    return Definition(name, qualified, kind, path, line, signature, doc)


def import_ref(row: ImportRow) -> ImportRef:
    return ImportRef(*row)


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What tree-sitter found in one file, as rows (see above)."""

    language: str
    definitions: tuple[DefinitionRow, ...]
    imports: tuple[ImportRow, ...]
    package: str = ""  # Go package name, Java package; "" elsewhere


@dataclass(frozen=True)
class IndexStatus:
    root: str
    state: IndexState
    files: int  # files indexed (parsed)
    definitions: int
    message: str = ""  # why it is capped, what was skipped
    discovered: int = 0  # files found by the scan so far (its progress is parsed / discovered)
    parsed: int = 0
    scan_seconds: float | None = None  # how long the first full scan took, once done
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> files left out


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


@dataclass(frozen=True)
class IndexLimits:
    """How much one workspace index may take. The environment variables are for tests, benchmarks
    and users with unusual trees; the defaults suit a laptop."""

    max_files: int = 20_000  # files parsed; beyond it the index is "capped", with a message
    max_entries: int = 400_000  # folder entries looked at: a tree of mostly other files stops too
    max_file_bytes: int = 512 * 1024  # larger files are generated or minified; parsing one holds the GIL
    max_definitions_per_file: int = 2_000
    grace_s: float = 60.0  # an index no editor uses any more is closed after this
    nice: int = 10  # OS priority of the index worker thread (Linux: per thread)

    @classmethod
    def from_environment(cls) -> IndexLimits:
        base = cls()
        return cls(
            max_files=_env_int("NEARCODE_INDEX_MAX_FILES", base.max_files),
            max_entries=_env_int("NEARCODE_INDEX_MAX_ENTRIES", base.max_entries),
            max_file_bytes=_env_int("NEARCODE_INDEX_MAX_FILE_BYTES", base.max_file_bytes),
            grace_s=_env_float("NEARCODE_INDEX_GRACE_S", base.grace_s),
            nice=_env_int("NEARCODE_INDEX_NICE", base.nice),
        )
