"""What became of each suggestion: shown, accepted (whole, by word, by line), typed over or
dismissed, and whether the accepted text is still there 30 s, 2 min and 5 min later.

The language server calls `offered` for every suggestion it returns and passes on the editor's
reports (`shown`, `partially_accepted`, `accepted`) and every `didChange`. Per document one
suggestion is pending at a time. Each edit is checked against it by reading the document where the
suggestion starts: still the start of one of its choices, followed by what came after the cursor,
means the user is typing through it (or an accept is landing); anything else ends it. A later
suggestion that continues the pending one (the rest after typed characters, from the typing
cache) is the same suggestion, not a new one. Editors do not report a dismissal: a suggestion that
ends without an accept is "typed over" when the user had typed some of it, else "dismissed".

Accepted text is then followed through edits (lsp/insight/ranges.py) and compared at each
checkpoint with what was inserted: 1 - edit distance / length, 0 when it was deleted (Cody counts
a text as kept below a 0.33 difference; `nearcode stats` does the same).

Text lives only in this process's memory while a suggestion is followed; rows hold lengths, counts
and ratios (lsp/insight/store.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from nearcode.lsp.alternatives import alternative_id
from nearcode.lsp.edit_distance import difference
from nearcode.lsp.insight.ranges import (
    Change,
    Pos,
    TrackedRange,
    Units,
    advance,
    map_anchor,
    utf16_units,
)
from nearcode.lsp.insight.store import SURVIVAL_COLUMNS, SuggestionRow

AFTER_CHARS = 200  # of the text after the cursor, kept to tell typing through from other edits
PENDING_MAX_S = 600.0  # a suggestion nobody acted on for this long was dismissed
MAX_SURVIVING = 200  # accepted texts followed at once
DEFAULT_CHECKPOINTS_S = (30.0, 120.0, 300.0)


def checkpoints_from_environment() -> tuple[float, ...]:
    """NEARCODE_INSIGHT_CHECKPOINTS_S="1,2,3" shortens the checkpoints (tests); one per column."""
    raw = os.environ.get("NEARCODE_INSIGHT_CHECKPOINTS_S", "")
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        return DEFAULT_CHECKPOINTS_S
    return values if len(values) == len(SURVIVAL_COLUMNS) else DEFAULT_CHECKPOINTS_S


# Offered items an accept or a "shown" may still name, most recent kept. An editor names an item of
# the suggestion it shows: in practice the current one of each open document, with its
# alternatives and the items offered while the user typed through it. Each keeps its suggestion
# (and the text after it) alive; 512 took the two soak editors' memory an hour to fill (+1.5 MB,
# rising all the while), docs/reliability.md.
MAX_REMEMBERED_ITEMS = 128


class DocumentReader(Protocol):
    """The server's open documents, read where the tracker asks (None: not open)."""

    def text_from(self, uri: str, start: Pos, length: int) -> str | None: ...

    def text_between(self, uri: str, start: Pos, end: Pos) -> str | None: ...


class RowSink(Protocol):
    def insert(self, row: SuggestionRow) -> None: ...

    def update(self, row_id: str, fields: Mapping[str, object]) -> None: ...


@dataclass(frozen=True)
class Offer:
    """A suggestion as the server returned it."""

    completion_id: str
    uri: str
    position: Pos
    texts: list[str]  # the choices, first shown first
    after: str  # the document after the cursor
    language: str
    engine: str
    model: str
    source: str
    invoked: bool
    latency_ms: float | None


@dataclass
class _Pending:
    row: SuggestionRow
    uri: str
    start: Pos
    choices: list[str]
    after: str
    after_complete: bool  # `after` reaches the end of the document
    created: float
    items: dict[str, tuple[int, int]] = field(default_factory=dict)  # item id -> (choice, offset)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # item id -> accepted [start, end)
    active: int = 0  # the choice the document agrees with
    present: int = 0  # characters of it now in the document
    present_max: int = 0
    shown: bool = False
    written: bool = False


@dataclass
class _Surviving:
    row_id: str
    uri: str
    range: TrackedRange
    text: str
    # The accept command may come before the edit that inserts the text: until the text is in
    # the document at `range.start`, only the start is followed.
    landed: bool = True
    next_checkpoint: int = 0
    timer: Cancellable | None = None


class Cancellable(Protocol):
    def cancel(self) -> None: ...


# Runs a callback after a delay in seconds (the event loop's call_later; tests give their own clock).
CallLater = Callable[[float, Callable[[], None]], Cancellable]


def _loop_call_later(delay: float, callback: Callable[[], None]) -> Cancellable:
    return asyncio.get_running_loop().call_later(delay, callback)


class InsightTracker:
    def __init__(
        self, sink: RowSink, reader: DocumentReader, enabled: Callable[[], bool],
        checkpoints_s: tuple[float, ...] = DEFAULT_CHECKPOINTS_S, units: Units = utf16_units,
        call_later: CallLater = _loop_call_later,
    ) -> None:
        self.sink = sink
        self.reader = reader
        self.enabled = enabled
        self.checkpoints_s = checkpoints_s
        self.call_later = call_later
        self.units = units
        self.pending: dict[str, _Pending] = {}  # uri -> the suggestion still in play there
        self.by_item: OrderedDict[str, _Pending] = OrderedDict()  # item id -> its suggestion
        self.surviving: list[_Surviving] = []
        self.client_reports_shown = False  # the editor sends didShowCompletion

    # ------------------------------------------------------------------ editor events

    def offered(self, offer: Offer) -> None:
        if not self.enabled():
            return
        self._expire(time.time())
        current = self.pending.get(offer.uri)
        if current is not None and self._continues(current, offer):
            return
        if current is not None:
            self._resolve(current)
        texts = [text for text in offer.texts if text]
        if not texts:
            return
        rest = offer.after[: AFTER_CHARS + 1]
        pending = _Pending(
            row=SuggestionRow(
                id=offer.completion_id, shown_at=time.time(), language=offer.language or "unknown",
                engine=offer.engine, model=offer.model, source=offer.source, invoked=offer.invoked,
                latency_ms=offer.latency_ms, chars=len(texts[0]), lines=texts[0].count("\n") + 1,
                choices=len(texts),
            ),
            uri=offer.uri, start=offer.position, choices=texts, after=rest[:AFTER_CHARS],
            after_complete=len(rest) <= AFTER_CHARS, created=time.monotonic(),
        )
        for index in range(len(texts)):
            self._remember(_item_id(offer.completion_id, index), pending, index, 0)
        self.pending[offer.uri] = pending

    def shown(self, item_id: str) -> None:
        self.client_reports_shown = True
        pending = self.by_item.get(item_id)
        if pending is None or pending.shown or not self.enabled():
            return
        pending.shown = True
        if not pending.written:
            self.sink.insert(pending.row)
            pending.written = True

    def partially_accepted(self, item_id: str, accepted_units: int, kind: str) -> None:
        pending = self.by_item.get(item_id)
        if pending is None or not self.enabled():
            return
        choice, offset = pending.items[item_id]
        taken = _chars_for_units(pending.choices[choice][offset:], accepted_units, self.units)
        pending.spans[item_id] = (offset, offset + taken)
        pending.row.accepted_choice = choice
        if kind == "line":
            pending.row.accepted_lines += 1
        else:
            pending.row.accepted_words += 1
        if pending.written:
            self._write_progress(pending)

    def accepted(self, item_id: str) -> None:
        pending = self.by_item.get(item_id)
        if pending is None or not self.enabled():
            return
        choice, offset = pending.items[item_id]
        pending.spans[item_id] = (offset, len(pending.choices[choice]))
        pending.row.accepted_choice = choice
        pending.row.accepted_whole = True
        pending.active = choice
        pending.present = pending.present_max = len(pending.choices[choice])  # the edit may lag
        self._resolve(pending)

    def changed(self, uri: str, changes: list[Change | None]) -> None:
        """A didChange (None: a whole-document replacement, which nothing survives intact)."""
        for surviving in [s for s in self.surviving if s.uri == uri]:
            for change in changes:
                if change is None:
                    self._stop(surviving)
                    break
                if surviving.landed:
                    surviving.range.apply(change, self.units)
                else:
                    surviving.range.start = map_anchor(surviving.range.start, change, self.units)
            if not surviving.landed:
                self._land(surviving)
        pending = self.pending.get(uri)
        if pending is None:
            return
        for change in changes:
            if change is None:
                self._resolve(pending)
                return
            pending.start = map_anchor(pending.start, change, self.units)
        if not self._follow(pending):
            self._resolve(pending)

    def closed(self, uri: str) -> None:
        pending = self.pending.get(uri)
        if pending is not None:
            self._resolve(pending)
        for surviving in [s for s in self.surviving if s.uri == uri]:
            self._stop(surviving)

    def close(self) -> None:
        """The server is going away: what is pending is decided now, survival stays unknown."""
        for pending in list(self.pending.values()):
            self._resolve(pending)
        for surviving in list(self.surviving):
            self._stop(surviving)

    # ------------------------------------------------------------------ following a suggestion

    def _remember(self, item_id: str, pending: _Pending, choice: int, offset: int) -> None:
        pending.items[item_id] = (choice, offset)
        self.by_item[item_id] = pending
        self.by_item.move_to_end(item_id)
        while len(self.by_item) > MAX_REMEMBERED_ITEMS:
            self.by_item.popitem(last=False)

    def _continues(self, pending: _Pending, offer: Offer) -> bool:
        """Is `offer` the rest of `pending` after characters the user typed (or the same again)?"""
        if len(offer.texts) != 1 or not self._follow(pending):
            return False
        for index, text in enumerate(pending.choices):
            offset = len(text) - len(offer.texts[0])
            if offset < 0 or text[offset:] != offer.texts[0] or offset > pending.present:
                continue
            if advance(pending.start, text[:offset], self.units) == offer.position:
                self._remember(offer.completion_id, pending, index, offset)
                return True
        return False

    def _follow(self, pending: _Pending) -> bool:
        """Read the document where the suggestion starts: is it still in play, and how much of
        which choice is there? In play: a choice's start, then exactly what followed the cursor."""
        longest = max(len(text) for text in pending.choices)
        window = self.reader.text_from(pending.uri, pending.start, longest + len(pending.after) + 1)
        if window is None:
            return False
        best: tuple[int, int] | None = None  # (present, choice)
        for index, text in enumerate(pending.choices):
            present = _common_prefix(window, text)
            rest = window[present:]
            fits = rest == pending.after if pending.after_complete else rest.startswith(pending.after)
            if fits and (best is None or present > best[0] or (present == best[0] and index == pending.active)):
                best = (present, index)
        if best is None:
            return False
        pending.present, pending.active = best
        pending.present_max = max(pending.present_max, pending.present)
        return True

    def _accepted_chars(self, pending: _Pending) -> int:
        """Characters taken by accepts: the union of the accepted spans of the accepted choice."""
        choice = pending.row.accepted_choice
        spans = sorted(span for item, span in pending.spans.items() if pending.items[item][0] == choice)
        total, reach = 0, 0
        for start, end in spans:
            start = max(start, reach)
            if end > start:
                total += end - start
                reach = end
        return total

    def _write_progress(self, pending: _Pending) -> None:
        row = pending.row
        self.sink.update(row.id, {
            "accepted_words": row.accepted_words, "accepted_lines": row.accepted_lines,
            "accepted_choice": row.accepted_choice, "accepted_chars": self._accepted_chars(pending),
        })

    def _resolve(self, pending: _Pending) -> None:
        """The suggestion is over: classify it, write it, follow what was accepted of it."""
        if self.pending.get(pending.uri) is pending:
            del self.pending[pending.uri]
        row = pending.row
        accepted = self._accepted_chars(pending)
        present = max(pending.present_max, max((end for _, end in pending.spans.values()), default=0))
        row.accepted_chars = accepted
        row.typed_chars = max(0, present - accepted)
        row.outcome = (
            "accepted" if row.accepted_whole else "partial" if accepted
            else "typed_over" if row.typed_chars else "dismissed"
        )
        row.resolved_at = time.time()
        if not pending.written:
            if not pending.shown and self.client_reports_shown:
                return  # offered but never on screen (the editor says what it shows)
            self.sink.insert(row)
            pending.written = True
        else:
            self.sink.update(row.id, {
                "outcome": row.outcome, "accepted_whole": row.accepted_whole,
                "accepted_words": row.accepted_words, "accepted_lines": row.accepted_lines,
                "accepted_choice": row.accepted_choice, "accepted_chars": accepted,
                "typed_chars": row.typed_chars, "resolved_at": row.resolved_at,
            })
        if accepted and row.accepted_choice is not None:
            text = pending.choices[row.accepted_choice][:present]
            self._start_survival(row.id, pending.uri, pending.start, text)

    def _expire(self, now: float) -> None:
        for pending in list(self.pending.values()):
            if now - pending.row.shown_at > PENDING_MAX_S:
                self._resolve(pending)

    # ------------------------------------------------------------------ survival

    def _start_survival(self, row_id: str, uri: str, start: Pos, text: str) -> None:
        if len(self.surviving) >= MAX_SURVIVING:
            self._stop(self.surviving[0])
        surviving = _Surviving(row_id, uri, TrackedRange(start, start), text, landed=False)
        self._land(surviving)
        self.surviving.append(surviving)
        self._schedule(surviving)

    def _land(self, surviving: _Surviving) -> None:
        """Once the accepted text is in the document at its start, follow the whole range."""
        start = surviving.range.start
        if self.reader.text_from(surviving.uri, start, len(surviving.text)) == surviving.text:
            surviving.range.end = advance(start, surviving.text, self.units)
            surviving.landed = True

    def _schedule(self, surviving: _Surviving) -> None:
        index = surviving.next_checkpoint
        if index >= len(self.checkpoints_s):
            self._stop(surviving)
            return
        delay = self.checkpoints_s[index] - (self.checkpoints_s[index - 1] if index else 0.0)
        surviving.timer = self.call_later(delay, lambda: self._checkpoint(surviving))

    def _checkpoint(self, surviving: _Surviving) -> None:
        now = self.reader.text_between(surviving.uri, surviving.range.start, surviving.range.end)
        if now is None or not surviving.landed or not self.enabled():
            self._stop(surviving)  # the file was closed: unknown from here on
            return
        kept = 0.0 if not now.strip() else round(1.0 - difference(surviving.text, now), 3)
        self.sink.update(surviving.row_id, {SURVIVAL_COLUMNS[surviving.next_checkpoint]: kept})
        surviving.next_checkpoint += 1
        self._schedule(surviving)

    def _stop(self, surviving: _Surviving) -> None:
        if surviving.timer is not None:
            surviving.timer.cancel()
        if surviving in self.surviving:
            self.surviving.remove(surviving)


def _item_id(completion_id: str, index: int) -> str:
    return alternative_id(completion_id, index)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _chars_for_units(text: str, units_wanted: int, units: Units) -> int:
    """How many characters of `text` make up its first `units_wanted` code units."""
    total = 0
    for count, char in enumerate(text):
        if total >= units_wanted:
            return count
        total += units(char)
    return len(text)
