"""The percentile the daemon's status and the insight summaries report (nearest rank)."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The sample at rank q% (nearest rank, no interpolation); None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]
