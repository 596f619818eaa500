"""A small in-memory workspace index for fast tests of context retrieval (Python files only).

It implements the WorkspaceIndex protocol (daemon/context/index_api.py) from source strings with
the standard library's `ast`, so tests state a project as files and get real definitions,
signatures, docstrings and imports; `delay_s` makes every call slow (the deadline tests).
"""

from __future__ import annotations

import ast
import time
from pathlib import Path, PurePosixPath

from nearcode.daemon.context.index_api import Definition, DefinitionKind, ImportRef


class MemoryIndex:
    def __init__(self, root: str, files: dict[str, str], delay_s: float = 0.0) -> None:
        self._root = Path(root)
        self.files = dict(files)  # workspace-relative posix paths, as the real index has them
        self.delay_s = delay_s
        self.open: list[str] = []
        self.edits: list[tuple[str, int, int, float]] = []
        self.calls = 0
        self._parsed: dict[str, tuple[str, list[Definition]]] = {}  # path -> (its text, definitions)

    @property
    def root(self) -> Path:
        return self._root

    def _slow(self) -> None:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)

    def definitions(self, name: str) -> list[Definition]:
        self._slow()
        return [d for path in self.files for d in self._parse(path) if d.name == name]

    def file_definitions(self, path: str) -> list[Definition]:
        self._slow()
        return self._parse(path)

    def file_imports(self, path: str) -> list[ImportRef]:
        self._slow()
        try:
            tree = ast.parse(self.files.get(path, ""))
        except SyntaxError:
            return []
        refs = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                refs += [ImportRef(a.name, (), a.asname or "", 0, node.lineno - 1) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = tuple(a.name for a in node.names)
                alias = node.names[0].asname or "" if len(node.names) == 1 else ""
                refs.append(ImportRef(node.module or "", names, alias, node.level, node.lineno - 1))
        return refs

    def resolve(self, from_path: str, ref: ImportRef) -> list[str]:
        self._slow()
        base = PurePosixPath(from_path).parent
        for _ in range(max(0, ref.level - 1)):
            base = base.parent
        start = base if ref.level else PurePosixPath("")
        target = start.joinpath(*ref.module.split(".")) if ref.module else start
        found = [f"{target}.py", f"{target}/__init__.py"]
        return [f for f in found if f in self.files]

    def text(self, path: str) -> str | None:
        self._slow()
        return self.files.get(path)

    def recent_edits(self, limit: int) -> list[tuple[str, int, int, float]]:
        self._slow()
        return self.edits[-limit:]

    def open_buffers(self) -> list[str]:
        self._slow()
        return list(self.open)

    def _parse(self, path: str) -> list[Definition]:
        """The file's definitions, parsed once per text (like the real index: once per change)."""
        source = self.files.get(path, "")
        cached = self._parsed.get(path)
        if cached is None or cached[0] != source:
            cached = self._parsed[path] = (source, _definitions(path, source))
        return list(cached[1])


def _definitions(path: str, source: str) -> list[Definition]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[Definition] = []

    def add(node: ast.AST, name: str, kind: DefinitionKind, qualified: str) -> None:
        doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef | ast.ClassDef) else None
        segment = ast.get_source_segment(source, node) or name
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            header = segment.split(":\n", 1)[0] if ":\n" in segment else segment.split("\n", 1)[0]
        else:
            header = segment.split("\n", 1)[0]
        line = getattr(node, "lineno", 1) - 1
        out.append(Definition(name, qualified, kind, path, line, header, (doc or "").split("\n")[0]))

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            add(node, node.name, "class", node.name)
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    add(member, member.name, "method", f"{node.name}.{member.name}")
                elif isinstance(member, ast.AnnAssign | ast.Assign):
                    for target in _targets(member):
                        add(member, target, "attribute", f"{node.name}.{target}")
        elif isinstance(node, ast.FunctionDef):
            add(node, node.name, "function", node.name)
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            for target in _targets(node):
                add(node, target, "constant" if target.isupper() else "variable", target)
    return out


def _targets(node: ast.Assign | ast.AnnAssign) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [t.id for t in targets if isinstance(t, ast.Name)]
