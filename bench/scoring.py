"""Positions, scoring and summary statistics of the project bench (standard library only).

Scoring is the shared bench's (../shared/bench/README.md, "What the numbers mean"), so figures of
both harnesses read the same way:

* ``exact_line``: first line of the suggestion == first line of the truth, both ``strip()``ped.
* ``exact_full``: the suggestion cut to the truth's line count equals the truth (trailing
  whitespace of each line and trailing blank lines ignored; leading whitespace counts).
* ``exact_full_strict``: the same without the cut (a longer suggestion fails).
* ``edit_sim``: 1 - Levenshtein / max length of the cut, normalised suggestion and the normalised
  truth; 0 for an empty suggestion or an error.
* ``empty``: answered with nothing to insert; ``errors``: timeout, JSON-RPC or transport error.
Rates are over all cases (an error scores 0 everywhere); latencies over answered requests only.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "empty", "error"]


# ---- positions: LSP lines are split on "\n" only, characters count UTF-16 code units --------


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf16_to_index(line: str, character: int) -> int:
    """The str index of UTF-16 column `character` in `line` (clamped to the line)."""
    units = 0
    for index, ch in enumerate(line):
        if units >= character:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def offset_of(text: str, line: int, character: int) -> int:
    """The str offset of an LSP position in `text` (clamped to the text)."""
    lines = text.split("\n")
    if line >= len(lines):
        return len(text)
    start = sum(len(x) + 1 for x in lines[:line])
    return start + utf16_to_index(lines[line], character)


def position_of(text: str, offset: int) -> dict[str, int]:
    start = text.rfind("\n", 0, offset) + 1
    return {"line": text.count("\n", 0, offset), "character": utf16_len(text[start:offset])}


# ---- one suggestion against its truth ------------------------------------------------------


@dataclass(frozen=True)
class Score:
    exact_line: bool = False
    exact_full: bool = False
    exact_full_strict: bool = False
    edit_sim: float = 0.0
    empty: bool = False


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def edit_similarity(a: str, b: str) -> float:
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - levenshtein(a, b) / longest


def _normalised_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def score(suggestion: str | None, truth: str) -> Score:
    """Score what the editor would insert (None: the request failed) against the truth."""
    if suggestion is None:
        return Score()
    if not suggestion.strip():
        return Score(empty=True)
    truth_lines, suggested = _normalised_lines(truth), _normalised_lines(suggestion)
    cut = suggested[: max(1, len(truth_lines))]
    return Score(
        exact_line=suggestion.split("\n", 1)[0].strip() == truth.split("\n", 1)[0].strip(),
        exact_full=cut == truth_lines,
        exact_full_strict=suggested == truth_lines,
        edit_sim=round(edit_similarity("\n".join(cut), "\n".join(truth_lines)), 6),
    )


# ---- results of a run ------------------------------------------------------------------------


@dataclass
class CaseResult:
    """One case's outcome, as written into the results JSON."""

    id: str
    kind: str
    source: str
    path: str
    status: Status
    ground_truth: str
    suggestion: str = ""
    latency_ms: float | None = None
    error_kind: str | None = None  # timeout | rpc | crash | server | http | transport
    error: str | None = None
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # mode-specific extras
    score: Score = field(default_factory=Score)

    @classmethod
    def finished(cls, case: dict[str, Any], status: Status, suggestion: str = "", truth: str | None = None,
                 **extra: Any) -> CaseResult:
        """A scored result for `case` (`truth` overrides the case's, e.g. after typing)."""
        truth = case["ground_truth"] if truth is None else truth
        result = cls(id=case["id"], kind=case["kind"], source=case["source"], path=case["path"],
                     status=status, ground_truth=truth, suggestion=suggestion, **extra)
        result.score = score(None if status == "error" else suggestion, truth)
        return result

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("score"))
        return data


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), as the shared bench."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def aggregate(results: list[CaseResult]) -> dict[str, Any]:
    n = len(results)
    if not n:
        return {"cases": 0}
    latencies = [r.latency_ms for r in results if r.status != "error" and r.latency_ms is not None]

    def rate(hit: int) -> float:
        return round(hit / n, 4)

    return {
        "cases": n, "answered": len(latencies),
        **{f"p{q}_ms": _rounded(percentile(latencies, q)) for q in (50, 90, 95, 99)},
        "mean_ms": _rounded(statistics.fmean(latencies)) if latencies else None,
        "max_ms": _rounded(max(latencies)) if latencies else None,
        "exact_line": rate(sum(r.score.exact_line for r in results)),
        "exact_full": rate(sum(r.score.exact_full for r in results)),
        "exact_full_strict": rate(sum(r.score.exact_full_strict for r in results)),
        "edit_sim": round(sum(r.score.edit_sim for r in results) / n, 4),
        "empty": rate(sum(r.status == "empty" for r in results)),
        "errors": rate(sum(r.status == "error" for r in results)),
        "timeouts": sum(r.error_kind == "timeout" for r in results),
    }


def grouped(results: list[CaseResult], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(str(getattr(result, key)), []).append(result)
    return {name: aggregate(group) for name, group in sorted(groups.items())}


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}" if value < 10 else f"{value:.0f}"


def summary_line(summary: dict[str, Any]) -> str:
    """The final line of a run, shaped like the shared bench's."""
    if not summary.get("cases"):
        return "cases=0"
    return (f"cases={summary['cases']} p50_ms={fmt_ms(summary['p50_ms'])} p95_ms={fmt_ms(summary['p95_ms'])} "
            f"exact_line={summary['exact_line'] * 100:.1f}% exact_full={summary['exact_full'] * 100:.1f}% "
            f"edit_sim={summary['edit_sim']:.3f} empty={summary['empty'] * 100:.1f}% "
            f"errors={summary['errors'] * 100:.1f}%")
