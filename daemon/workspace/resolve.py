"""Import resolution: the workspace files an import refers to, per language, and name lookup
through a file's imports.

Python: relative imports from the file's package; absolute ones by the module's path suffix
(`a.b` is `.../a/b.py` or `.../a/b/__init__.py`), which covers src layouts and monorepos without
configuration, nearest to the importing file first; imported names that are submodules too.
TS/JS: relative paths with extension and index-file probing (`./x.js` may be `x.ts`), tsconfig /
jsconfig `paths` and `baseUrl`, and packages of the workspace by their package.json name.
Go: the module path from go.mod, the package's folder, its non-test files. Rust: `crate`,
`self`, `super` and workspace crates (Cargo.toml names), to `x.rs` or `x/mod.rs`. Java: classes
by package and name, `*` for a package's files, static imports through their class.
"""

from __future__ import annotations

import posixpath
from typing import Protocol

from nearcode.daemon.workspace.manifests import Manifest
from nearcode.daemon.workspace.model import Definition, FileSummary, ImportRef
from nearcode.shared.languages import family, language_for_path

SCRIPT_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


class IndexView(Protocol):
    """What resolution reads from the index."""

    root_name: str  # the workspace folder's own name

    def has_file(self, path: str) -> bool: ...
    def files_in(self, folder: str) -> tuple[str, ...]: ...
    def files_with_stem(self, stem: str) -> tuple[str, ...]: ...
    def files_in_package(self, package: str) -> tuple[str, ...]: ...
    def file_summary(self, path: str) -> FileSummary | None: ...
    def definitions_in(self, path: str, name: str) -> list[Definition]: ...
    def file_imports(self, path: str) -> list[ImportRef]: ...
    def definitions(self, name: str, limit: int | None = 100) -> list[Definition]: ...
    def manifests(self) -> list[Manifest]: ...


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _join(*parts: str) -> str:
    joined = posixpath.normpath("/".join(p for p in parts if p))
    return "" if joined == "." else joined


def _unique(paths: list[str]) -> list[str]:
    return list(dict.fromkeys(p for p in paths if p))


def resolve(view: IndexView, from_path: str, ref: ImportRef) -> list[str]:
    language = family(language_for_path(from_path))
    if language == "python":
        found = _python(view, from_path, ref)
    elif language == "javascript":  # TypeScript and JSX too
        found = _script(view, from_path, ref.module)
    elif language == "go":
        found = _go(view, ref.module)
    elif language == "rust":
        found = _rust(view, from_path, ref)
    elif language == "java":
        found = _java(view, ref)
    else:
        found = []
    return _unique([p for p in found if not p.startswith("..")])


def lookup(view: IndexView, from_path: str, name: str, limit: int = 50) -> list[Definition]:
    """Definitions of `name` as seen from `from_path`: what its imports bring in, then its own,
    then others in the workspace (at most `limit` in all)."""
    found: list[Definition] = []
    for ref in view.file_imports(from_path):
        if name in ref.names or "*" in ref.names or ref.alias == name:
            for path in resolve(view, from_path, ref):
                found.extend(view.definitions_in(path, name))
    found.extend(view.definitions_in(from_path, name))
    seen = {(d.path, d.line, d.qualified) for d in found}
    found.extend(d for d in view.definitions(name, limit) if (d.path, d.line, d.qualified) not in seen)
    return found[:limit]


# ---------------------------------------------------------------- Python


def _python_file(view: IndexView, target: str) -> str | None:
    for candidate in (f"{target}.py", f"{target}.pyi", f"{target}/__init__.py", f"{target}/__init__.pyi"):
        if view.has_file(candidate):
            return candidate
    return None


_PY_ENDINGS = (".py", ".pyi", "/__init__.py", "/__init__.pyi")


def _is_package(view: IndexView, folder: str) -> bool:
    return view.has_file(_join(folder, "__init__.py")) or view.has_file(_join(folder, "__init__.pyi"))


def _suffix_matches(view: IndexView, parts: list[str]) -> list[tuple[str, str]]:
    """(file, the folder before the match) for every file that is module `parts`."""
    tail = "/".join(parts)
    found = []
    for path in view.files_with_stem(parts[-1]):
        for ending in _PY_ENDINGS:
            if ("/" + path).endswith("/" + tail + ending):
                found.append((path, path[: len(path) - len(tail + ending)].rstrip("/")))
    return found


def _by_suffix(view: IndexView, from_path: str, parts: list[str]) -> str | None:
    """The file of module `a.b.c` anywhere in the workspace below an import root (a folder that is
    not a package itself, so a package's own `types.py` is not the standard library's `types`),
    the one nearest `from_path` first. A workspace that is a package answers to its own name."""
    matches = [path for path, folder in _suffix_matches(view, parts) if not _is_package(view, folder)]
    if len(parts) > 1 and parts[0] == view.root_name and _is_package(view, ""):
        matches += [path for path, folder in _suffix_matches(view, parts[1:]) if not folder]
    if not matches:
        return None
    return max(matches, key=lambda p: (len(posixpath.commonprefix([p, from_path])), -len(p)))


def _python(view: IndexView, from_path: str, ref: ImportRef) -> list[str]:
    parts = [p for p in ref.module.split(".") if p]
    found: list[str | None] = []
    if ref.level:
        base = _folder(from_path).split("/") if _folder(from_path) else []
        if ref.level - 1 > len(base):
            return []
        base = base[: len(base) - (ref.level - 1)]
        target = _join(*base, *parts)
        found += [_python_file(view, _join(target, name)) for name in ref.names if name != "*"]
        found.append(_python_file(view, target) if target else _python_file(view, "__init__"))
    elif parts:
        found += [_by_suffix(view, from_path, [*parts, name]) for name in ref.names if name != "*"]
        found.append(_by_suffix(view, from_path, parts))
    return [p for p in found if p is not None]


# ---------------------------------------------------------------- TypeScript / JavaScript


def _script_file(view: IndexView, target: str) -> list[str]:
    if not target or target.startswith(".."):
        return []
    if view.has_file(target):
        return [target]
    stem = target
    for written in (".js", ".jsx", ".mjs", ".cjs"):  # TypeScript's ESM imports name the output file
        if target.endswith(written):
            stem = target[: -len(written)]
            break
    for candidate in [stem + ext for ext in SCRIPT_EXTENSIONS] + [f"{target}/index{ext}" for ext in SCRIPT_EXTENSIONS]:
        if view.has_file(candidate):
            return [candidate]
    return []


def _nearest(manifests: list[Manifest], kinds: tuple[str, ...], path: str) -> Manifest | None:
    """The deepest manifest of these kinds whose folder holds `path`."""
    holding = [m for m in manifests if m.kind in kinds and (not m.folder or path.startswith(m.folder + "/"))]
    return max(holding, key=lambda m: len(m.folder), default=None)


def _script(view: IndexView, from_path: str, spec: str) -> list[str]:
    if spec.startswith("."):
        return _script_file(view, _join(_folder(from_path), spec))
    manifests = view.manifests()
    config = _nearest(manifests, ("tsconfig.json", "jsconfig.json"), from_path)
    if config is not None:
        base = _join(config.folder, config.base_url or "")
        for pattern, targets in config.paths.items():
            head, star, tail = pattern.partition("*")
            if spec == pattern or (star and spec.startswith(head) and spec.endswith(tail)):
                middle = spec[len(head) : len(spec) - len(tail)] if star else ""
                for target in targets:
                    if found := _script_file(view, _join(base, target.replace("*", middle))):
                        return found
        if config.base_url is not None and (found := _script_file(view, _join(base, spec))):
            return found
    for package in (m for m in manifests if m.kind == "package.json" and m.name):
        if spec != package.name and not spec.startswith(package.name + "/"):
            continue
        rest = spec[len(package.name) :].lstrip("/")
        if rest:
            return _script_file(view, _join(package.folder, rest)) or _script_file(view, _join(package.folder, "src", rest))
        for entry in (*package.entries, "src/index", "index"):
            target = _join(package.folder, entry)
            if found := _script_file(view, target.removesuffix(".d.ts")):
                return found
    return []


# ---------------------------------------------------------------- Go


def _go(view: IndexView, import_path: str) -> list[str]:
    modules = [
        m for m in view.manifests()
        if m.kind == "go.mod" and m.name and (import_path == m.name or import_path.startswith(m.name + "/"))
    ]
    if not modules:
        return []
    module = max(modules, key=lambda m: len(m.name))
    folder = _join(module.folder, import_path[len(module.name) :].lstrip("/"))
    return [p for p in view.files_in(folder) if p.endswith(".go") and not p.endswith("_test.go")]


# ---------------------------------------------------------------- Rust


def _rust_file(view: IndexView, src: str, module: list[str]) -> str | None:
    candidates = [_join(src, "lib.rs"), _join(src, "main.rs")] if not module else [
        _join(src, *module) + ".rs", _join(src, *module, "mod.rs")
    ]
    return next((c for c in candidates if view.has_file(c)), None)


def _rust_module_of(path: str, src: str) -> list[str] | None:
    """The module path of a file below a crate's src/: `src/a/b.rs` -> [a, b], `src/a/mod.rs` -> [a]."""
    prefix = src + "/" if src else ""
    if not path.startswith(prefix) or not path.endswith(".rs"):
        return None
    parts = path[len(prefix) : -3].split("/")
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts = parts[:-1]
    return parts


def _rust(view: IndexView, from_path: str, ref: ImportRef) -> list[str]:
    manifests = view.manifests()
    crate = _nearest(manifests, ("Cargo.toml",), from_path)
    src = _join(crate.folder if crate is not None else "", "src")
    current = _rust_module_of(from_path, src)
    segments = [s for s in ref.module.split("::") if s]
    first = segments[0] if segments else ""
    if first == "crate":
        base: list[str] = []
        segments = segments[1:]
    elif first in ("self", "super") and current is not None:
        base = list(current)
        while segments and segments[0] in ("self", "super"):
            if segments.pop(0) == "super":
                base = base[:-1]
    else:
        other = next((m for m in manifests if m.kind == "Cargo.toml" and m.name == first), None)
        if other is None:
            return []  # std or a crate from outside the workspace
        src, base, segments = _join(other.folder, "src"), [], segments[1:]
    module = base + segments
    found: list[str] = []
    for name in ref.names or ("self",):
        target = module if name in ("self", "*") else [*module, name]
        for depth in range(len(target), -1, -1):  # a name inside a module, or an inline `mod`
            file = _rust_file(view, src, target[:depth])
            if file is not None:
                found.append(file)
                break
    return found


# ---------------------------------------------------------------- Java


def _java_class(view: IndexView, package: str, name: str) -> list[str]:
    return [p for p in view.files_with_stem(name) if p.endswith(".java") and _package(view, p) == package]


def _package(view: IndexView, path: str) -> str:
    summary = view.file_summary(path)
    return summary.package if summary is not None else ""


def _java(view: IndexView, ref: ImportRef) -> list[str]:
    found: list[str] = []
    outer, _, last = ref.module.rpartition(".")
    for name in ref.names:
        if name == "*":
            files = [p for p in view.files_in_package(ref.module) if p.endswith(".java")]
            found += files or _java_class(view, outer, last)  # `import static a.B.*`
        else:
            found += _java_class(view, ref.module, name) or _java_class(view, outer, last)
    return found
