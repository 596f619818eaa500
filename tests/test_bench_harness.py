"""The project bench's pure parts (bench/): case generation, scoring, what an editor would insert,
the anchor's request policy. No model, no server: runs in about a second."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """bench/'s modules (scripts that import their siblings by name, as `python bench/x.py` does)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name) for name in ("cases", "casekit", "scoring", "run", "anchor",
                                                              "speculation")}
    finally:
        sys.path.remove(str(BENCH))


def module_text(name: str, functions: int = 8, extra: str = "") -> str:
    parts = [f'"""Module {name}."""', "", "import os", ""]
    for i in range(functions):
        parts += [f"def {name}_step_{i}(values, factor):", f'    """Scale the values of step {i}."""',
                  "    total_count = 0", "    for value in values:", f"        total_count += value * factor + {i}",
                  "    result_list = [total_count, os.sep]", "    return result_list", "", ""]
    return "\n".join(parts) + extra


def package_tree(root: Path, modules: dict[str, str], bench: dict[str, ModuleType]) -> tuple[object, list[object]]:
    cases = bench["cases"]
    package = cases.Package("fakepkg", "fakepkg", "1.0")
    for name, text in modules.items():
        (root / "fakepkg").mkdir(parents=True, exist_ok=True)
        (root / "fakepkg" / f"{name}.py").write_text(text, encoding="utf-8")
    files = [cases.SourceFile(package, root, f"fakepkg/{name}.py") for name in sorted(modules)]
    return package, files


def test_cases_are_deterministic_one_per_file_and_rebuild_their_file(tmp_path: Path, bench: dict[str, ModuleType]) -> None:
    cases = bench["cases"]
    package, files = package_tree(tmp_path, {f"mod{i}": module_text(f"mod{i}") for i in range(10)}, bench)
    mix = {"mid_line": 0.4, "line_start": 0.3, "block": 0.3}
    first, eligible = cases.build_cases({package: files}, {"fakepkg": "1.0"}, False, 10, "7", mix)
    again, _ = cases.build_cases({package: files}, {"fakepkg": "1.0"}, False, 10, "7", mix)
    other_seed, _ = cases.build_cases({package: files}, {"fakepkg": "1.0"}, False, 10, "8", mix)
    assert json.dumps(first) == json.dumps(again) and json.dumps(first) != json.dumps(other_seed)
    assert eligible == {"fakepkg": 10} and len({c["path"] for c in first}) == 10
    assert [c["id"] for c in first] == [f"val-{i:04d}" for i in range(10)]
    assert sorted(c["kind"] for c in first) == ["block"] * 3 + ["line_start"] * 3 + ["mid_line"] * 4
    for case in first:
        original = (tmp_path / case["path"]).read_text(encoding="utf-8")
        lines = case["text"].split("\n")
        cursor = sum(len(x) + 1 for x in lines[: case["cursor"]["line"]]) + case["cursor"]["character"]
        assert case["text"][:cursor] + case["ground_truth"] + case["text"][cursor:] == original
        assert len(lines[case["cursor"]["line"]]) == case["cursor"]["character"]  # the cursor ends its line
        assert case["ground_truth"].strip() and case["source"] == "fakepkg"


def test_files_that_do_not_qualify_are_left_out(tmp_path: Path, bench: dict[str, ModuleType]) -> None:
    read_facts = bench["casekit"].read_facts
    good = tmp_path / "good.py"
    good.write_text(module_text("good"), encoding="utf-8")
    assert read_facts(good) is not None
    for name, text in {"crlf": module_text("crlf").replace("\n", "\r\n"), "short": module_text("short", 1),
                       "table": "ROWS = [\n" + "    (1, 2, 'a', True),\n" * 80 + "]\n" + module_text("t", 2),
                       "broken": module_text("broken") + "\ndef oops(:\n"}.items():
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
        assert read_facts(tmp_path / f"{name}.py") is None, name


def test_a_cross_file_case_needs_a_name_only_another_module_defines(tmp_path: Path,
                                                                    bench: dict[str, ModuleType]) -> None:
    cases = bench["cases"]
    uses = "\n\ndef checkout(basket):\n    price = compute_total_price(basket.items)\n    return price * 2\n"
    modules = {"pricing": module_text("pricing", extra="\n\ndef compute_total_price(items):\n    return sum(items)\n"),
               "shop": module_text("shop", extra=uses)}
    package, files = package_tree(tmp_path, modules, bench)
    mix = {"mid_line": 0.4, "line_start": 0.3, "block": 0.3}
    found, _ = cases.build_cases({package: files}, {"fakepkg": "1.0"}, True, 5, "7", mix, tries=1000)
    assert [c["path"] for c in found] == ["fakepkg/shop.py"]
    case = found[0]
    assert case["foreign_names"] == ["compute_total_price"] and "compute_total_price" not in case["text"]
    assert case["workspace"] == {"root": str(tmp_path), "package": "fakepkg"} and case["id"] == "xval-0000"
    assert cases.is_specific("compute_total_price") and cases.is_specific("HTTPError")
    assert not cases.is_specific("__init__") and not cases.is_specific("startswith") and not cases.is_specific("len")


def test_scoring_follows_the_shared_rules(bench: dict[str, ModuleType]) -> None:
    scoring = bench["scoring"]
    truth = "if x:\n    return y\n"
    hit = scoring.score("if x:   \n    return y\n    more()", truth)
    assert hit.exact_line and hit.exact_full and not hit.exact_full_strict and hit.edit_sim == 1.0
    indented = scoring.score("if x:\n  return y", truth)  # leading whitespace counts for exact_full
    assert indented.exact_line and not indented.exact_full and 0 < indented.edit_sim < 1
    assert scoring.score("   \n", truth) == scoring.Score(empty=True)
    assert scoring.score(None, truth) == scoring.Score()
    assert scoring.levenshtein("kitten", "sitting") == 3
    assert scoring.score("kitten", "sitting").edit_sim == pytest.approx(1 - 3 / 7, abs=1e-6)
    case = {"id": "c", "kind": "mid_line", "source": "s", "path": "p.py", "ground_truth": "abc"}
    results = [scoring.CaseResult.finished(case, "ok", "abc", latency_ms=100.0),
               scoring.CaseResult.finished(case, "ok", "abd", latency_ms=300.0),
               scoring.CaseResult.finished(case, "empty", "", latency_ms=200.0),
               scoring.CaseResult.finished(case, "error", error_kind="timeout")]
    summary = scoring.aggregate(results)
    assert (summary["p50_ms"], summary["p95_ms"], summary["answered"]) == (200.0, 290.0, 3)
    assert (summary["exact_line"], summary["empty"], summary["errors"], summary["timeouts"]) == (0.25, 0.25, 0.25, 1)
    assert summary["edit_sim"] == pytest.approx((1 + 2 / 3) / 4, abs=1e-4)
    assert scoring.summary_line(summary).startswith("cases=4 p50_ms=200 p95_ms=290 exact_line=25.0%")


def test_positions_count_utf16_units(bench: dict[str, ModuleType]) -> None:
    scoring = bench["scoring"]
    text = "a = '𝔘'\nb"
    assert scoring.position_of(text, 7) == {"line": 0, "character": 8}
    assert scoring.offset_of(text, 0, 8) == 7 and scoring.offset_of(text, 1, 1) == len(text)


def test_what_an_editor_inserts_from_an_inline_answer(bench: dict[str, ModuleType]) -> None:
    inserted = bench["run"].inserted_text
    doc, cursor = "x = fo\n", 6
    assert inserted({"items": [{"insertText": "o(1)"}]}, doc, cursor) == ("o(1)", None)
    ranged = {"items": [{"insertText": "foo(1)", "range": {"start": {"line": 0, "character": 4},
                                                           "end": {"line": 0, "character": 6}}}]}
    assert inserted(ranged, doc, cursor) == ("o(1)", None)
    ranged["items"][0]["insertText"] = "bar(1)"
    assert inserted(ranged, doc, cursor) == ("", "range_mismatch")
    assert inserted([{"insertText": {"kind": "snippet", "value": "o(${1:arg})$0"}}], doc, cursor) == ("o(arg)", None)
    assert inserted(None, doc, cursor) == ("", None)


def test_the_anchor_asks_and_shows_like_llama_vscode(bench: dict[str, ModuleType]) -> None:
    anchor = bench["anchor"]
    policy = anchor.Policy()
    lines = ["def f(a):", "    ", "    return a", ""]
    body, blanks = anchor.infill_request(lines, 1, 4, policy)
    assert body is not None and body["prompt"] == "" and blanks == 4 and body["n_indent"] == 4
    assert body["input_prefix"] == "def f(a):\n" and body["input_suffix"] == "\n    return a\n\n"
    assert anchor.infill_request(["x = call(a, b, c, d)"], 0, 8, policy)[0] is None  # 12 characters after
    shown = anchor.shown_text
    assert shown([{"content": "return a"}, {"content": "b = a * 2\n\n"}], lines, 1, 4, 4) == "b = a * 2"
    assert shown({"content": "    x = 1"}, lines, 1, 4, 2) == "  x = 1"  # at most `blanks` spaces go
    assert shown({"content": "\t\tx = 1"}, lines, 1, 4, 0) == "x = 1"  # ... but tabs always (its precedence)
    assert shown({"content": "foo("}, ["y = (", ""], 0, 4, 0) == "foo"  # the line's rest "(" is cut off
    assert shown({"content": "\n"}, lines, 1, 4, 4) == ""


def test_the_speculation_bench_cuts_its_cases_from_this_clone(bench: dict[str, ModuleType]) -> None:
    spec = bench["speculation"]
    cases = spec.build_cases(spec.REPO, 10, 7, 2400, 400)
    assert [c.kind for c in cases].count("mid_line") == 4 and len(cases) == 10
    assert {c.kind for c in cases} == {"mid_line", "line_start", "block"}
    assert len({c.path for c in cases}) == 10  # one case per file
    for case in cases:
        assert case.prompt.startswith("<|fim_prefix|>") and case.prompt.endswith("<|fim_middle|>")
        assert len(case.prompt) < 2400 + 400 + 50 and case.truth.strip()
    assert spec.build_cases(spec.REPO, 10, 7, 2400, 400) == cases  # the seed decides


def test_fim_prompts_keep_whole_lines_around_the_cursor(bench: dict[str, ModuleType]) -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    cursor = text.index("line 50\n") + 4
    prompt = bench["speculation"].fim_prompt(text, cursor, 30, 20)
    assert prompt == "<|fim_prefix|>line 47\nline 48\nline 49\nline<|fim_suffix|> 50\nline 51\nline 52\n<|fim_middle|>"


def test_the_speculation_table_compares_each_mode_with_plain_decoding(bench: dict[str, ModuleType]) -> None:
    spec = bench["speculation"]
    case = spec.Case("spec-00", "block", "x.py", "p", "a = 1\nb = 2")

    def sample(phase: str, ms: float, drafted: int = 0, accepted: int = 0, text: str = "a = 1") -> object:
        return spec.Sample("spec-00", "block", phase, 900.0, 10, 5.0, 20, ms, drafted, accepted, text)

    results = {"none": [sample("cold", 1000.0), sample("cached", 500.0)],
               "ngram": [sample("cold", 1000.0), sample("cached", 250.0, 16, 12, "b")]}
    rows = {(r.mode, r.phase, r.kind): r for r in spec.summarize(results, [case])}
    cached = rows[("ngram", "cached", "all")]
    assert cached.decode_tps == 80.0 and cached.speedup == 2.0 and cached.acceptance == 0.75
    assert cached.exact_first_line == 0 and cached.same_as_none == 0
    assert rows[("ngram", "cold", "block")].speedup == 1.0 and rows[("none", "cold", "block")].acceptance is None
    table = spec.markdown(list(rows.values()))
    assert "| ngram | cached | block | 1 | 80.0 | 2.00x | 16 | 12 | 0.75 | 0.90 s | 0/1 | 0/1 |" in table


async def test_context_reach_finds_the_answers_definition_in_the_block(tmp_path: Path, bench: dict[str, ModuleType]) -> None:
    reach = importlib.import_module("context_reach").reach
    package = tmp_path / "site" / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pricing.py").write_text("class PriceTable:\n    def lookup_price(self, item: str) -> float:\n"
                                        "        return 1.0\n")
    text = "from .pricing import PriceTable\n\n\ndef total(items):\n    table = PriceTable()\n    return table."
    case = {"id": "x-0", "kind": "mid_line", "path": "shop/cart.py", "text": text,
            "cursor": {"line": 5, "character": len("    return table.")}, "foreign_names": ["lookup_price"],
            "workspace": {"root": str(tmp_path / "site"), "package": "shop"}}
    reached, detail = await reach(case, 256, True)
    assert reached and "PriceTable" in detail and "def lookup_price" in detail
    assert not (await reach({**case, "foreign_names": ["defined_nowhere"]}, 256, False))[0]
    # A whole identifier only: `price` is part of `lookup_price` and `PriceTable`, not in the block as a name.
    assert not (await reach({**case, "foreign_names": ["price"]}, 256, False))[0]


def test_validation_packages_come_from_the_pinned_folder_not_the_interpreter(
    tmp_path: Path, bench: dict[str, ModuleType]
) -> None:
    """The validation set reads its packages from the pinned install, so it does not move with
    what nearcode's own dependencies resolve to (uvicorn>=0.30 became 0.55.0 and changed 11 of 200 cases):
    a version there wins over this interpreter's, a package missing there is an error, and a pin
    file already installed is not installed again."""
    cases = bench["cases"]
    (tmp_path / "pygls").mkdir()
    (tmp_path / "pygls" / "server.py").write_text("x = 1\n")
    info = tmp_path / "pygls-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pygls\nVersion: 0.0.1\n")
    (info / "RECORD").write_text("pygls/server.py,,\npygls-0.0.1.dist-info/METADATA,,\n")
    version, files = cases.package_files(cases.Package("pygls", "pygls", "2.1.1"), tmp_path)
    assert version == "0.0.1"  # this interpreter has 2.1.1: the folder's is the one read
    assert [f.relpath for f in files] == ["pygls/server.py"] and files[0].path == tmp_path / "pygls" / "server.py"
    with pytest.raises(SystemExit, match="click is not in"):
        cases.package_files(cases.Package("click", "click", "8.5.1"), tmp_path)
    pinned = tmp_path / "pins.txt"
    pinned.write_text("nothing-installable==0 --hash=sha256:00\n")
    (tmp_path / ".pinned-sha256").write_text(hashlib.sha256(pinned.read_bytes()).hexdigest() + "\n")
    assert cases.install_pinned(tmp_path, pinned) == tmp_path  # pip would fail on this pin file
    assert "uvicorn==0.54.0" in cases.PINNED.read_text() and "--hash=sha256:" in cases.PINNED.read_text()
