"""Golden tests of the post-processing filters: one data file per filter in golden/, plus the chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nearcode.lsp.postprocess import FILTERS, Candidate, PostContext, postprocess

GOLDEN = Path(__file__).parent / "golden"


def cases() -> list[Any]:
    out = []
    for file in sorted(GOLDEN.glob("*.json")):
        for case in json.loads(file.read_text()):
            out.append(pytest.param(file.stem, case, id=f"{file.stem}: {case['name']}"))
    return out


def test_every_filter_has_golden_cases() -> None:
    assert {f.stem for f in GOLDEN.glob("*.json")} >= set(FILTERS)


@pytest.mark.parametrize(("filter_name", "case"), cases())
def test_golden(filter_name: str, case: dict[str, Any]) -> None:
    ctx = PostContext(prefix=case["prefix"], suffix=case["suffix"], mode=case["mode"], max_lines=case.get("max_lines", 6))
    if filter_name == "chain":
        result = postprocess(case["input"], ctx)
    else:
        result = FILTERS[filter_name](Candidate(case["input"]), ctx)
    if "dropped" in case:
        assert result.dropped == case["dropped"]
        return
    assert result.dropped is None, result.dropped
    assert result.text == case["text"]
    assert (result.cuts[-1] if result.cuts else None) == case.get("cut")
