"""tree-sitter extraction: one file's definitions and imports (daemon/workspace/model.py).

One module per language family; each walks the top level and class-like bodies only (never
function bodies, apart from Python's `__init__` for `self.x`), which keeps a parse plus extraction
to a few milliseconds for an ordinary file.
"""

from __future__ import annotations

from collections.abc import Callable

from tree_sitter import Node

from nearcode.daemon.workspace.extract import go, java, javascript, python, rust
from nearcode.daemon.workspace.extract.common import Collector
from nearcode.daemon.workspace.model import FileSummary
from nearcode.shared.languages import family, parseable, parser_for

# Keyed by language family (nearcode/shared/languages.py): TypeScript and JSX are JavaScript here.
EXTRACTORS: dict[str, Callable[[Collector, Node], None]] = {
    "python": python.extract,
    "javascript": javascript.extract,
    "go": go.extract,
    "rust": rust.extract,
    "java": java.extract,
}


def summarize(source: bytes, language: str, max_definitions: int = 2_000) -> FileSummary:
    """Definitions and imports of one file; an empty summary for a language without a grammar."""
    extract = EXTRACTORS.get(family(language))
    if not parseable(language) or extract is None:
        return FileSummary(language, (), ())
    tree = parser_for(language).parse(source)
    out = Collector(source, max_definitions)
    extract(out, tree.root_node)
    return FileSummary(language, tuple(out.definitions), tuple(out.imports), out.package)
