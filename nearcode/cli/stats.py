"""`nearcode stats`: the user's own acceptance and survival figures, from the local insight file.

    nearcode stats [--days N] [--json]     summary tables (by language, by day)
    nearcode stats --off | --on            stop / resume recording (every editor's server)
    nearcode stats --erase                 delete every recorded row
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from nearcode.lsp.insight.store import InsightStore, database_path, set_turned_off, turned_off
from nearcode.lsp.insight.summary import CHECKPOINT_LABELS, Summary, Totals, summarize


def load_summary(days: int) -> Summary:
    since = time.time() - days * 86_400
    store = InsightStore()
    try:
        return summarize(store.rows(since), since)
    finally:
        store.close()


def run_stats(args: argparse.Namespace) -> int:
    if args.off or args.on:
        set_turned_off(args.off)
        print(f"nearcode: insight recording turned {'off' if args.off else 'on'} ({database_path()})")
        return 0
    if args.erase:
        store = InsightStore()
        try:
            erased = store.erase()
        finally:
            store.close()
        print(f"nearcode: erased {erased} recorded suggestions from {database_path()}")
        return 0
    summary = load_summary(args.days)
    if args.json:
        print(json.dumps(summary.wire(), indent=2))
        return 0
    state = "off (`nearcode stats --on` to resume)" if turned_off() else "on"
    print(f"insight: {database_path()} (recording {state}; local only, no code stored)")
    print(f"last {args.days} days: {summary.total.shown} suggestions shown")
    if not summary.total.shown:
        print("nothing recorded yet: suggestions you see in an editor are counted here")
        return 0
    print()
    print(_table("language", [("all", summary.total), *summary.by_language.items()]))
    print()
    days = list(summary.by_day.items())[-14:]
    print(_table("day", days[::-1]))
    print()
    print("accepted: in whole or part (whole / word / line: suggestions with such an accept); typed over: "
          "the user typed it instead; kept: accepted text still >= 67% the same after 30 s / 2 min / 5 min "
          "(of those measured); latency: request to suggestion")
    return 0


_COLUMNS = ("shown", "accepted", "rate", "whole", "word", "line", "typed over", "dismissed", "chars",
            *(f"kept {label}" for label in CHECKPOINT_LABELS), "p50", "p95")


def _cells(totals: Totals) -> list[str]:
    wire = totals.wire()
    return [
        str(totals.shown), str(totals.accepted), _percent(totals.rate), str(totals.whole), str(totals.by_word),
        str(totals.by_line), str(totals.typed_over), str(totals.dismissed), str(totals.accepted_chars),
        *(_percent(value) for value in totals.survival()),
        _ms(wire["latency_p50_ms"]), _ms(wire["latency_p95_ms"]),
    ]


def _table(label: str, rows: list[tuple[str, Totals]]) -> str:
    header = [label, *_COLUMNS]
    body = [[name, *_cells(totals)] for name, totals in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    return "\n".join(lines)


def _percent(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f} ms"
