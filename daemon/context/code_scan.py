"""What the text around the cursor says without an index: `a.b` pairs, names a file uses without
defining or importing them, the import statement being written and where it points, which class a
variable holds (`x = Cls(...)`, `x: Cls`), and which lines are code rather than prose."""

from __future__ import annotations

import builtins
import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePath
from types import MappingProxyType

from nearcode.daemon.context.identifiers import COMMON_WORDS, identifiers
from nearcode.daemon.context.index_api import Definition, ImportRef


def attribute_pairs(text: str) -> dict[str, list[str]]:
    """`a.b` occurrences: a -> [b, ...] in order of first use."""
    pairs: dict[str, list[str]] = {}
    words = text.replace("\n", " ")
    start = 0
    while True:
        dot = words.find(".", start)
        if dot < 0:
            return pairs
        start = dot + 1
        left = identifiers(words[max(0, dot - 64):dot] + " ")
        right = identifiers(" " + words[dot + 1:dot + 65])
        if not left or not right or not words[dot - 1:dot].strip() or not words[dot + 1:dot + 2].strip():
            continue
        owner, member = left[-1], right[0]
        if words[:dot].endswith(owner) and words[dot + 1:].startswith(member):
            members = pairs.setdefault(owner, [])
            if member not in members:
                members.append(member)


def member_being_written(before: str) -> tuple[str, str] | None:
    """(owner, what is typed of the member) when the text before the cursor ends with `owner.` or
    `owner.part`, else None."""
    match = _MEMBER_BEING_WRITTEN.search(before[-128:])
    return (match.group(1), match.group(2)) if match else None


_MEMBER_BEING_WRITTEN = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.(\w*)$")


def enclosing_class_bases(prefix: str, max_lines: int = 3000) -> tuple[str, ...]:
    """The bases of the Python class the cursor is in (`class TLS(base.Stream, Mixin):` ->
    ("base.Stream", "Mixin")), or () at module level or in a top-level function: what `self.`
    reaches that the file does not define."""
    end = len(prefix)
    start = prefix.rfind("\n") + 1
    line = prefix[start:]
    limit = len(line) - len(line.lstrip()) if line.strip() else len(line)
    for _ in range(max_lines):  # upwards, line by line, without splitting the whole prefix
        if start == 0:
            return ()
        end = start - 1
        start = prefix.rfind("\n", 0, end) + 1
        line = prefix[start:end]
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped or stripped.startswith(("#", ")", "]", "}")) or indent >= limit:
            continue
        if stripped.startswith("class "):
            match = _CLASS_BASES.match(stripped)
            if match is None:
                return ()
            bases = (base.split("[")[0].strip() for base in match.group(1).split(","))
            return tuple(base for base in bases if base and "=" not in base and base.replace(".", "").isidentifier())
        if indent == 0 and stripped.startswith(("def ", "async def ", "@")):
            return ()
        if not stripped.split("#")[0].rstrip().endswith(":"):
            continue  # a continuation line or a string's: only a block's opening line sets the scope
        if indent == 0:
            return ()
        limit = indent
    return ()


_CLASS_BASES = re.compile(r"class\s+\w+\s*(?:\[[^\]]*\])?\s*\(([^)]*)\)")


def unresolved_names(text: str, known: set[str], language: str = "") -> list[str]:
    """Free names of `text`'s code (not `x.attribute`, not in comments and docstrings) it neither
    defines nor imports, most used first: specific ones only (a capital, an underscore or 8
    letters), as generic words are defined everywhere, and no Python builtins."""
    builtin = _PYTHON_BUILTINS if language == "python" else frozenset()
    counts = Counter(
        name for name in _FREE_NAME.findall("\n".join(code_lines(text, language)))
        if name not in known and name not in builtin and name.lower() not in COMMON_WORDS and not name.startswith("__") and len(name) > 3
        and (name[0].isupper() or "_" in name or len(name) >= 8)
    )
    return [name for name, _ in counts.most_common()]


def python_imported_names(text: str) -> set[str]:
    """The names every `import` statement of Python `text` binds, nested ones included (the index
    keeps a file's top-level imports; a function's own `from x import y` binds `y` too)."""
    return scan_python_imports(text)[0]


def scan_python_imports(text: str) -> tuple[set[str], list[ImportRef]]:
    """One pass over Python `text`'s `import` statements: the names they bind (nested ones
    included), and the indented statements as imports (a function's own, which the index, keeping
    top-level ones, does not have), one per imported name: `from ._internal import _git as git`
    makes `git.` a module whose members can be offered."""
    names: set[str] = set()
    nested: list[ImportRef] = []
    for indented, line, module, items in _python_imports(text):
        for name, alias in items:
            names.add(alias or (name if module is not None else name.split(".")[0]))
            if not indented:
                continue
            if module is None:
                nested.append(ImportRef(name, (), alias, 0, line))
            else:
                nested.append(ImportRef(module.lstrip("."), (name,), alias, len(module) - len(module.lstrip(".")), line))
    return names, nested


def _python_imports(text: str) -> Iterator[tuple[bool, int, str | None, list[tuple[str, str]]]]:
    """(indented, line, the module after `from` or None, [(name, alias or "")]) per import statement."""
    at = text.find("import ")
    line, counted_to = 0, 0
    while at >= 0:  # str.find is ~10x faster than a multi-line regex over a 150 kB file
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        match = _PY_IMPORT.match(text, start)
        if match is not None:
            listed = match.group(3)
            if listed.startswith("(") and ")" not in listed:
                close = text.find(")", at)
                listed = text[text.find("(", at):close if close >= 0 else len(text)]
                end = max(end, close)
            items = []
            for item in listed.strip("()").replace("\n", " ").replace("\\", " ").split(","):
                words = item.split()
                if words:
                    items.append((words[0], words[2] if len(words) == 3 and words[1] == "as" else ""))
            line, counted_to = line + text.count("\n", counted_to, start), start
            yield bool(match.group(1)), line, match.group(2), items
        at = text.find("import ", end)


_PY_IMPORT = re.compile(r"([ \t]*)(?:from[ \t]+(\S+)[ \t]+)?import[ \t]+([^\n#]*)")


def code_lines(text: str, language: str, starts_in_prose: bool = False) -> list[str]:
    """`text`'s lines with comments and docstrings blanked (the line count kept). A window of a
    file may begin inside a Python docstring (`starts_in_prose`) or end inside one: its quotes are
    then balanced before blanking, so the code is not taken for prose. A `#` inside a string
    blanks the rest of its line: a heuristic, cheap and language-light."""
    lead = '"""' if starts_in_prose else ""
    balanced = lead + text
    if language == "python" and balanced.count('"""') % 2:
        balanced += '"""'
    prose = _HASH_PROSE if language in _HASH_COMMENT_LANGUAGES else _SLASH_PROSE
    blanked = prose.sub(lambda m: "\n" * m.group().count("\n"), balanced)
    return blanked.split("\n")  # the lead quotes open a docstring the blanking removes with it


_HASH_COMMENT_LANGUAGES = frozenset({"python", "ruby", "shellscript", "perl", "r", "yaml", "toml"})
_HASH_PROSE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|#[^\n]*')
_SLASH_PROSE = re.compile(r"/\*[\s\S]*?\*/|//[^\n]*")
_PYTHON_BUILTINS = frozenset(dir(builtins))
_FREE_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")  # not after a dot: an attribute is its owner's


def writing_import(before: str) -> str:
    """The import statement the cursor's line begins (`from ._inter`), or `import` when the line is
    still empty under an import (a local import block being extended), or "" when neither."""
    lines = before.split("\n")
    line = lines[-1].lstrip()
    if line.startswith(("from ", "import ")):
        return line
    if line:
        return ""
    above = next((text.strip() for text in reversed(lines[:-1]) if text.strip()), "")
    return "import" if above.startswith(("from ", "import ")) else ""


_PY_FROM = re.compile(r"from\s+(\.*)([\w.]*)")


def module_folder(statement: str, path: str) -> str | None:
    """The workspace path (or, for an absolute import, the path fragment) a Python `from` being
    typed points into: `from ._internal` in pkg/color.py -> `pkg/_internal`; `from pkg.data` ->
    `pkg/data` (its last part may be half typed: a prefix of a file or folder name)."""
    match = _PY_FROM.match(statement)
    if match is None or not (match.group(1) or match.group(2)):
        return None
    dots, module = match.group(1), match.group(2).strip(".")
    parts = [p for p in module.split(".") if p]
    if not dots:
        return "/".join(parts) or None
    folder = PurePath(path).parent
    for _ in range(len(dots) - 1):
        folder = folder.parent
    return "/".join([*(p for p in folder.parts if p not in ("", ".")), *parts])


def from_import_being_written(statement: str) -> tuple[ImportRef, str] | None:
    """`from .m import a, pa` being typed: (the module as an import of no names, what is typed of
    the next name: "pa"), or None for any other line."""
    match = _PY_FROM_IMPORT.match(statement)
    if match is None or not (match.group(1) or match.group(2)):
        return None
    return ImportRef(match.group(2), (), "", len(match.group(1)), 0), match.group(3) or ""


_PY_FROM_IMPORT = re.compile(r"from\s+(\.*)([\w.]*)\s+import(?:\s+\(?(?:[\w\s,]*,)?\s*(\w*))?$")


def is_under(path: str, fragment: str) -> bool:
    """`path` lies in (or, with a half-typed last part, next to) the module `fragment` names."""
    return f"/{fragment}" in f"/{path}"


def assigned_classes(text: str, names: set[str], returns: Mapping[str, list[tuple[int, str]]] = MappingProxyType({})) -> dict[str, str]:
    """name -> the class it holds, for `name = Cls(...)`, `self.name = Cls(...)`, `name: Cls`,
    `self.name = param` with `param: Cls` (a constructor keeping what it was given: pydantic's
    `self._generate_schema = generate_schema`) and `name = [self.]f(...)` with `f` in `returns`
    (`returned_classes`: httpx's `transport = self._transport_for_url(...)`, `-> BaseTransport`) in
    `text` (the last one written wins; a capitalised callee or annotation is taken for a class).

    One pass over the file for just these names: a pattern per form, each trying every identifier
    of a 150 kB file, took 3-7 ms apiece of the gathering's 20 ms."""
    if not names:
        return {}
    found: list[tuple[int, str, str]] = []
    kept: list[tuple[int, str, str]] = []  # (where, name, the parameter `self.name = parameter` keeps)
    for m in _held_by(frozenset(names)).finditer(text):
        name, value, on_self = m.group("name"), m.group("value"), text.endswith("self.", 0, m.start())
        if m.group("cls"):
            found.append((m.start(), name, m.group("cls")))
        elif m.group("call") and not m.group("owner") and not m.group("awaited") and _CLASS_NAME.fullmatch(value):
            found.append((m.start(), name, value))
        elif m.group("call") and value in returns:
            line = text.count("\n", 0, m.start())
            # The definition nearest above the call (httpx's Client and AsyncClient each have one).
            above = [cls for defined, cls in returns[value] if defined <= line]
            found.append((m.start(), name, above[-1] if above else returns[value][0][1]))
        elif on_self and m.group("end") is not None and not m.group("owner") and not m.group("awaited"):
            kept.append((m.start(), name, value))
    if kept:
        annotated = {m.group("name"): m.group("cls") for m in _held_by(frozenset(p for _, _, p in kept)).finditer(text)
                     if m.group("cls")}
        found += [(at, name, annotated[parameter]) for at, name, parameter in kept if parameter in annotated]
    return {name: cls for _, name, cls in sorted(found)}


@functools.lru_cache(maxsize=64)
def _held_by(names: frozenset[str]) -> re.Pattern[str]:
    """`name: Cls` and `name = [await] [self.|cls.]value[(]` for these names (whether `self.` comes
    before is read from the text: an optional group in front made the engine try it everywhere)."""
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.compile(
        rf"\b(?P<name>{alternatives})\b\s*"
        r"(?::\s*['\"]?(?P<cls>_*[A-Z]\w*)"
        r"|=\s*(?P<awaited>await\s+)?(?P<owner>(?:self|cls)\.)?(?P<value>[A-Za-z_]\w*)[ \t]*(?P<call>\()?(?P<end>[ \t]*(?:#.*)?$)?)",
        re.MULTILINE,
    )


_CLASS_NAME = re.compile(r"_*[A-Z]\w*")
_RETURNS = re.compile(r"->\s*(?:Optional\[)?['\"]?(_*[A-Z]\w*)")


def returned_classes(definitions: Iterable[Definition]) -> dict[str, list[tuple[int, str]]]:
    """Function or method name -> (line, the class its return annotation names), in line order."""
    out: dict[str, list[tuple[int, str]]] = {}
    for d in sorted(definitions, key=lambda d: d.line):
        if d.kind in ("function", "method"):
            match = _RETURNS.search(d.signature)
            if match and match.group(1) not in _NOT_CLASSES:
                out.setdefault(d.name, []).append((d.line, match.group(1)))
    return out


_NOT_CLASSES = frozenset({"Any", "Optional", "Union", "List", "Dict", "Tuple", "Set", "Type", "Callable", "Iterator",
                          "Iterable", "Generator", "AsyncIterator", "AsyncGenerator", "Awaitable", "Coroutine",
                          "Sequence", "Mapping", "None", "Self", "TypeVar", "NoReturn", "Never", "Literal"})
