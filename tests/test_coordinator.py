"""Pure parts of the coordinator: where speculation aims, and when the debounce applies."""

from __future__ import annotations

from nearcode.lsp.completion import CursorText
from nearcode.lsp.coordinator import (
    MAX_DEBOUNCE_S,
    CompletionCoordinator,
    likely_burst_end,
    next_line_cursor,
)
from nearcode.lsp.daemon_client import DaemonClient
from nearcode.shared.protocol.settings import Settings


def cursor(prefix: str, suffix: str = "\n") -> CursorText:
    return CursorText(prefix=prefix, suffix=suffix, uri="file:///a.py", path="a.py", language="python")


def test_speculation_aims_at_the_next_line() -> None:
    after = next_line_cursor(cursor("def f(xs):\n    total = "), "sum(xs)")
    assert after is not None
    assert after.prefix == "def f(xs):\n    total = sum(xs)\n    " and after.suffix == "\n"
    opened = next_line_cursor(cursor("def f(xs):\n    "), "for x in xs:")
    assert opened is not None and opened.prefix.endswith("for x in xs:\n        ")


def test_no_speculation_mid_line_or_for_blank_text() -> None:
    assert next_line_cursor(cursor("print(", ")\n"), "x") is None
    assert next_line_cursor(cursor("x = 1\n"), "\n") is None


def test_debounce_only_when_typing_outpaces_the_engine() -> None:
    coordinator = CompletionCoordinator(DaemonClient(spawn=False), "t")
    settings = Settings()
    assert coordinator.debounce_s(settings) == 0.0  # nothing known yet
    coordinator.typing_interval_s, coordinator.model_latency_s = 0.08, 0.9
    assert 0 < coordinator.debounce_s(settings) <= MAX_DEBOUNCE_S
    coordinator.typing_interval_s, coordinator.model_latency_s = 1.5, 0.4
    assert coordinator.debounce_s(settings) == 0.0
    assert coordinator.debounce_s(Settings(debounceMs=200)) == 0.2, "the setting is a floor"
    for now in (0.0, 0.1, 0.2, 0.3, 10.0):  # a long pause does not count as typing speed
        coordinator._note_keystroke("file:///a.py", now)
    assert coordinator.typing_interval_s is not None and coordinator.typing_interval_s < 1.0


def test_a_keystroke_that_likely_ends_a_burst_is_not_debounced() -> None:
    coordinator = CompletionCoordinator(DaemonClient(spawn=False), "t")
    coordinator.typing_interval_s, coordinator.model_latency_s = 0.08, 0.9  # typing outpaces answers
    settings = Settings()
    assert coordinator.debounce_s(settings, "def f(x):\n    retu") > 0, "mid-word: wait"
    assert coordinator.debounce_s(settings, "def f(x):\n    ") == 0.0, "Enter: at once"
    assert coordinator.debounce_s(settings, "    total = sum(") == 0.0
    assert coordinator.debounce_s(Settings(debounceMs=200), "    x = ") == 0.2, "the setting is still a floor"


def test_likely_burst_ends() -> None:
    for prefix in ("x\n", "x\n    ", "f(", "f(a, ", "x = ", "x =", "self.", "d[", "if x:", "{"):
        assert likely_burst_end(prefix), prefix
    for prefix in ("", "ret", "x = y", "f(a", "x =  ", "self.na", "a + b"):
        assert not likely_burst_end(prefix), prefix
