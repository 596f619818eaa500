"""The soak's Python heap report (nearcode/shared/heap_trace.py): off unless asked, and when on it names
the sites that hold memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types

from nearcode.shared import heap_trace
from tests.conftest import start_lsp
from tests.editor_session import with_debug_commands
from tests.support import daemon_http, running_daemon


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


async def test_the_real_processes_report_their_heaps_only_while_tracing(daemon_env: dict[str, str]) -> None:
    """What bench/soak.py reads: the daemon's `python_heap` in /api/status and the language server's
    `nearcode.debugHeap`, present with NEARCODE_TRACE_HEAP=1 and absent without it."""
    with daemon_http(daemon_env) as http:
        status = http.get("/api/status").json()
        assert status["python_heap"] is None  # the session daemon: not traced
        assert status["allocator"]["malloc_in_use_kb"] > 0 and status["allocator"]["pymalloc_blocks"] > 0
    with running_daemon(NEARCODE_TRACE_HEAP="1") as traced_env, daemon_http(traced_env) as http:
        heap = http.get("/api/status").json()["python_heap"]
        assert heap["traced_kb"] > 0 and heap["top"] and {"site", "kb", "count"} <= set(heap["top"][0])
        client = await start_lsp(traced_env)
        try:
            report = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="nearcode.debugHeap"))
            assert report["traced_kb"] > 0 and report["top"]
        finally:
            await client.shutdown_session()
    untraced = await start_lsp(daemon_env)
    try:
        with pytest.raises(Exception, match="debugHeap"):
            await untraced.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.debugHeap"))
    finally:
        await untraced.shutdown_session()
    debugging = await start_lsp(with_debug_commands(daemon_env))  # the soak's servers: allocators, no tracing
    try:
        report = await debugging.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.debugHeap"))
        assert "traced_kb" not in report
        assert set(report["caches"]) == {"typing_cache", "insight_items", "insight_pending", "insight_surviving",
                                         "documents"}
        assert report["allocator"]["malloc_in_use_kb"] > 0 and report["allocator"]["pymalloc_blocks"] > 0
        assert report["allocator"]["gc_frozen"] > 10_000  # the start-up's objects (lsp/server.py)
    finally:
        await debugging.shutdown_session()
