"""What a language is to nearcode: the one language table.

Each row says, for one LSP language id, what any part of nearcode may need to know about it: its
file suffixes (for files the editor did not name, e.g. `nearcode complete`), its line-comment
marker (the prompt writes file paths as comments for families without repository tokens), how its
blocks are written, the family whose tooling it shares (TypeScript and JSX are JavaScript to the
test planner, the extractor and the symbol finder), and for the languages tree-sitter parses here,
the grammar.

Feature tables that are about one feature only (which tree-sitter nodes are functions:
lsp/code_actions/symbols.py; the doc-comment style: docstring.py; the extractors:
daemon/workspace/extract/) stay with their feature, keyed by these ids or families
(tests/test_languages.py checks that they name only languages of this table). Grammars are
imported on first use, so a process that never parses pays nothing for them.
"""

from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import tree_sitter

BlockSyntax = Literal["braces", "indentation", "keywords", "none"]  # `{ … }`, the offside rule, `… end`, data


@dataclass(frozen=True)
class Language:
    id: str  # the LSP language id (VS Code's; Neovim's filetypes are `aliases`)
    suffixes: tuple[str, ...] = ()
    line_comment: str = "//"
    blocks: BlockSyntax = "braces"
    family: str = ""  # the language whose tooling this one shares; "" means itself
    grammar: tuple[str, str] | None = None  # (module, function) of its tree-sitter wheel (pyproject.toml)
    aliases: tuple[str, ...] = ()  # other ids editors send for it

    @property
    def family_id(self) -> str:
        return self.family or self.id


_TS_GRAMMAR = "tree_sitter_typescript"
_JS_GRAMMAR = ("tree_sitter_javascript", "language")

_TABLE: tuple[Language, ...] = (
    # The languages tree-sitter parses here (workspace index, code actions).
    Language("python", (".py", ".pyi"), "#", "indentation", grammar=("tree_sitter_python", "language")),
    Language("typescript", (".ts", ".mts", ".cts"), family="javascript", grammar=(_TS_GRAMMAR, "language_typescript")),
    Language("typescriptreact", (".tsx",), family="javascript", grammar=(_TS_GRAMMAR, "language_tsx")),
    Language("javascript", (".js", ".mjs", ".cjs"), grammar=_JS_GRAMMAR),
    Language("javascriptreact", (".jsx",), family="javascript", grammar=_JS_GRAMMAR),
    Language("go", (".go",), grammar=("tree_sitter_go", "language")),
    Language("rust", (".rs",), grammar=("tree_sitter_rust", "language")),
    Language("java", (".java",), grammar=("tree_sitter_java", "language")),
    # Completed as text: brace languages.
    Language("c", (".c", ".h")),
    Language("cpp", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx")),
    Language("csharp", (".cs",), aliases=("cs",)),
    Language("php", (".php",)),
    Language("kotlin", (".kt", ".kts")),
    Language("swift", (".swift",)),
    Language("scala", (".scala",)),
    Language("dart", (".dart",)),
    # Completed as text: other comment markers and blocks.
    Language("ruby", (".rb",), "#", "keywords"),
    Language("lua", (".lua",), "--", "keywords"),
    Language("shellscript", (".sh", ".bash", ".zsh"), "#", "keywords", aliases=("sh", "bash", "zsh")),
    Language("perl", (".pl", ".pm"), "#"),
    Language("r", (".r",), "#"),
    Language("julia", (".jl",), "#", "keywords"),
    Language("elixir", (".ex", ".exs"), "#", "keywords"),
    Language("nim", (".nim",), "#", "indentation"),
    Language("coffeescript", (".coffee",), "#", "indentation"),
    Language("powershell", (".ps1",), "#", aliases=("ps1",)),
    Language("yaml", (".yaml", ".yml"), "#", "indentation"),
    Language("toml", (".toml",), "#", "none"),
    Language("dockerfile", (), "#", "none"),
    Language("makefile", (".mk",), "#", "keywords", aliases=("make",)),
    Language("sql", (".sql",), "--", "keywords"),
    Language("haskell", (".hs",), "--", "indentation"),
    Language("elm", (".elm",), "--", "indentation"),
    Language("ada", (".adb", ".ads"), "--", "keywords"),
    Language("vhdl", (".vhd", ".vhdl"), "--", "keywords"),
    Language("clojure", (".clj", ".cljs", ".cljc"), ";", "keywords"),
    Language("lisp", (".lisp", ".cl"), ";", "keywords"),
    Language("scheme", (".scm", ".ss"), ";", "keywords"),
    Language("emacs-lisp", (".el",), ";", "keywords", aliases=("elisp",)),
)

LANGUAGES: dict[str, Language] = {language.id: language for language in _TABLE}
_BY_ID_OR_ALIAS = {name: language for language in _TABLE for name in (language.id, *language.aliases)}
_SUFFIX_TO_LANGUAGE = {suffix: language.id for language in _TABLE for suffix in language.suffixes}


def find_language(language_id: str) -> Language | None:
    """The table's row for an id editors send (case-insensitive, aliases included); None if unknown."""
    return _BY_ID_OR_ALIAS.get(language_id.lower())


def language_for_path(path: str) -> str:
    return _SUFFIX_TO_LANGUAGE.get(PurePosixPath(path).suffix.lower(), "plaintext")


def family(language_id: str) -> str:
    """The language whose tooling this one shares (`typescriptreact` -> `javascript`); the id itself
    for languages of no family and for unknown ids."""
    row = find_language(language_id)
    return row.family_id if row is not None else language_id


def line_comment(language_id: str) -> str:
    """The line-comment marker ("//" when unknown: the most common one)."""
    row = find_language(language_id)
    return row.line_comment if row is not None else "//"


def blocks(language_id: str) -> BlockSyntax | None:
    """How the language writes blocks; None when the id is unknown."""
    row = find_language(language_id)
    return row.blocks if row is not None else None


def parseable(language_id: str) -> bool:
    """tree-sitter has a grammar for this language here."""
    row = LANGUAGES.get(language_id)
    return row is not None and row.grammar is not None


@functools.cache
def grammar(language_id: str) -> tree_sitter.Language:
    """The tree-sitter language of a parseable language id (KeyError for others). Thread-safe."""
    spec = LANGUAGES[language_id].grammar
    if spec is None:
        raise KeyError(language_id)
    module, function = spec
    return tree_sitter.Language(getattr(importlib.import_module(module), function)())


_parsers = threading.local()


def parser_for(language_id: str) -> tree_sitter.Parser:
    """A parser for this language, one per thread: a tree_sitter.Parser must not be shared between
    threads (the daemon parses on its index worker while the event loop may parse too)."""
    cache: dict[str, tree_sitter.Parser] | None = getattr(_parsers, "cache", None)
    if cache is None:
        cache = _parsers.cache = {}
    parser = cache.get(language_id)
    if parser is None:
        parser = cache[language_id] = tree_sitter.Parser(grammar(language_id))
    return parser
