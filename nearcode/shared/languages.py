"""LSP language ids nearcode completes, and what it needs to know about each: the file suffixes,
and for the languages tree-sitter parses here, the grammar.

This is the one language table: the code actions (lsp/code_actions/symbols.py) and the workspace
index (daemon/workspace/) both take their parsers from it. Grammars are imported on first use, so
a process that never parses pays nothing for them.
"""

from __future__ import annotations

import functools
import importlib
import threading
from pathlib import PurePosixPath

import tree_sitter

# language id -> file suffixes (for files the editor did not name, e.g. `nearcode complete`).
LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "typescript": (".ts", ".mts", ".cts"),
    "typescriptreact": (".tsx",),
    "javascript": (".js", ".mjs", ".cjs"),
    "javascriptreact": (".jsx",),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
    "csharp": (".cs",),
    "ruby": (".rb",),
    "php": (".php",),
    "kotlin": (".kt",),
    "swift": (".swift",),
    "lua": (".lua",),
    "shellscript": (".sh", ".bash"),
}

# language id -> (module, function) of its tree-sitter grammar wheel (pinned in pyproject.toml).
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}

_SUFFIX_TO_LANGUAGE = {suffix: language for language, suffixes in LANGUAGES.items() for suffix in suffixes}


def language_for_path(path: str) -> str:
    return _SUFFIX_TO_LANGUAGE.get(PurePosixPath(path).suffix.lower(), "plaintext")


def parseable(language: str) -> bool:
    """tree-sitter has a grammar for this language here."""
    return language in GRAMMARS


@functools.cache
def grammar(language: str) -> tree_sitter.Language:
    """The tree-sitter language of a parseable language id (KeyError for others). Thread-safe."""
    module, function = GRAMMARS[language]
    return tree_sitter.Language(getattr(importlib.import_module(module), function)())


_parsers = threading.local()


def parser_for(language: str) -> tree_sitter.Parser:
    """A parser for this language, one per thread: a tree_sitter.Parser must not be shared between
    threads (the daemon parses on its index worker while the event loop may parse too)."""
    cache: dict[str, tree_sitter.Parser] | None = getattr(_parsers, "cache", None)
    if cache is None:
        cache = _parsers.cache = {}
    parser = cache.get(language)
    if parser is None:
        parser = cache[language] = tree_sitter.Parser(grammar(language))
    return parser
