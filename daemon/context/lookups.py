"""What the workspace index holds for the names near a cursor: what the file's imports bind,
the definitions a name has in given files or nearest the current file, a class's members worth
showing and a module's members that match the words near the cursor. Each call checks the
deadline first (`check` raises once it has passed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from nearcode.daemon.context.identifiers import overlap, subwords
from nearcode.daemon.context.index_api import Definition, ImportRef, WorkspaceIndex

Check = Callable[[], None]  # raises once the deadline has passed
Imported = dict[str, tuple[list[str], tuple[str, ...]]]  # local name -> (its files, names from them; () for a module)

MAX_MEMBERS_PER_MODULE = 6  # members of an imported module offered for the words near the cursor
# A class's stub shows its constructor and the members that match the words near the cursor
# first: 16 made one class stub (~170 tokens) crowd out the definitions that held the answer.
MAX_CLASS_MEMBERS = 6
# ... and its short form (one short line each, used when the stub does not fit) up to this many
# more: the next ones by need, dropped first when even the short form does not fit.
MORE_CLASS_MEMBERS = 6


def imported_names(index: WorkspaceIndex, path: str, imports: list[ImportRef], check: Check) -> Imported:
    """Local name -> (files it comes from, the names imported from them; () for a module)."""
    out: Imported = {}
    for ref in imports:
        check()
        files = index.resolve(path, ref)
        if not ref.names:  # `import a.b` / `import a.b as c` / Go, Rust `use` of a module
            local = ref.alias or ref.module.split(".")[0].split("/")[-1]
            out[local] = (files, ())
            continue
        for name in ref.names:
            if name == "*":
                continue
            local = ref.alias if ref.alias and len(ref.names) == 1 else name
            # `from pkg import submodule`: the name is a module when a file of its own resolves.
            sub = index.resolve(path, ImportRef(f"{ref.module}.{name}" if ref.module else name, (), "", ref.level,
                                                ref.line))
            own = [f for f in dict.fromkeys([*files, *sub]) if is_module_file(f, name)]
            out[local] = (own, ()) if own else (files, (name,))
    return out


def is_module_file(path: str, name: str) -> bool:
    file = PurePath(path)
    return file.stem == name or (file.stem in ("__init__", "index", "mod") and file.parent.name == name)


def named_in(index: WorkspaceIndex, files: list[str], names: tuple[str, ...], check: Check) -> list[Definition]:
    out = []
    for file in files:
        check()
        for d in index.file_definitions(file):
            if d.name in names and d.kind != "method" and "." not in d.qualified:
                out.append(d)
    return out


@dataclass(frozen=True)
class ClassMembers:
    """A class's members worth showing, most needed first, and the group each is listed in."""

    ranked: list[Definition]
    groups: dict[str, int]

    def shown(self, count: int) -> list[Definition]:
        """The `count` most needed, in the order the class lists them (by group, then source order):
        the model reads a stub as the class and follows its order (after `on_error` and
        `on_exception`, listed before `on_success` because the words near the cursor named them,
        it wrote `on_exception`: what it had read last)."""
        return sorted(self.ranked[:count], key=lambda d: (self.groups[d.name], d.line))

    def fewer(self, most: int) -> list[list[Definition]]:
        """The member lists a short stub may show, from the `most` needed down to one, in a few
        steps: the fitter counts each form's tokens (a call to the engine) until one fits."""
        top = min(most, len(self.ranked))
        if top == 0:  # not a class, or one without members: its one short form, no member lists
            return []
        counts = sorted({top, top * 3 // 4, top // 2, top // 3, top // 4, 1} - {0}, reverse=True)
        return [self.shown(count) for count in counts]


NO_MEMBERS = ClassMembers([], {})


def class_members(
    index: WorkspaceIndex, cls: Definition, check: Check, around_words: frozenset[str], defined_here: frozenset[str] = frozenset(),
    instance: bool = False, written: str = "",
) -> ClassMembers:
    """A class's methods and attributes (the index's, one per name), the most needed first: the
    constructor, then public ones before private ones (another file uses a class through its public
    names: `self._result` matching "result" near the cursor took the place of `get_result`), then
    those the current file defines itself (`defined_here`: a subclass's overrides, which the file
    shows; the one it lacks is the likely answer). In each group, those `written` (the file's text)
    does not use yet (`.name`) come first: the model can copy a member it has read in the file, not
    one it has not (after `converter.register_unstructure_hook(...)`, `converter.` wanted
    `register_structure_hook`, and the stub showed the unstructure hooks); then those whose names
    share words with the cursor's surroundings. `instance`: the class is reached through an
    instance (`self.` in a subclass, a variable holding one), where the constructor is the member
    least needed: it goes with the private ones (uvicorn's `Config.__init__` of 50 options filled
    the share before any attribute)."""
    check()
    prefix = cls.qualified + "."
    members = [d for d in index.file_definitions(cls.path) if d.qualified.startswith(prefix)
               and "." not in d.qualified[len(prefix):]]

    def group(d: Definition) -> int:
        if d.name == "__init__":
            return 2 if instance else 0
        if d.name in defined_here and not d.name.startswith("__"):  # dunders: every class has its own
            return 3
        return 2 if d.name.startswith("_") else 1

    def rank(d: Definition) -> tuple[int, bool, float, int]:
        return (group(d), f".{d.name}" in written, -len(frozenset(subwords(d.name)) & around_words), d.line)

    # One per name: `@overload`s repeat it (cattrs' `register_unstructure_hook` took three lines);
    # the last is the implementation, whose parameters cover them all.
    members = list({d.name: d for d in members}.values())
    ranked = sorted(members, key=rank)[: MAX_CLASS_MEMBERS + MORE_CLASS_MEMBERS]
    return ClassMembers(ranked, {d.name: group(d) for d in ranked})


def module_members(index: WorkspaceIndex, files: list[str], typed: str, check: Check) -> list[Definition]:
    """A module's top-level definitions that start with what is typed of a name, in source order;
    private ones only once `_` is typed, dunders never (another module reaches a module by its
    public names)."""
    members: list[Definition] = []
    for file in files:
        check()
        members.extend(d for d in index.file_definitions(file) if "." not in d.qualified and d.name.startswith(typed)
                       and not d.name.startswith("__") and (typed.startswith("_") or not d.name.startswith("_")))
    return members


def matching_members(
    index: WorkspaceIndex, files: list[str], around_words: frozenset[str], check: Check
) -> list[tuple[Definition, float]]:
    scored = []
    for file in files:
        check()
        for d in index.file_definitions(file):
            if "." in d.qualified or d.name.startswith("__"):
                continue
            match = word_match(d.name, around_words)
            if match:
                scored.append((d, match))
    scored.sort(key=lambda pair: (-pair[1], pair[0].line))
    return scored[:MAX_MEMBERS_PER_MODULE]


def word_match(name: str, around_words: frozenset[str]) -> float:
    """0..1: both the share of the name's words found near the cursor and how many (up to 3):
    `RootValidatorDecoratorInfo` matching root and validator beats `inspect_validator` matching validator."""
    words = frozenset(subwords(name))
    matched = len(words & around_words)
    return 0.5 * overlap(words, around_words) + 0.5 * min(1.0, matched / 3) if matched else 0.0


def closest(definitions: list[Definition], path: str) -> list[Definition]:
    """Definitions of one name, those in folders nearest the current file first."""
    here = PurePath(path).parent.parts

    def distance(d: Definition) -> int:
        there = PurePath(d.path).parent.parts
        common = 0
        for a, b in zip(here, there, strict=False):
            if a != b:
                break
            common += 1
        return len(here) + len(there) - 2 * common

    # Methods and attributes found by a bare name are mostly another class's `mode` or `name`:
    # without the receiver's type they are noise.
    top_level = [d for d in definitions if d.kind not in ("method", "attribute") and "." not in d.qualified]
    return sorted(top_level, key=lambda d: (distance(d), d.path, d.line))
