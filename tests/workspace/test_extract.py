"""tree-sitter extraction, per language, against golden data: tests/workspace/golden/ holds small
source files and, beside each, the definitions and imports expected from it (one row each, so a
change shows as a readable diff). `NEARCODE_UPDATE_GOLDEN=1 pytest tests/workspace/test_extract.py`
rewrites the expected files; review the diff before committing it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nearcode.daemon.workspace.extract import summarize
from nearcode.daemon.workspace.model import Definition, FileSummary, definition, import_ref
from nearcode.shared.languages import language_for_path

GOLDEN = Path(__file__).parent / "golden"
SOURCES = sorted(p for p in GOLDEN.iterdir() if p.suffix != ".json")


def definitions(summary: FileSummary) -> list[Definition]:
    return [definition("f", row) for row in summary.definitions]


def rows(summary: FileSummary) -> dict[str, object]:
    imports = [import_ref(row) for row in summary.imports]
    return {
        "language": summary.language,
        "package": summary.package,
        "definitions": [f"{d.line} {d.kind} {d.qualified} | {d.signature} | {d.doc}" for d in definitions(summary)],
        "imports": [f"{i.line} {i.module} names={','.join(i.names)} alias={i.alias} level={i.level}" for i in imports],
    }


def test_every_parsed_language_has_a_golden_file() -> None:
    languages = {language_for_path(p.name) for p in SOURCES}
    assert languages >= {"python", "typescript", "typescriptreact", "javascript", "go", "rust", "java"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_golden(source: Path) -> None:
    summary = summarize(source.read_bytes(), language_for_path(source.name))
    expected_file = source.with_name(source.name + ".json")
    got = rows(summary)
    if os.environ.get("NEARCODE_UPDATE_GOLDEN") == "1":
        expected_file.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    assert got == expected


def test_signatures_are_one_line_without_comments_and_values_are_cut() -> None:
    source = (
        b"TABLE = {\n    'a': 1,\n    'b': 2,\n}\n"
        b"LONG = '" + b"x" * 300 + b"'\n"
        b"def f(\n    a: int,  # the a\n    b: str = 'k',\n) -> None:\n    pass\n"
    )
    by_name = {d.name: d for d in definitions(summarize(source, "python"))}
    assert by_name["TABLE"].signature == "TABLE = { ..."
    assert by_name["LONG"].signature.endswith(" ...") and len(by_name["LONG"].signature) < 120
    assert by_name["f"].signature == "def f(a: int, b: str = 'k') -> None:"


def test_definitions_per_file_are_capped() -> None:
    source = "".join(f"def f{i}(): pass\n" for i in range(50)).encode()
    summary = summarize(source, "python", max_definitions=10)
    assert [d.name for d in definitions(summary)] == [f"f{i}" for i in range(10)]


def test_broken_source_still_gives_what_parses() -> None:
    summary = summarize(b"def ok(a):\n    return a\n\ndef broken(:\n\nclass Later:\n    pass\n", "python")
    assert {"ok", "Later"} <= {d.name for d in definitions(summary)}


def test_language_without_grammar_gives_an_empty_summary() -> None:
    assert summarize(b"int main() { return 0; }", "c").definitions == ()
