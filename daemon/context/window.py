"""What context retrieval reads and returns: the text around the cursor, and each candidate with
its score and the reason it was chosen (the fitter and `nearcode.showContext` carry the reason on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nearcode.daemon.context.code_scan import code_lines
from nearcode.daemon.context.identifiers import identifier_set, identifiers
from nearcode.daemon.context.index_api import Definition

CandidateKind = Literal["definition", "snippet", "edit"]


@dataclass(frozen=True)
class Candidate:
    kind: CandidateKind
    key: str  # identity across requests: the same definition or range keeps its key
    path: str
    start_line: int
    end_line: int
    text: str  # as it goes into the prompt
    score: float
    reason: str
    name: str = ""
    # Shorter forms of the text, (how it was shortened, text), each shorter than the one before (a definition's).
    shorter: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CursorWindow:
    """The text the ranking looks at: a few dozen lines around the cursor."""

    path: str
    language: str
    before: str  # the lines before the cursor (nearest last)
    after: str  # the lines after it
    file_text: str = ""  # as much of the file as the request carries (for names it uses elsewhere)
    class_bases: tuple[str, ...] = ()  # the bases of the class the cursor is in (Python)

    def near_names(self) -> list[str]:
        """Names near the cursor, nearest first by lines: the cursor's line, then the line above and
        the line below, and so on; on one distance the text before (nearest last) before the text
        after. A name used two lines below (`is_dataclass(x)` under the import being written) is
        nearer than the docstring forty lines up, although all of the text before comes first in
        reading order."""
        placed: list[tuple[int, int, int, str]] = []
        # Code only: a docstring's prose just above the cursor would push the names of the code
        # around it down the order. A window holding an odd number of `"""` begins inside one.
        inside = self.language == "python" and self.before.count('"""') % 2 == 1
        before = code_lines(self.before, self.language, starts_in_prose=inside)
        for distance, line in enumerate(reversed(before)):
            placed += [(distance, 0, i, name) for i, name in enumerate(reversed(identifiers(line)))]
        # Past the end of the cursor's block (a line indented less than the cursor's), the text
        # after is another scope's: it comes after everything before, as in reading order.
        indent = _indent(before[-1]) if before[-1].strip() else len(before[-1])
        beyond = 0
        for distance, line in enumerate(code_lines(self.after, self.language)):
            if distance and line.strip() and _indent(line) < indent:
                beyond = len(before)
            placed += [(beyond + distance, 1, i, name) for i, name in enumerate(identifiers(line))]
        return list(dict.fromkeys(name for *_, name in sorted(placed)))

    def words(self) -> frozenset[str]:
        return identifier_set(self.before + "\n" + self.after)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


@dataclass
class Gathered:
    candidates: list[Candidate] = field(default_factory=list)
    deadline_missed: bool = False
    elapsed_ms: float = 0.0
    near_names: tuple[str, ...] = ()  # keys of the definitions names near the cursor resolve to (hysteresis)
    current_definitions: tuple[Definition, ...] = ()  # the current file's, as the index has them
