"""Project files that say how imports resolve: go.mod (module path), package.json (package name,
entry point), tsconfig.json / jsconfig.json (baseUrl, paths), Cargo.toml (crate name)."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Manifest:
    kind: str  # "go.mod", "package.json", "tsconfig.json", "jsconfig.json", "Cargo.toml"
    folder: str  # workspace-relative folder holding it ("" for the root)
    name: str = ""  # Go module path, npm package name, crate name (with `_` for `-`)
    entries: tuple[str, ...] = ()  # package.json: types, module, main (relative to folder)
    base_url: str | None = None  # tsconfig: relative to folder
    paths: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tsconfig "@/*": ("src/*",)


_GO_MODULE = re.compile(r"^\s*module\s+(\S+)", re.MULTILINE)


def strip_json_comments(source: str) -> str:
    """JSON with comments and trailing commas (tsconfig.json) as plain JSON."""
    out: list[str] = []
    i, in_string = 0, False
    while i < len(source):
        char = source[i]
        if in_string:
            out.append(char)
            if char == "\\" and i + 1 < len(source):
                out.append(source[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif source.startswith("//", i):
            newline = source.find("\n", i)
            i = len(source) if newline < 0 else newline
            continue
        elif source.startswith("/*", i):
            close = source.find("*/", i + 2)
            i = len(source) if close < 0 else close + 2
            continue
        else:
            out.append(char)
        i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def parse_manifest(kind: str, folder: str, data: bytes) -> Manifest | None:
    """The manifest's import facts, or None when it cannot be read."""
    source = data.decode("utf-8", errors="replace")
    try:
        if kind == "go.mod":
            match = _GO_MODULE.search(source)
            return Manifest(kind, folder, name=match.group(1)) if match else None
        if kind == "Cargo.toml":
            package = tomllib.loads(source).get("package", {})
            name = package.get("name", "") if isinstance(package, dict) else ""
            return Manifest(kind, folder, name=str(name).replace("-", "_"))
        document = json.loads(strip_json_comments(source) if kind != "package.json" else source)
    except (ValueError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    if kind == "package.json":
        entries = [e for key in ("types", "typings", "module", "main", "source") for e in _strings(document.get(key))]
        return Manifest(kind, folder, name=str(document.get("name", "")), entries=tuple(entries))
    options = document.get("compilerOptions", {})
    if not isinstance(options, dict):
        return Manifest(kind, folder)
    base_url = options.get("baseUrl")
    raw_paths = options.get("paths", {})
    paths = {str(k): _strings(v) for k, v in raw_paths.items()} if isinstance(raw_paths, dict) else {}
    return Manifest(kind, folder, base_url=str(base_url) if isinstance(base_url, str) else None, paths=paths)
