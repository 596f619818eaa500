"""The figures `nearcode stats` prints and `nearcode dashboard` plots, from the insight rows."""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from nearcode.lsp.insight.store import SURVIVAL_COLUMNS
from nearcode.shared.percentile import percentile

KEPT_AT = 0.67  # survival at or above this counts as kept (Cody: difference below 0.33)
CHECKPOINT_LABELS = ("30s", "2m", "5m")
LATENCY_BINS_MS = (100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)


@dataclass
class Totals:
    shown: int = 0
    accepted: int = 0  # accepted in whole or in part
    whole: int = 0
    by_word: int = 0  # suggestions with at least one accept-next-word
    by_line: int = 0
    typed_over: int = 0
    dismissed: int = 0
    accepted_chars: int = 0
    typed_chars: int = 0
    alternatives_accepted: int = 0  # an alternative (not the first choice) was taken
    kept: list[int] = field(default_factory=lambda: [0] * len(SURVIVAL_COLUMNS))
    measured: list[int] = field(default_factory=lambda: [0] * len(SURVIVAL_COLUMNS))
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, row: sqlite3.Row) -> None:
        self.shown += 1
        outcome = row["outcome"]
        if outcome in ("accepted", "partial"):
            self.accepted += 1
            self.whole += bool(row["accepted_whole"])
            self.by_word += row["accepted_words"] > 0
            self.by_line += row["accepted_lines"] > 0
            self.alternatives_accepted += (row["accepted_choice"] or 0) > 0
        self.typed_over += outcome == "typed_over"
        self.dismissed += outcome == "dismissed"
        self.accepted_chars += row["accepted_chars"]
        self.typed_chars += row["typed_chars"]
        for index, column in enumerate(SURVIVAL_COLUMNS):
            if row[column] is not None:
                self.measured[index] += 1
                self.kept[index] += row[column] >= KEPT_AT
        if row["latency_ms"] is not None:  # what the user waited, cache answers included
            self.latencies_ms.append(float(row["latency_ms"]))

    @property
    def rate(self) -> float | None:
        return self.accepted / self.shown if self.shown else None

    def survival(self) -> list[float | None]:
        """Share of accepted texts still (mostly) there at each checkpoint, of those measured."""
        return [kept / measured if measured else None for kept, measured in zip(self.kept, self.measured, strict=True)]

    def wire(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        data["rate"] = self.rate
        data["survival"] = self.survival()
        data["latency_p50_ms"] = percentile(self.latencies_ms, 50)
        data["latency_p95_ms"] = percentile(self.latencies_ms, 95)
        return data


@dataclass
class Summary:
    since: float
    total: Totals = field(default_factory=Totals)
    by_language: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    by_day: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    latency_histogram: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BINS_MS) + 1))

    def wire(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "checkpoints": list(CHECKPOINT_LABELS),
            "kept_at": KEPT_AT,
            "total": self.total.wire(),
            "by_language": {k: v.wire() for k, v in sorted(self.by_language.items(), key=lambda kv: -kv[1].shown)},
            "by_day": {k: v.wire() for k, v in sorted(self.by_day.items())},
            "latency_bins_ms": list(LATENCY_BINS_MS),
            "latency_histogram": self.latency_histogram,
        }


def summarize(rows: Iterable[sqlite3.Row], since: float) -> Summary:
    summary = Summary(since=since)
    for row in rows:
        if row["outcome"] == "pending" and row["resolved_at"] is None and time.time() - row["shown_at"] < 60:
            continue  # still on screen: not decided yet
        day = time.strftime("%Y-%m-%d", time.localtime(row["shown_at"]))
        for totals in (summary.total, summary.by_language[row["language"]], summary.by_day[day]):
            totals.add(row)
        if row["latency_ms"] is not None:
            summary.latency_histogram[_bin(float(row["latency_ms"]))] += 1
    return summary


def _bin(latency_ms: float) -> int:
    for index, edge in enumerate(LATENCY_BINS_MS):
        if latency_ms < edge:
            return index
    return len(LATENCY_BINS_MS)
