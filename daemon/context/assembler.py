"""Per request: which context the prompt gets, found in the workspace index under a deadline and
kept stable per (client, document) while the user types in one place."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import PurePath

from nearcode.daemon.context.code_scan import enclosing_class_bases
from nearcode.daemon.context.index_api import Definition, IndexLookup, WorkspaceIndex, no_index
from nearcode.daemon.context.retrieval import DEFINITION_KEY, gather
from nearcode.daemon.context.selection import Choice, DefinitionFacts, StableSelector
from nearcode.daemon.context.window import Candidate, CursorWindow, Gathered

# Gathering is raced against this (Continue races each source against 100 ms; our index lives in
# memory, so a few dozen lookups fit in far less). Past it the prompt simply has less context.
GATHER_DEADLINE_S = 0.02
WINDOW_LINES_BEFORE = 40  # what "near the cursor" means for names and for ranking
WINDOW_LINES_AFTER = 10


@dataclass(frozen=True)
class ContextChoice:
    candidates: tuple[Candidate, ...]  # best first
    previous_block: tuple[str, ...]  # keys of the block built last time, in prompt order
    reused: bool  # the same selection as the previous request's: the block stays the same
    why: str
    repo: str  # the workspace folder's name (the repository-context header)
    root: str  # paths are shown relative to it
    elapsed_ms: float = 0.0
    deadline_missed: bool = False
    current_definitions: tuple[Definition, ...] = ()  # the current file's, from the index

    def relative(self, path: str) -> str:
        """A path as the prompt shows it: relative to the workspace folder (the index's paths are)."""
        if not PurePath(path).is_absolute():
            return path
        if self.root:
            try:
                return PurePath(path).relative_to(self.root).as_posix()
            except ValueError:
                pass
        return PurePath(path).name


NO_CONTEXT = ContextChoice((), (), False, "", "", "")


class ContextAssembler:
    def __init__(self, lookup: IndexLookup = no_index, deadline_s: float = GATHER_DEADLINE_S) -> None:
        self.lookup = lookup
        self.deadline_s = deadline_s
        self.selector = StableSelector()

    def index_for(self, path: str) -> WorkspaceIndex | None:
        try:
            return self.lookup(path) if path else None
        except Exception:  # no index is no context, not a failed completion
            return None

    async def choose(self, key: str, path: str, language: str, prefix: str, suffix: str) -> ContextChoice:
        """The context candidates for a cursor between `prefix` and `suffix` of `path`."""
        index = self.index_for(path)
        if index is None:
            return NO_CONTEXT
        root = str(index.root)
        try:  # the index speaks workspace-relative posix paths
            relative = PurePath(path).relative_to(root).as_posix()
        except ValueError:
            return NO_CONTEXT
        before = "\n".join(prefix.split("\n")[-WINDOW_LINES_BEFORE:])
        after = "\n".join(suffix.split("\n")[:WINDOW_LINES_AFTER])
        bases = enclosing_class_bases(prefix) if language == "python" else ()
        window = CursorWindow(relative, language, before, after, prefix + suffix, bases)
        gathered: Gathered = await gather(index, window, self.deadline_s)
        cursor_line = prefix.count("\n")
        choice: Choice = self.selector.choose(key, relative, gathered, cursor_line, self._changed(index, key))
        return ContextChoice(
            candidates=choice.selection.candidates,
            previous_block=choice.selection.previous_block,
            reused=choice.reused,
            why=choice.why,
            repo=PurePath(root).name or "workspace",
            root=root,
            elapsed_ms=gathered.elapsed_ms,
            deadline_missed=gathered.deadline_missed,
            current_definitions=gathered.current_definitions,
        )

    def built(self, key: str, block: tuple[str, ...], path: str = "") -> None:
        """The prompt of `key` was built with these parts (keys in prompt order) for the document at
        the absolute `path`: what the index says of the block's definitions now is what it shows."""
        index = self.index_for(path)
        previous = self.selector.previous(key)
        # A kept block keeps the facts of when its parts were gathered (a change since must still
        # be seen); a rebuilt selection starts without any, so its parts are looked up afresh.
        known = previous.block_facts if previous is not None else {}
        missing = [k for k in block if k.startswith(DEFINITION_KEY) and k not in known]
        fresh: dict[str, DefinitionFacts] = {}
        if index is not None and missing:
            # A broken index: those parts go unchecked later; the prompt built from them stands.
            with contextlib.suppress(Exception):
                fresh = definition_facts(index, missing)
        facts = {k: known[k] if k in known else fresh[k] for k in block if k in known or k in fresh}
        self.selector.built(key, block, facts)

    def _changed(self, index: WorkspaceIndex, key: str) -> list[str]:
        """Names of the definitions in the last block built for `key` that were changed, renamed
        or deleted in their files since (a few dict lookups per definition in the block)."""
        previous = self.selector.previous(key)
        if previous is None:
            return []
        try:
            now = definition_facts(index, list(previous.block_facts))
        except Exception:  # a broken index: the block stands, as when gathering fails
            return []
        return [k.rsplit(":", 1)[-1] for k, facts in previous.block_facts.items() if now[k] != facts]


def definition_facts(index: WorkspaceIndex, keys: list[str]) -> dict[str, DefinitionFacts]:
    """What the index has for each definition a block key names, with its members: (qualified
    name, signature, doc) each, without line numbers (lines shifting above it change nothing
    shown); empty when the definition is gone. One lookup per file."""
    by_path: dict[str, list[Definition]] = {}
    facts: dict[str, DefinitionFacts] = {}
    for key in keys:
        path, _, qualified = key[len(DEFINITION_KEY):].rpartition(":")
        if path not in by_path:
            by_path[path] = index.file_definitions(path)
        facts[key] = tuple(sorted((d.qualified, d.signature, d.doc) for d in by_path[path]
                                  if d.qualified == qualified or d.qualified.startswith(qualified + ".")))
    return facts
