"""Cases in, results out: the results JSON (the shared bench's shape: meta, summary, by_kind,
by_source, cases) and the Markdown tables of one run or of several side by side."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from scoring import CaseResult, aggregate, fmt_ms, grouped

BENCH_HOME = Path(os.environ.get("BENCH_HOME", "/tmp/bench"))


def load_cases(path: Path, limit: int | None = None, kinds: str | None = None) -> list[dict[str, Any]]:
    """The first `limit` cases of the file (of the comma-listed `kinds` only, when given)."""
    wanted = set(kinds.split(",")) if kinds else None
    cases = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip() and (case := json.loads(line)) and (wanted is None or case["kind"] in wanted):
                cases.append(case)
                if limit and len(cases) >= limit:
                    break
    return cases


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write_results(out: Path, meta: dict[str, Any], results: list[CaseResult],
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the results JSON and its Markdown summary (same name, .md); the document."""
    doc = {"meta": meta, "summary": aggregate(results), "by_kind": grouped(results, "kind"),
           "by_source": grouped(results, "source"), **(extra or {}),
           "cases": [r.as_json() for r in results]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(run_markdown(doc) + "\n", encoding="utf-8")
    return doc


# ---- Markdown ------------------------------------------------------------------------------------

COLUMNS = [("cases", "cases"), ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"), ("exact first line", "exact_line"),
           ("exact full", "exact_full"), ("edit similarity", "edit_sim"), ("empty", "empty"), ("errors", "errors")]
RATES = {"exact_line", "exact_full", "empty", "errors"}


def cell(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in RATES:
        return f"{value * 100:.1f}%"
    if key == "edit_sim":
        return f"{value:.3f}"
    if key.endswith("_ms"):
        return fmt_ms(value)
    return str(value)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def _breakdown(docs: list[tuple[str, dict[str, Any]]], group: str) -> list[str]:
    names = sorted({k for _, doc in docs for k in doc.get(group, {})})
    rows = [[name, *([label] if len(docs) > 1 else []), *(cell(k, agg.get(k)) for _, k in COLUMNS)]
            for name in names for label, doc in docs if (agg := doc.get(group, {}).get(name))]
    head = [group.removeprefix("by_"), *(["run"] if len(docs) > 1 else []), *(t for t, _ in COLUMNS)]
    return _table(head, rows)


def run_markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    lines = [f"## {meta.get('label', meta.get('tool'))}: {meta.get('mode', '')} on {meta.get('cases_file')}", "",
             f"- cases sha256 `{meta.get('cases_sha256')}`; started {meta.get('started')}; wall {meta.get('wall_s')} s",
             *(f"- {note}" for note in meta.get("notes", [])), "",
             *_table([t for t, _ in COLUMNS], [[cell(k, doc["summary"].get(k)) for _, k in COLUMNS]]), "",
             *_breakdown([("", doc)], "by_kind"), "", *_breakdown([("", doc)], "by_source")]
    if doc.get("typing"):
        lines += ["", "Typing: " + ", ".join(f"{k} {v}" for k, v in doc["typing"].items())]
    return "\n".join(lines)


def side_by_side(docs: list[tuple[str, dict[str, Any]]], header: list[str]) -> str:
    """Several runs in one table (a column each), then by kind and by source."""
    rows = [[title, *(cell(key, doc["summary"].get(key)) for _, doc in docs)] for title, key in COLUMNS]
    rows.append(["load (others' CPU share)", *(f"{doc['meta'].get('host', {}).get('others_cpu_share', 0) * 100:.0f}%"
                                               for _, doc in docs)])
    rows.append(["wall s", *(str(doc["meta"].get("wall_s")) for _, doc in docs)])
    out = [*header, "", *_table(["metric", *(label for label, _ in docs)], rows), "", "By kind:", "",
           *_breakdown(docs, "by_kind"), "", "By source:", "", *_breakdown(docs, "by_source")]
    if len({doc["meta"].get("cases_sha256") for _, doc in docs}) > 1:
        out += ["", "**Warning: the runs used different cases files; they do not compare.**"]
    return "\n".join(out)
