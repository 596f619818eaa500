"""Inline SVG plots for `nearcode dashboard`: drawn here, so the page loads nothing from anywhere.

Each plot is one `<svg data-plot="...">` whose marks carry `data-*` attributes with the values
they draw (the browser test reads them back) and a `<title>` for a hover tooltip.
"""

from __future__ import annotations

import datetime
import itertools
from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 36
SHOWN_COLOR, ACCEPTED_COLOR, LINE_COLOR = "#9db8d9", "#1f5fa8", "#c2410c"


def _frame(kind: str, label: str, body: list[str], legend: list[tuple[str, str]] | None = None) -> str:
    keys = "".join(
        f'<rect x="{LEFT + i * 110}" y="2" width="10" height="10" fill="{color}"/>'
        f'<text x="{LEFT + 14 + i * 110}" y="11" class="legend">{escape(name)}</text>'
        for i, (name, color) in enumerate(legend or [])
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" data-plot="{kind}">{keys}{"".join(body)}</svg>'
    )


def _axes(y_max: float, y_format: str = "{:.0f}") -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for step in range(5):
        value = y_max * step / 4
        y = HEIGHT - BOTTOM - plot_h * step / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{y_format.format(value)}</text>')
    return parts


def _nice_max(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return float(step * 4)
    return float(value)


def _empty(kind: str, label: str, message: str) -> str:
    text = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">{escape(message)}</text>'
    return _frame(kind, label, [text])


def timeline(by_day: dict[str, dict[str, Any]], days: int = 30) -> str:
    """Suggestions shown and accepted per day, the last `days` days (days without any: zero)."""
    label = "Suggestions shown and accepted per day"
    if not by_day:
        return _empty("timeline", label, "no suggestions recorded yet")
    last = max(datetime.date.fromisoformat(day) for day in by_day)
    dates = [(last - datetime.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    y_max = _nice_max(max(by_day.get(d, {}).get("shown", 0) for d in dates) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(dates)
    body = _axes(y_max)
    for i, day in enumerate(dates):
        totals = by_day.get(day, {})
        for j, (key, color) in enumerate((("shown", SHOWN_COLOR), ("accepted", ACCEPTED_COLOR))):
            value = int(totals.get(key, 0))
            h = plot_h * value / y_max
            x = LEFT + i * slot + slot * (0.1 + 0.4 * j)
            body.append(
                f'<rect class="bar {key}" x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{slot * 0.4:.1f}" '
                f'height="{h:.1f}" fill="{color}" data-day="{day}" data-value="{value}"><title>{day}: {value} {key}</title></rect>'
            )
        if i % max(1, len(dates) // 6) == 0 or i == len(dates) - 1:
            body.append(f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="tick">{day[5:]}</text>')
    return _frame("timeline", label, body, [("shown", SHOWN_COLOR), ("accepted", ACCEPTED_COLOR)])


def languages(by_language: dict[str, dict[str, Any]], top: int = 8) -> str:
    """Acceptance rate per language (most shown first), with the counts behind it."""
    label = "Acceptance rate by language"
    items = [(name, t) for name, t in by_language.items() if t.get("shown")][:top]
    if not items:
        return _empty("languages", label, "no suggestions recorded yet")
    row_h = (HEIGHT - TOP - 8) / len(items)
    left, plot_w = 110, WIDTH - 110 - 90
    body = []
    for i, (name, totals) in enumerate(items):
        rate = float(totals.get("rate") or 0.0)
        y = TOP + i * row_h
        w = plot_w * rate
        body.append(f'<text x="{left - 8}" y="{y + row_h * 0.62:.1f}" text-anchor="end" class="tick">{escape(name)}</text>')
        body.append(f'<rect x="{left}" y="{y + row_h * 0.2:.1f}" width="{plot_w}" height="{row_h * 0.6:.1f}" fill="#eef2f7"/>')
        body.append(
            f'<rect class="bar rate" x="{left}" y="{y + row_h * 0.2:.1f}" width="{w:.1f}" height="{row_h * 0.6:.1f}" '
            f'fill="{ACCEPTED_COLOR}" data-language="{escape(name)}" data-value="{rate:.4f}">'
            f'<title>{escape(name)}: {totals.get("accepted", 0)} of {totals.get("shown", 0)} accepted</title></rect>'
        )
        body.append(
            f'<text x="{left + plot_w + 6}" y="{y + row_h * 0.62:.1f}" class="tick">{rate:.0%} of {totals.get("shown", 0)}</text>'
        )
    return _frame("languages", label, body)


def latency(bins_ms: list[int], histogram: list[int]) -> str:
    """How long suggestions took to arrive: counts per latency bin."""
    label = "Latency histogram (request to suggestion)"
    if not sum(histogram):
        return _empty("latency", label, "no latencies recorded yet")
    names = [f"<{bins_ms[0]}"] + [f"{a}-{b}" for a, b in itertools.pairwise(bins_ms)] + [f"{bins_ms[-1]}+"]
    y_max = _nice_max(max(histogram))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(histogram)
    body = _axes(y_max)
    for i, (name, count) in enumerate(zip(names, histogram, strict=True)):
        h = plot_h * count / y_max
        body.append(
            f'<rect class="bar latency" x="{LEFT + i * slot + slot * 0.1:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{ACCEPTED_COLOR}" data-bin="{name}" data-value="{count}">'
            f'<title>{name} ms: {count}</title></rect>'
        )
        body.append(f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="tick small">{name}</text>')
    body.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end" class="tick">ms</text>')
    return _frame("latency", label, body)


def survival(labels: list[str], shares: list[float | None]) -> str:
    """Share of accepted text still (mostly) there: 100% when accepted, then at each checkpoint."""
    label = "Survival of accepted text"
    points = [("0s", 1.0)] + [(name, share) for name, share in zip(labels, shares, strict=True) if share is not None]
    if len(points) == 1:
        return _empty("survival", label, "no accepted text measured yet")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    xs = [LEFT + 20 + (plot_w - 40) * i / (len(labels)) for i in range(len(labels) + 1)]
    body = _axes(1.0, "{:.0%}")
    coords = []
    for name, share in points:
        x = xs[(["0s", *labels]).index(name)]
        y = HEIGHT - BOTTOM - plot_h * share
        coords.append((x, y, name, share))
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _, _) in enumerate(coords))
    body.append(f'<path d="{path}" fill="none" stroke="{LINE_COLOR}" stroke-width="2.5" class="curve"/>')
    for x, y, name, share in coords:
        body.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{LINE_COLOR}" data-at="{name}" '
            f'data-value="{share:.4f}"><title>{name}: {share:.0%} kept</title></circle>'
        )
    for x, name in zip(xs, ["0s", *labels], strict=True):
        body.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="tick">{name}</text>')
    return _frame("survival", label, body)
