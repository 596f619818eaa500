"""The one language table (nearcode/shared/languages.py) and the feature tables keyed off it."""

from __future__ import annotations

import pytest

from nearcode.daemon.workspace.extract import EXTRACTORS
from nearcode.lsp.code_actions.docstring import STYLE_BY_FAMILY
from nearcode.lsp.code_actions.symbols import LANGUAGE_SPECS
from nearcode.shared.languages import (
    LANGUAGES,
    family,
    find_language,
    language_for_path,
    line_comment,
    parseable,
)

# Every table about one feature, by what it is keyed on: a language family of the shared table.
FEATURE_TABLES: dict[str, dict[str, object]] = {
    "symbols.LANGUAGE_SPECS": dict(LANGUAGE_SPECS),
    "docstring.STYLE_BY_FAMILY": dict(STYLE_BY_FAMILY),
    "extract.EXTRACTORS": dict(EXTRACTORS),
}


@pytest.mark.parametrize("table", sorted(FEATURE_TABLES))
def test_feature_tables_name_only_families_of_the_shared_table(table: str) -> None:
    for key in FEATURE_TABLES[table]:
        assert key in LANGUAGES, f"{table} names {key!r}, which nearcode/shared/languages.py does not know"
        assert family(key) == key, f"{table} is keyed by families; {key!r} belongs to {family(key)!r}"


def test_every_parsed_language_has_an_extractor_and_a_symbol_spec() -> None:
    """A grammar added to the table without the code that reads its trees would parse for nothing."""
    for language in (row.id for row in LANGUAGES.values() if parseable(row.id)):
        assert family(language) in EXTRACTORS, language
        assert family(language) in LANGUAGE_SPECS, language


def test_suffixes_and_aliases_name_one_language_each() -> None:
    suffixes = [suffix for row in LANGUAGES.values() for suffix in row.suffixes]
    assert len(suffixes) == len(set(suffixes))
    names = [name for row in LANGUAGES.values() for name in (row.id, *row.aliases)]
    assert len(names) == len(set(names))
    for row in LANGUAGES.values():
        assert all(suffix.startswith(".") and suffix == suffix.lower() for suffix in row.suffixes), row.id
        assert row.family_id in LANGUAGES, row.id


def test_lookups() -> None:
    assert language_for_path("src/App.TSX") == "typescriptreact" and family("typescriptreact") == "javascript"
    assert language_for_path("notes.txt") == "plaintext" and family("plaintext") == "plaintext"
    assert [line_comment(lang) for lang in ("python", "bash", "Lua", "clojure", "go", "unknown")] == ["#", "#", "--", ";", "//", "//"]
    row = find_language("sh")
    assert row is not None and row.id == "shellscript"
    assert parseable("typescript") and not parseable("c") and not parseable("plaintext")
