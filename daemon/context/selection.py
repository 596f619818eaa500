"""Which candidates make the context block, and keeping that block still while the user types.

The context block sits before the current file in the prompt, so the engine keeps it in its KV cache
only while it stays byte for byte the same. Re-ranking on every keystroke would reshuffle it (a
newly typed partial word, a line entering the window) and every request would read it again.
So a (client, document) keeps its block until the set of names near the cursor really changes:
a name with a definition appears that the block does not cover, or the cursor moves to another
place in the file; or until what the block shows is no longer true (a definition in it was
changed, renamed or deleted in its file: a kept block must not show a signature the project no
longer has). A rebuilt block keeps the parts it shares with the previous one first, in their old
order, and appends the new ones, so the engine still reuses the longest possible start.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nearcode.daemon.context.window import Candidate, Gathered

MOVE_LINES = 40  # the cursor moved this far from where the block was chosen: a new place
BLOCKS_KEPT = 512  # (client, document) pairs remembered

# A definition as the index has it, with its members: (qualified name, signature, doc) each.
DefinitionFacts = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Selection:
    """The candidates of one (client, document), best first."""

    candidates: tuple[Candidate, ...]
    near_names: frozenset[str]  # definitions names near the cursor resolved to when it was chosen
    cursor_line: int
    chosen_at: float
    path: str = ""
    # The keys of the block built from it last time, in prompt order: a rebuilt block keeps
    # these first, in this order (their text is already in the engine's cache there).
    previous_block: tuple[str, ...] = ()
    # What the index said of each definition in that block when it was built (signature and doc of
    # it and its members, assembler.definition_facts): compared at every request the block is kept.
    block_facts: Mapping[str, DefinitionFacts] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    selection: Selection
    reused: bool
    why: str  # why it was kept or rebuilt (shown by nearcode.showContext)


class StableSelector:
    """Per (client, document): the selection, kept with hysteresis."""

    def __init__(self, kept: int = BLOCKS_KEPT) -> None:
        self._kept = kept
        self._selections: OrderedDict[str, Selection] = OrderedDict()

    def previous(self, key: str) -> Selection | None:
        return self._selections.get(key)

    def choose(self, key: str, path: str, gathered: Gathered, cursor_line: int, changed: Sequence[str] = ()) -> Choice:
        """`changed`: definitions of the last built block that the index no longer has as shown."""
        previous = self._selections.get(key)
        names = frozenset(gathered.near_names)
        if previous is not None and previous.path == path:
            moved = abs(cursor_line - previous.cursor_line) > MOVE_LINES
            new_names = names - previous.near_names
            if gathered.deadline_missed and not moved and not changed:
                return self._keep(key, previous, "kept: gathering missed its deadline, the previous block stands")
            if not moved and not new_names and not changed:
                return self._keep(key, previous, "kept: no new definitions needed near the cursor")
            shown = sorted(key.rsplit(":", 1)[-1] for key in new_names)[:5]
            if moved:
                why = f"rebuilt: the cursor moved {abs(cursor_line - previous.cursor_line)} lines"
            elif new_names:
                why = "rebuilt: new definitions needed near the cursor: " + ", ".join(shown)
            else:
                why = "rebuilt: changed in their files since the block was built: " + ", ".join(sorted(changed)[:5])
        else:
            why = "built: first completion here"
        ranked = sorted(gathered.candidates, key=lambda c: -c.score)
        # A moved cursor forgets the old place's names; otherwise they stay covered.
        kept_names = names if previous is None or abs(cursor_line - previous.cursor_line) > MOVE_LINES \
            else names | previous.near_names
        selection = Selection(tuple(ranked), kept_names, cursor_line, time.monotonic(), path,
                              previous.previous_block if previous else ())
        self._selections[key] = selection
        self._selections.move_to_end(key)
        while len(self._selections) > self._kept:
            self._selections.popitem(last=False)
        return Choice(selection, False, why)

    def _keep(self, key: str, previous: Selection, why: str) -> Choice:
        self._selections.move_to_end(key)
        return Choice(previous, True, why)

    def built(self, key: str, block: tuple[str, ...],
              facts: Mapping[str, DefinitionFacts] | None = None) -> None:
        """Remember the keys of the block built from the selection, in prompt order, and what the
        index said of its definitions then."""
        selection = self._selections.get(key)
        if selection is None:
            return
        facts = dict(facts or {})
        if selection.previous_block != block or selection.block_facts != facts:
            self._selections[key] = dataclasses.replace(selection, previous_block=block, block_facts=facts)

    def forget(self, key: str) -> None:
        self._selections.pop(key, None)


def stable_order(chosen: list[Candidate], previous_block: tuple[str, ...]) -> list[Candidate]:
    """The chosen candidates in prompt order: those the previous block held first, in their old
    order, then the new ones best first."""
    by_key = {c.key: c for c in chosen}
    carried = [by_key[key] for key in previous_block if key in by_key]
    carried_keys = set(previous_block)
    return carried + [c for c in chosen if c.key not in carried_keys]
