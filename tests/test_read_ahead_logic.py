"""When the language server asks the daemon to read a document ahead (fast tier: the daemon is a
recorder of /api/prefill requests; the real daemon's side is in tests/test_context_real.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import pytest

from nearcode.lsp import context
from nearcode.lsp.context import ReadAhead
from nearcode.lsp.daemon_client import DaemonClient
from nearcode.shared.protocol.settings import Settings

TEXT = '"""A module."""\n\nimport os\n\n\ndef main():\n    return os.getcwd()\n'


class PrefillRecorder:
    """The one DaemonClient method ReadAhead uses, recording what it was sent."""

    def __init__(self) -> None:
        self.documents: list[str] = []

    async def post_json(self, path: str, body: Any) -> dict[str, Any]:
        assert path == "/api/prefill"
        self.documents.append(body.document)
        return {"started": True, "reason": ""}


def read_ahead() -> tuple[ReadAhead, PrefillRecorder]:
    daemon = PrefillRecorder()
    return ReadAhead(cast(DaemonClient, daemon), "editor"), daemon


@pytest.fixture(autouse=True)
def short_settle(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The same logic with a shorter wait (the fast tier's minute is shared by ~400 tests)."""
    monkeypatch.setattr(context, "OPEN_SETTLE_S", 0.05)
    yield


async def settle() -> None:
    await asyncio.sleep(context.OPEN_SETTLE_S + 0.1)


async def test_a_document_that_stays_in_view_is_read_ahead() -> None:
    ahead, daemon = read_ahead()
    ahead.opened("file:///a.py", "/a.py", "python", TEXT, Settings())
    assert daemon.documents == [], "not before it has stayed in view"
    await settle()
    assert daemon.documents == ["file:///a.py"]


async def test_tabs_restored_at_once_start_one_read_ahead_for_the_last() -> None:
    ahead, daemon = read_ahead()
    for name in ("a", "b", "c", "d"):
        ahead.opened(f"file:///{name}.py", f"/{name}.py", "python", TEXT, Settings())
    await settle()
    assert daemon.documents == ["file:///d.py"]


async def test_a_completion_right_after_opening_is_not_kept_waiting_by_a_read_ahead() -> None:
    ahead, daemon = read_ahead()
    ahead.opened("file:///a.py", "/a.py", "python", TEXT, Settings())
    ahead.cancel("file:///a.py")  # the completion reads what it needs itself
    await settle()
    assert daemon.documents == []


async def test_file_mode_reads_nothing_ahead() -> None:
    ahead, daemon = read_ahead()
    ahead.opened("file:///a.py", "/a.py", "python", TEXT, Settings(context="file"))
    await settle()
    assert daemon.documents == []
