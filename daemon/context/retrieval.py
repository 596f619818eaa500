"""Gather context candidates for one cursor from the workspace index, under a hard deadline.

Order of trust (Continue and Tabby do the same): the members of an imported module whose name
was just typed with a dot; a name near the cursor that the current file imports is resolved
through that import (a function's own imports count); a module the file imports contributes the
members that match the words around the cursor; any other name near the cursor is looked up by
name across the workspace; after `from m import`, what m defines that the file lacks; then
snippets of the other open files and of recently edited ranges, ranked by identifier overlap with
the text around the cursor.

The index's methods are synchronous, so gathering runs on a worker thread. It checks the deadline
between index calls and the caller takes whatever was found when the deadline passes: a slow index
means less context, never a later answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from nearcode.daemon.context.code_scan import (
    assigned_classes,
    attribute_pairs,
    from_import_being_written,
    is_under,
    member_being_written,
    module_folder,
    returned_classes,
    scan_python_imports,
    unresolved_names,
    writing_import,
)
from nearcode.daemon.context.identifiers import subword_set
from nearcode.daemon.context.index_api import Definition, WorkspaceIndex
from nearcode.daemon.context.lookups import (
    MAX_CLASS_MEMBERS,
    MAX_MEMBERS_PER_MODULE,
    MORE_CLASS_MEMBERS,
    NO_MEMBERS,
    Imported,
    class_members,
    closest,
    imported_names,
    matching_members,
    module_members,
    named_in,
    word_match,
)
from nearcode.daemon.context.render import render_definitions, shorter_forms
from nearcode.daemon.context.snippets import snippets
from nearcode.daemon.context.window import Candidate, CursorWindow, Gathered

MAX_DEFINITIONS_PER_NAME = 3  # a name defined in many places: the closest few

# Scores put every kind on one scale; the fitter takes candidates best first.
SCORE_IMPORTED_NAME = 1.0  # a name near the cursor, resolved through the file's imports
SCORE_MODULE_MEMBER_USED = 0.95  # `module.member` near the cursor
SCORE_WORKSPACE_NAME = 0.8  # a name near the cursor found elsewhere in the workspace
SCORE_MODULE_MEMBER_MATCH = 0.8  # a member of a module used near the cursor, by its words (x 0.5-1)
# ... one whose name appears nowhere in the file: the model cannot guess it from the text, while
# a name it just read there it can already write (its signature is worth less than an unknown name).
SCORE_MODULE_MEMBER_UNSEEN = 1.1
# `module.` just typed: its members lead (those not written in the file yet most), whatever the
# words near the cursor (`git.` after `git.git_revision(...) and git.is_git_repo(...)` wants `have_git`).
SCORE_MEMBER_BEING_WRITTEN = 1.2
SCORE_CLASS_BASE = 0.75  # a base of the class the cursor is in (1.2 once `self.` is typed)
SCORE_MODULE_BEING_IMPORTED = 0.9  # `from m import ` typed: what m defines that the file does not import yet
SCORE_FILE_IMPORT = 0.3  # imported by the file, not used near the cursor
SCORE_UNRESOLVED = 0.4  # used in the file, not defined or imported there, defined in the workspace
MAX_UNRESOLVED = 24


class _Stop(Exception):
    pass


DEFINITION_KEY = "def:"  # a definition candidate's key: def:<workspace-relative path>:<qualified name>

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="context")


async def gather(index: WorkspaceIndex, window: CursorWindow, deadline_s: float) -> Gathered:
    """Candidates for `window`, found within `deadline_s` seconds (what was found by then)."""
    started = time.monotonic()
    found = Gathered()
    lock = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        with contextlib.suppress(_Stop):
            for candidate in _candidates(index, window, found, stop):
                with lock:
                    found.candidates.append(candidate)

    future = asyncio.get_running_loop().run_in_executor(_POOL, work)
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout=deadline_s)
    except TimeoutError:
        stop.set()  # the worker stops at its next index call; its later finds are not used
        found.deadline_missed = True
        future.add_done_callback(lambda f: f.exception())
    except Exception:  # a broken index costs this request its context, nothing more
        stop.set()
    with lock:
        result = Gathered(_best_per_key(found.candidates), found.deadline_missed, round((time.monotonic() - started) * 1000, 1),
                          found.near_names, found.current_definitions)
    return result


def _best_per_key(candidates: list[Candidate]) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.key not in best or c.score > best[c.key].score:
            best[c.key] = c
    return list(best.values())


def _candidates(
    index: WorkspaceIndex, window: CursorWindow, found: Gathered, stop: threading.Event
) -> Iterator[Candidate]:
    return _Search(index, window, found, stop).candidates()


class _Search:
    """One gathering's routes from the names near the cursor to definitions, and what they share:
    the best score per definition so far (a later, better route replaces an earlier one), the
    definitions names near the cursor resolved to, and the stop flag it checks between index calls."""

    def __init__(self, index: WorkspaceIndex, window: CursorWindow, found: Gathered, stop: threading.Event) -> None:
        self.index, self.window, self.found, self._stop = index, window, found, stop
        self.around = window.words()
        self.around_words = subword_set(self.around)
        self.near = window.near_names()
        self._best: dict[str, float] = {}  # definition key -> best score so far
        self._defined_members: frozenset[str] = frozenset()  # methods and attributes the current file defines
        self._bound_names: set[str] = set()  # what the file's Python imports bind, a function's own included
        self._writing_member = member_being_written(window.before)  # (owner, typed) after `owner.`
        self._resolved_near: dict[str, None] = {}  # keys of the definitions names near the cursor resolve to

    def check(self) -> None:
        if self._stop.is_set():
            raise _Stop

    def candidates(self) -> Iterator[Candidate]:
        self.check()
        # Names the current file defines itself: the file shows them already.
        self.found.current_definitions = tuple(self.index.file_definitions(self.window.path))
        file_names = {d.name for d in self.found.current_definitions}
        self._defined_members = frozenset(d.name for d in self.found.current_definitions if "." in d.qualified)
        self.check()
        imports = self.index.file_imports(self.window.path)
        if self.window.language == "python":  # and a function's own imports, which the index does not keep
            self._bound_names, nested = scan_python_imports(self.window.file_text or self.window.before)
            imports = [*imports, *nested]
        imported = imported_names(self.index, self.window.path, imports, self.check)
        yield from self._class_bases(imported)
        yield from self._near_names(imported, file_names)
        self.found.near_names = tuple(self._resolved_near)
        yield from self._unresolved(imported, file_names)
        yield from self._file_imports(imported)
        yield from snippets(self.index, self.window, self.around, self.check)

    def _definition(
        self, d: Definition, score: float, reason: str, near: bool = False, instance: bool = False
    ) -> Iterator[Candidate]:
        """`d` as a candidate (a class with its members), unless it is in this file or a route
        already offered it at least as well. `near`: a name near the cursor resolved to it;
        `instance`: a class reached through an instance of it (its members matter, not its constructor)."""
        key = f"{DEFINITION_KEY}{d.path}:{d.qualified}"
        if near:
            self._resolved_near[key] = None
        if self._best.get(key, -1.0) >= score or d.path == self.window.path:
            return
        self._best[key] = score
        members = (class_members(self.index, d, self.check, self.around_words, self._defined_members, instance,
                                 self.window.file_text or self.window.before) if d.kind == "class" else NO_MEMBERS)
        shown = [d, *members.shown(MAX_CLASS_MEMBERS)]
        text = render_definitions(shown, self.window.language)
        fewer = members.fewer(MAX_CLASS_MEMBERS + MORE_CLASS_MEMBERS)
        yield Candidate("definition", key, d.path, d.line, max([d.line, *(m.line for m in members.ranked)]), text, score,
                        reason, d.name, shorter_forms(shown, self.window.language, text, fewer))

    def _near_names(self, imported: Imported, file_names: set[str]) -> Iterator[Candidate]:
        window = self.window
        attribute_of = attribute_pairs(window.before + "\n" + window.after)
        # `module.name` with an imported module: looked up in that module (below), not by bare name.
        reached_through = {m for owner in imported for m in attribute_of.get(owner, ())}
        # `x.member` where x holds an instance (`x = Cls(...)`, `x: Cls`): Cls's stub shows its members.
        returns = returned_classes(self.found.current_definitions)
        held = assigned_classes(window.file_text or window.before, set(attribute_of) - set(imported), returns)
        for distance, name in enumerate(self.near):
            self.check()
            if (name in reached_through and name not in imported) or name.startswith("__") or len(name) < 3:
                continue  # dunders are defined everywhere; two letters are a loop variable
            # Nearer names first: a call just typed needs its signature, a name used 30 names up has
            # been seen in the prefix already (a member matching the words here may be worth more).
            decay = 1.0 / (1.0 + 0.05 * distance)
            if name in imported:
                yield from self._through_import(name, imported[name], attribute_of.get(name, ()), decay)
            elif name in held:
                yield from self._held_instance(name, held[name], imported, decay)
            elif name not in file_names:  # defined in this file: the file itself shows it
                for target in closest(self.index.definitions(name), window.path)[:MAX_DEFINITIONS_PER_NAME]:
                    yield from self._definition(target, SCORE_WORKSPACE_NAME * decay,
                                                f"{name} used near the cursor, defined in the workspace", near=True)

    def _through_import(
        self, name: str, source: tuple[list[str], tuple[str, ...]], members_used: Iterable[str], decay: float
    ) -> Iterator[Candidate]:
        """A name the file imports: what it names in the files it comes from, the members used as
        `name.member`, and for a module, its members that match the words here."""
        modules, names = source
        for target in named_in(self.index, modules, names, self.check)[:MAX_DEFINITIONS_PER_NAME]:
            yield from self._definition(target, SCORE_IMPORTED_NAME * decay, f"imported as {name}, used near the cursor",
                                        near=True)
        for member_name in members_used:
            for target in named_in(self.index, modules, (member_name,), self.check)[:1]:
                yield from self._definition(target, SCORE_MODULE_MEMBER_USED * decay,
                                            f"{name}.{member_name} used near the cursor ({name} is imported)", near=True)
        writing = self._writing_member
        if not names and writing is not None and writing[0] == name:
            yield from self._members_being_written(name, modules, writing[1])
        if not names:  # a module used near the cursor: its members that match the words here
            for target, words in matching_members(self.index, modules, self.around_words, self.check):
                unseen = target.name not in self.around and target.name not in self.window.file_text
                base = SCORE_MODULE_MEMBER_UNSEEN if unseen else SCORE_MODULE_MEMBER_MATCH
                yield from self._definition(target, base * decay * (0.5 + 0.5 * words),
                                            f"member of {name} (imported), matches words near the cursor"
                                            + (", not written near it yet" if unseen else ""))

    def _members_being_written(self, name: str, modules: list[str], typed: str) -> Iterator[Candidate]:
        """`name.` or `name.part` at the cursor with `name` an imported module: its top-level
        definitions that start with what is typed (private ones only once `_` is), those the file
        does not use yet first, and by the words they share with the text near the cursor
        (`config_wrapper = _config.` wants `ConfigWrapper`), then in source order."""
        written = self.window.file_text or self.window.before
        scored = []
        for d in module_members(self.index, modules, typed, self.check):
            used = f"{name}.{d.name}" in written
            scored.append((SCORE_MEMBER_BEING_WRITTEN * (0.8 if used else 1.0)
                           * (0.75 + 0.25 * word_match(d.name, self.around_words)), used, d))
        scored.sort(key=lambda item: (-item[0], item[2].path, item[2].line))
        for score, used, d in scored[:MAX_MEMBERS_PER_MODULE]:
            yield from self._definition(d, score,
                                        f"a member of {name} (imported), {name}.{typed} being written"
                                        + ("" if used else ", not used in this file yet"), near=True)

    def _class_bases(self, imported: Imported) -> Iterator[Candidate]:
        """The bases of the class the cursor is in: what `self.` reaches that this file does not
        define (`self.should_exit`, set in the base's `__init__`); they lead once `self.` is typed."""
        writing = self._writing_member
        score = SCORE_MEMBER_BEING_WRITTEN if writing is not None and writing[0] == "self" else SCORE_CLASS_BASE
        for base in self.window.class_bases:
            for target in self._class_named(base, imported)[:1]:
                yield from self._definition(target, score, f"a base of the class the cursor is in ({base})", near=True,
                                            instance=True)

    def _held_instance(self, name: str, cls: str, imported: Imported, decay: float) -> Iterator[Candidate]:
        for target in self._class_named(cls, imported)[:1]:
            yield from self._definition(target, SCORE_IMPORTED_NAME * decay, f"{name} holds a {cls}: its members", near=True,
                                        instance=True)

    def _class_named(self, written: str, imported: Imported) -> list[Definition]:
        """The definitions a class name as written here (`Base`, `module.Base`) refers to: through
        the file's imports first, else the closest of that name in the workspace."""
        self.check()
        owner, _, name = written.rpartition(".")
        found: list[Definition] = []
        if owner in imported and not imported[owner][1]:  # `module.Base`, the module imported
            found = named_in(self.index, imported[owner][0], (name,), self.check)
        elif name in imported and imported[name][1]:
            found = named_in(self.index, *imported[name], self.check)
        return found or closest(self.index.definitions(name), self.window.path)

    def _unresolved(self, imported: Imported, file_names: set[str]) -> Iterator[Candidate]:
        """Names the file uses but neither defines nor imports: what an import line being written
        needs (its module's path and the name's definition), else weakly."""
        window = self.window
        importing = writing_import(window.before)
        # `from ._internal` typed: the names defined in that module lead, the others are a guess.
        under = module_folder(importing, window.path) if window.language == "python" else None
        known = file_names | set(imported)
        known |= self._bound_names
        names = unresolved_names(window.file_text, known if importing else known | set(self.near), window.language)
        if importing:  # the import being written is most likely for a name used near the cursor
            nearness = {name: rank for rank, name in enumerate(self.near)}
            names.sort(key=lambda name: nearness.get(name, len(nearness)))  # stable: then the most used
        offered = 0
        for name in names[:MAX_UNRESOLVED]:
            self.check()
            found = closest(self.index.definitions(name) or self.index.definitions(name.lstrip("_")), window.path)
            if under is not None:
                found = sorted(found, key=lambda d: not is_under(d.path, under))
            for target in found[:1]:
                fits = bool(importing) and (under is None or is_under(target.path, under))
                yield from self._definition(target, SCORE_IMPORTED_NAME / (1.0 + 0.05 * offered) if fits else SCORE_UNRESOLVED,
                                            f"{name} used in this file, defined in the workspace (not imported here)"
                                            + (f", in the module being imported ({under})" if under and fits else ""))
                offered += fits
        if window.language == "python":
            yield from self._module_being_imported(importing, known)

    def _module_being_imported(self, importing: str, known: set[str]) -> Iterator[Candidate]:
        """`from .m import ` typed: what m defines that this file does not bind yet (re-exports in
        an `__init__.py` list names nothing in the file uses), in source order, after the names
        used in the file (above)."""
        writing = from_import_being_written(importing)
        if writing is None:
            return
        ref, typed = writing
        missing = [d for d in module_members(self.index, self.index.resolve(self.window.path, ref), typed, self.check)
                   if d.name not in known]  # (names the file uses came above)
        for offered, d in enumerate(missing[:MAX_MEMBERS_PER_MODULE]):
            yield from self._definition(d, SCORE_MODULE_BEING_IMPORTED / (1.0 + 0.05 * offered),
                                        f"defined in the module being imported ({ref.module or '.'}), not imported here yet")

    def _file_imports(self, imported: Imported) -> Iterator[Candidate]:
        """What the file imports but the cursor's surroundings do not use: weakly, after the rest."""
        for name, (modules, names) in imported.items():
            self.check()
            if names and name not in self.near:
                for target in named_in(self.index, modules, names, self.check)[:1]:
                    yield from self._definition(target, SCORE_FILE_IMPORT, f"imported by this file as {name}")
