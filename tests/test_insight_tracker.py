"""Insight's suggestion lifecycle on a real pygls workspace (the server's own document store) and
a real SQLite file: shown, accepted whole / by word, typed over, dismissed, survival of accepted
text through later edits, and that no document text reaches the database. No model: the
suggestions are given; the real language server and editors are in test_insight_lsp.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from lsprotocol import types
from pygls.workspace import Workspace

from nearcode.lsp.completion import CompletionOutcome, CursorText
from nearcode.lsp.insight.ranges import Change, Pos, TrackedRange, map_position
from nearcode.lsp.insight.recorder import InsightRecorder
from nearcode.lsp.insight.session import InsightSession
from nearcode.lsp.insight.store import InsightStore
from nearcode.lsp.insight.tracker import MAX_REMEMBERED_ITEMS, Cancellable

URI = "file:///tmp/nc-insight/app.py"
SOURCE = "def total(items):\n    \nprint(total([1]))\n"
SUGGESTION = "return sum(item.price for item in items)"
AT = types.Position(1, 4)


class Editor:
    """What an editor does to the server's workspace: edits, and the session hears of them."""

    def __init__(self, session: InsightSession, workspace: Workspace) -> None:
        self.session, self.workspace, self.version = session, workspace, 1

    def edit(self, line: int, char: int, end_line: int, end_char: int, text: str) -> None:
        self.version += 1
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, char), types.Position(end_line, end_char)), text=text
        )
        identifier = types.VersionedTextDocumentIdentifier(uri=URI, version=self.version)
        self.workspace.update_text_document(identifier, change)
        self.session.changed(types.DidChangeTextDocumentParams(text_document=identifier, content_changes=[change]))

    def offer(self, text: str, at: types.Position = AT, alternatives: list[str] | None = None, ident: str = "c1") -> str:
        document = self.workspace.get_text_document(URI)
        offset = document.offset_at_position(at)
        cursor = CursorText(document.source[:offset], document.source[offset:], URI, "/tmp/nc-insight/app.py", "python")
        outcome = CompletionOutcome(text=text, completion_id=ident, latency_ms=420.0, source="model",
                                    alternatives=alternatives or [])
        self.session.offered(at, cursor, outcome, invoked=False, engine="llamacpp", model="qwen")
        return ident

    def item(self, ident: str) -> dict[str, object]:
        return {"insertText": "", "command": {"command": "nearcode.didAcceptCompletion", "arguments": [ident]}}


@pytest.fixture
def insight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[InsightSession, Editor, Path]:
    monkeypatch.setenv("NEARCODE_INSIGHT_DIR", str(tmp_path))
    workspace = Workspace(None)
    workspace.put_text_document(types.TextDocumentItem(uri=URI, language_id="python", version=1, text=SOURCE))
    session = InsightSession(lambda: workspace, lambda: True)
    session.tracker.checkpoints_s = (0.2, 1.2, 2.2)
    return session, Editor(session, workspace), tmp_path / "insight.sqlite3"


async def measured(session: InsightSession, db: Path, column: str) -> dict[str, object]:
    """The row once its `column` checkpoint has been written (checkpoints are a second apart: the
    edits between them happen well before the next one, however busy the machine)."""
    for _ in range(200):
        [row] = rows(session, db)
        if row[column] is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"{column} was never measured")


def rows(session: InsightSession, db: Path) -> list[dict[str, object]]:
    assert session.recorder.flush()
    store = InsightStore(db)
    try:
        return [dict(row) for row in store.rows()]
    finally:
        store.close()


def test_position_mapping_follows_edits_before_inside_and_after() -> None:
    start, end = Pos(3, 4), Pos(3, 10)
    typed_before = Change(Pos(3, 0), Pos(3, 0), "xx")
    assert map_position(start, typed_before, False) == Pos(3, 6)
    at_end = Change(end, end, "tail")  # typed right after the range: not part of it
    assert map_position(end, at_end, True) == end
    assert map_position(start, Change(Pos(1, 0), Pos(2, 0), ""), False) == Pos(2, 4)  # a line removed above
    rng = TrackedRange(start, end)
    rng.apply(Change(Pos(3, 6), Pos(3, 8), "long replacement\nnext"))  # rewritten inside
    assert (rng.start, rng.end) == (Pos(3, 4), Pos(4, 6))


class SteppedClock:
    """The tracker's timers, run when the test says: each checkpoint comes after the edits before it,
    however busy the machine, and without waiting for it."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []
        self.now = 0.0

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        timer = (self.now + delay, callback)
        self.due.append(timer)
        return SimpleNamespace(cancel=lambda: timer in self.due and self.due.remove(timer))

    def run_next(self) -> None:
        self.due.sort(key=lambda timer: timer[0])
        self.now, callback = self.due.pop(0)
        callback()


async def test_accepted_whole_then_kept_then_rewritten(insight: tuple[InsightSession, Editor, Path]) -> None:
    session, editor, db = insight
    clock = SteppedClock()
    session.tracker.call_later = clock.call_later

    def checkpoint(column: str) -> dict[str, object]:
        clock.run_next()
        [row] = rows(session, db)
        assert row[column] is not None, f"{column} was not measured"
        return row

    ident = editor.offer(SUGGESTION)
    session.shown(editor.item(ident))
    editor.edit(1, 4, 1, 4, SUGGESTION)  # Tab: the editor inserts it, then runs the accept command
    session.accepted(ident)
    [row] = rows(session, db)
    assert row["outcome"] == "accepted" and row["accepted_whole"] == 1
    assert row["accepted_chars"] == len(SUGGESTION) and row["typed_chars"] == 0
    assert row["language"] == "python" and row["latency_ms"] == 420.0 and row["chars"] == len(SUGGESTION)
    checkpoint("survival_30s")  # untouched
    editor.edit(0, 0, 0, 0, "import math\n")  # a line above moves it; does not change it
    editor.edit(2, 4 + len("return sum("), 2, 4 + len("return sum(item.price"), "x")  # rewritten inside
    checkpoint("survival_120s")
    editor.edit(2, 0, 2, 4 + len(SUGGESTION), "")  # deleted before the last checkpoint
    row = checkpoint("survival_300s")
    assert row["survival_30s"] == 1.0
    assert 0.67 < row["survival_120s"] < 1.0  # "item.price" -> "x": mostly still there
    assert row["survival_300s"] == 0.0


async def test_an_accept_reported_before_its_edit_is_followed_once_the_text_lands(
    insight: tuple[InsightSession, Editor, Path],
) -> None:
    session, editor, db = insight
    ident = editor.offer(SUGGESTION)
    session.shown(editor.item(ident))
    session.accepted(ident)  # some clients run the command first ...
    editor.edit(1, 4, 1, 4, SUGGESTION)  # ... and send the edit after it
    editor.edit(1, 4 + len(SUGGESTION), 1, 4 + len(SUGGESTION), "  # total")  # typed after it: not part of it
    row = await measured(session, db, "survival_30s")
    assert row["outcome"] == "accepted" and row["survival_30s"] == 1.0


async def test_typed_through_then_accepted_counts_typed_and_accepted_characters(
    insight: tuple[InsightSession, Editor, Path],
) -> None:
    session, editor, db = insight
    first = editor.offer(SUGGESTION)
    session.shown(editor.item(first))
    editor.edit(1, 4, 1, 4, "re")  # the user types what the ghost text shows
    # The server answers the next keystroke from its typing cache: the rest, under a new id.
    rest = editor.offer(SUGGESTION[2:], at=types.Position(1, 6), ident="c2")
    session.shown(editor.item(rest))
    editor.edit(1, 6, 1, 6, SUGGESTION[2:])
    session.accepted(rest)
    [row] = rows(session, db)  # one suggestion, not two
    assert row["id"] == first and row["outcome"] == "accepted"
    assert (row["typed_chars"], row["accepted_chars"]) == (2, len(SUGGESTION) - 2)


async def test_word_accept_then_moving_on_is_partial_typing_other_text_is_typed_over(
    insight: tuple[InsightSession, Editor, Path],
) -> None:
    session, editor, db = insight
    first = editor.offer(SUGGESTION)
    session.shown(editor.item(first))
    editor.edit(1, 4, 1, 4, "return ")
    session.partially_accepted(editor.item(first), len("return "), "word")
    editor.edit(1, 11, 1, 11, "None")  # then writes something else
    second = editor.offer("  # done", at=types.Position(1, 15), ident="c3")
    session.shown(editor.item(second))
    editor.edit(1, 15, 1, 15, "  # ")  # types the start of it ...
    editor.edit(1, 19, 1, 19, "TODO")  # ... then other text
    by_id = {row["id"]: row for row in rows(session, db)}
    assert by_id[first]["outcome"] == "partial" and by_id[first]["accepted_words"] == 1
    assert by_id[first]["accepted_chars"] == len("return ")
    assert by_id["c3"]["outcome"] == "typed_over" and by_id["c3"]["typed_chars"] == 4


async def test_a_new_suggestion_elsewhere_dismisses_the_old_one_and_unshown_ones_are_not_counted(
    insight: tuple[InsightSession, Editor, Path],
) -> None:
    session, editor, db = insight
    first = editor.offer(SUGGESTION, alternatives=["pass"])
    session.shown(editor.item(first))
    editor.offer("never shown", at=types.Position(2, 0), ident="c4")  # editor reports shows: not shown
    editor.offer("print()", at=types.Position(3, 0), ident="c5")
    session.closed(URI)
    [row] = rows(session, db)
    assert row["id"] == first and row["outcome"] == "dismissed" and row["choices"] == 2


async def test_an_alternative_accepted_is_recorded_as_such(insight: tuple[InsightSession, Editor, Path]) -> None:
    session, editor, db = insight
    first = editor.offer(SUGGESTION, alternatives=["pass", "raise NotImplementedError"])
    session.shown(editor.item(first))
    editor.edit(1, 4, 1, 4, "raise NotImplementedError")  # cycled to the third, then Tab
    session.accepted(f"{first}~2")
    [row] = rows(session, db)
    assert row["outcome"] == "accepted" and row["accepted_choice"] == 2
    assert row["accepted_chars"] == len("raise NotImplementedError")


async def test_clients_that_never_report_shows_still_count_what_they_were_offered(
    insight: tuple[InsightSession, Editor, Path],
) -> None:
    session, editor, db = insight
    editor.offer(SUGGESTION)  # e.g. Emacs: classic completion, no didShowCompletion
    editor.edit(1, 4, 1, 4, "x = 1")
    [row] = rows(session, db)
    assert row["outcome"] == "dismissed"


async def test_no_document_text_is_stored_and_off_records_nothing(
    insight: tuple[InsightSession, Editor, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, editor, db = insight
    ident = editor.offer(SUGGESTION)
    session.shown(editor.item(ident))
    editor.edit(1, 4, 1, 4, SUGGESTION)
    session.accepted(ident)
    await measured(session, db, "survival_30s")
    session.close()
    raw = b"".join(p.read_bytes() for p in db.parent.glob("insight.sqlite3*"))
    for secret in (b"item.price", b"def total", b"nc-insight", b"print(total"):
        assert secret not in raw
    # `nearcode stats --off`: the marker every server checks before recording.
    (db.parent / "off").write_text("off\n")
    other = InsightSession(lambda: editor.workspace, lambda: True)
    editor.session = other
    editor.offer("pass", ident="c9")
    other.shown(editor.item("c9"))
    other.close()
    assert [row["id"] for row in rows(other, db)] == [ident]


def test_store_is_wal_bounded_and_erasable(tmp_path: Path) -> None:
    from tests.insight_seed import expected, seed

    seed(tmp_path)
    store = InsightStore(tmp_path / "insight.sqlite3")
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.count() == expected()["shown"]
        removed = store.prune(max_rows=100, max_age_days=365)
        assert removed == expected()["shown"] - 100 and store.count() == 100
        # The newest rows stay.
        newest = max(row["shown_at"] for row in store.rows())
        assert store.prune(max_rows=1000, max_age_days=0.5) > 0
        assert all(newest - row["shown_at"] < 0.5 * 86_400 for row in store.rows())
        assert store.erase() > 0 and store.count() == 0
    finally:
        store.close()


def test_a_broken_database_stops_recording_quietly(tmp_path: Path) -> None:
    (tmp_path / "insight.sqlite3").write_text("this is not a database")
    recorder = InsightRecorder(tmp_path / "insight.sqlite3")
    from nearcode.lsp.insight.store import SuggestionRow

    recorder.insert(SuggestionRow(id="x", shown_at=0.0, language="python", engine="", model="", source="model",
                                  invoked=False, latency_ms=None, chars=1, lines=1))
    assert recorder.flush() is False and recorder.failed
    recorder.close()


async def test_the_items_an_accept_may_name_are_bounded_and_the_latest_still_counts(
    insight: tuple[InsightSession, Editor, Path],
) -> None:
    """A day of suggestions keeps at most MAX_REMEMBERED_ITEMS offered items (each holds its
    suggestion alive), and the one the editor shows now is among them."""
    session, editor, db = insight
    for n in range(3 * MAX_REMEMBERED_ITEMS):
        editor.offer(f"return {n}", ident=f"c{n}", alternatives=[f"return -{n}"])
    assert len(session.tracker.by_item) == MAX_REMEMBERED_ITEMS
    last = f"c{3 * MAX_REMEMBERED_ITEMS - 1}"
    session.shown(editor.item(last))
    editor.edit(1, 4, 1, 4, f"return {3 * MAX_REMEMBERED_ITEMS - 1}")
    session.accepted(last)
    assert [row["outcome"] for row in rows(session, db) if row["id"] == last] == ["accepted"]
