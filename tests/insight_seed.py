"""A seeded insight database: a known mix of suggestions over two weeks, for the stats, dashboard
and browser tests. Deterministic: the same rows every time, so the figures can be asserted.

    python -m tests.insight_seed DIR     # writes DIR/insight.sqlite3 (NEARCODE_INSIGHT_DIR=DIR)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nearcode.lsp.insight.store import InsightStore, SuggestionRow

DAYS = 14
# Per language, per day: (shown, accepted whole, by word, typed over); the rest dismissed.
MIX = {"python": (10, 4, 1, 2), "typescript": (6, 1, 1, 1), "go": (3, 0, 0, 1)}
# Survival of the accepted rows, cycling through three shapes: kept throughout; kept, then
# rewritten; deleted within 2 minutes. So 100% are kept at 30 s, 2/3 at 2 min, 1/3 at 5 min.
SURVIVAL = ((1.0, 0.95, 0.9), (0.9, 0.8, 0.4), (0.8, 0.0, 0.0))


def expected() -> dict[str, object]:
    """The totals the seed produces (for assertions)."""
    shown = sum(m[0] for m in MIX.values()) * DAYS
    accepted = sum(m[1] + m[2] for m in MIX.values()) * DAYS
    shapes = [SURVIVAL[n % len(SURVIVAL)] for m in MIX.values() for n in range(m[1] + m[2])] * DAYS
    survival = [sum(shape[i] >= 0.67 for shape in shapes) / len(shapes) for i in range(3)]
    return {"shown": shown, "accepted": accepted, "days": DAYS, "languages": len(MIX), "survival": survival}


def seed(directory: Path, now: float | None = None) -> Path:
    now = time.time() if now is None else now
    path = directory / "insight.sqlite3"
    store = InsightStore(path)
    try:
        for day in range(DAYS):
            base = now - (DAYS - 1 - day) * 86_400 - 3_600
            for language, (shown, whole, word, typed) in MIX.items():
                for n in range(shown):
                    kind = "whole" if n < whole else "word" if n < whole + word else "typed" if n < whole + word + typed else "none"
                    accepted = kind in ("whole", "word")
                    row = SuggestionRow(
                        id=f"seed-{day}-{language}-{n}", shown_at=base + n * 30, language=language,
                        engine="llamacpp", model="qwen2.5-coder-0.5b-instruct-q4_k_m", source="model",
                        invoked=False, latency_ms=150.0 + 97 * ((day * 7 + n * 13) % 23), chars=12 + n, lines=1,
                        outcome="accepted" if kind == "whole" else "partial" if kind == "word" else
                        "typed_over" if kind == "typed" else "dismissed",
                        accepted_whole=kind == "whole", accepted_words=int(kind == "word"),
                        accepted_chars=(12 + n) if kind == "whole" else 4 if kind == "word" else 0,
                        typed_chars=5 if kind == "typed" else 0, accepted_choice=0 if accepted else None,
                        resolved_at=base + n * 30 + 5,
                    )
                    store.insert(row)
                    if accepted:
                        shape = SURVIVAL[n % len(SURVIVAL)]
                        store.update(row.id, dict(zip(("survival_30s", "survival_120s", "survival_300s"), shape, strict=True)))
    finally:
        store.close()
    return path


if __name__ == "__main__":
    print(seed(Path(sys.argv[1])))
