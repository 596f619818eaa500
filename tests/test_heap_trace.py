"""The soak's Python heap report (nearcode/shared/heap_trace.py): off unless asked, and when on it names
the sites that hold memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from nearcode.shared import heap_trace


@pytest.fixture
def no_tracing() -> Iterator[None]:
    tracemalloc.stop()
    yield
    tracemalloc.stop()  # the rest of the suite runs untraced


def test_off_unless_the_environment_asks(no_tracing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(heap_trace.ENV, raising=False)
    assert heap_trace.start_if_asked() is False
    assert heap_trace.heap_report() is None
    monkeypatch.setenv(heap_trace.ENV, "0")
    assert heap_trace.start_if_asked() is False


def test_report_names_the_site_that_holds_memory(no_tracing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(heap_trace.ENV, "1")
    assert heap_trace.start_if_asked() is True
    held = [bytearray(1024) for _ in range(2048)]  # ~2 MB from this line
    report = heap_trace.heap_report(top=3)
    assert report is not None and report["traced_kb"] >= 2048
    top = report["top"][0]
    assert top["site"].endswith(f"test_heap_trace.py:{held_line()}") and top["kb"] >= 2048
    del held


def held_line() -> int:
    """The line of the allocation above (kept in one place so an edit cannot silently break the check)."""
    source = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(source, 1) if "~2 MB from this line" in line)
