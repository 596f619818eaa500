"""Fit context parts into the prompt's context share, and say for each why it is in or out.

Parts arrive best first. Each is taken whole while it fits, cut to what is left when it is a long
one that does not (keeping its start: a signature matters more than the members after it), and
dropped otherwise; every decision is recorded with its token count (Copilot's prompt elements carry
the same), which `nearcode.showContext` shows. The kept parts are then written in a stable order:
those the previous block held first, in their old order, so the engine's KV cache still holds
their text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nearcode.daemon.prompting.templates import FimTemplate, render

CountTokens = Callable[[str], Awaitable[int]]

MIN_CUT_TOKENS = 48  # a part cut to less than this says too little to be worth its header


@dataclass(frozen=True)
class Snippet:
    """A piece of context for the prompt: another file's definition or lines, or the current
    file's own far text."""

    path: str
    text: str
    kind: str = "snippet"  # definition, snippet (an open file), edit (a recent edit), file (this file)
    start_line: int = 0
    end_line: int = 0
    reason: str = ""
    key: str = ""  # identity across requests (the same definition keeps its key)
    name: str = ""
    max_share: float = 1.0  # the most of the context share it may take (cut beyond)
    # Shorter forms to fall back to, in order, before cutting: (how it was shortened, text), e.g. a
    # definition without its docs, then with short signatures.
    shorter: tuple[tuple[str, str], ...] = ()

    @property
    def identity(self) -> str:
        return self.key or f"{self.path}:{self.start_line}"


@dataclass(frozen=True)
class PartReport:
    kind: str
    path: str
    start_line: int
    end_line: int
    tokens: int  # as a block of its own (neighbours from one file share a header in the prompt)
    status: str  # kept, cut, dropped
    reason: str
    name: str = ""


@dataclass(frozen=True)
class FittedContext:
    text: str  # header + blocks + the current file's header; "" when nothing was kept
    tokens: int
    kept: tuple[str, ...]  # identities of the kept parts, in prompt order
    reports: tuple[PartReport, ...]  # prompt order for kept parts, then cut, then dropped


NOTHING = FittedContext("", 0, (), ())


async def fit_context(
    parts: tuple[Snippet, ...],
    template: FimTemplate,
    budget: int,
    count_tokens: CountTokens,
    values: dict[str, str],
    previous_block: tuple[str, ...] = (),
) -> FittedContext:
    """`parts` (best first) within `budget` tokens, written with the family's [context] format.
    `values`: repo, path (the current file's, as shown), comment (the line-comment marker)."""
    if not parts or budget <= 0 or not template.context_snippet:
        return NOTHING
    header = render(template.context_header, values)
    footer = render(template.context_current_file, values)
    remaining = budget - await count_tokens(header + footer)
    chosen: list[tuple[Snippet, int, str]] = []  # part, tokens, status
    left_out: list[PartReport] = []
    for part in parts:
        # A second part from a file already in the block joins that file's block: no header.
        joins = any(p.path == part.path for p, _, _ in chosen)
        cost = await _cost(template, part, joins, values, count_tokens)
        room = min(remaining, int(budget * part.max_share))
        if cost <= room:
            chosen.append((part, cost, "kept"))
            remaining -= cost
            continue
        if part.shorter and room >= MIN_CUT_TOKENS:
            # A shorter form first: a class's every member name says more than the first members'
            # docs and types (the answer is often a member further down); the shortest is cut below.
            part, cost = await _shortest_fitting(template, part, joins, values, count_tokens, room)
            if cost <= room:
                chosen.append((part, cost, "cut"))
                remaining -= cost
                continue
        if part.kind != "snippet" and room >= MIN_CUT_TOKENS:
            cut = await _cut_to(template, part, values, room, count_tokens)
            if cut is not None:
                text, cost = cut
                chosen.append((dataclasses.replace(part, text=text), cost, "cut"))
                remaining -= cost
                continue
        reason = f"dropped: needs {cost} tokens, {max(0, remaining)} of the context share left"
        left_out.append(_report(part, cost, "dropped", reason))
    if not chosen:
        return FittedContext("", 0, (), tuple(left_out))
    ordered = _stable_grouped_order(chosen, previous_block)
    text = header + _merged(template, [part for part, _, _ in ordered], values) + footer
    reports = [
        _report(part, tokens, status, part.reason if status == "kept" else f"cut to fit the context share; {part.reason}")
        for part, tokens, status in ordered
    ]
    return FittedContext(
        text=text,
        tokens=await count_tokens(text),  # merged blocks share headers: less than the parts' sum
        kept=tuple(part.identity for part, _, _ in ordered),
        reports=tuple(reports + left_out),
    )


def _stable_grouped_order(
    chosen: list[tuple[Snippet, int, str]], previous_block: tuple[str, ...]
) -> list[tuple[Snippet, int, str]]:
    """Parts the previous block held first, in their old order (the engine's cache holds them
    there), then the new ones best first; then a file's parts together, files in the order they
    first appear (a new part of a file already there joins it, which re-reads from that file on)."""
    by_identity = {item[0].identity: item for item in chosen}
    carried = [by_identity[key] for key in previous_block if key in by_identity]
    carried_keys = {item[0].identity for item in carried}
    ordered = carried + [item for item in chosen if item[0].identity not in carried_keys]
    first_seen: dict[str, int] = {}
    for index, (part, _, _) in enumerate(ordered):
        first_seen.setdefault(part.path, index)
    return sorted(ordered, key=lambda item: first_seen[item[0].path])


def _merged(template: FimTemplate, parts: list[Snippet], values: dict[str, str]) -> str:
    """The parts as file blocks, neighbours from the same file in one block (one header: a file's
    definitions read as that file's stub). Cut parts keep their cut text."""
    blocks: list[str] = []
    group: list[Snippet] = []
    for part in [*parts, None]:
        if group and (part is None or part.path != group[0].path):
            blocks.append(_block(template, group[0], "\n".join(p.text for p in group), values))
            group = []
        if part is not None:
            group.append(part)
    return "".join(blocks)


async def _cost(template: FimTemplate, part: Snippet, joins: bool, values: dict[str, str], count_tokens: CountTokens) -> int:
    """Tokens `part` adds: its text alone when it joins a block of its file already there, else
    with its file's header."""
    return await count_tokens(part.text + "\n" if joins else _block(template, part, part.text, values))


def _block(template: FimTemplate, part: Snippet, text: str, values: dict[str, str]) -> str:
    return render(template.context_snippet, {"snippet_path": part.path, "snippet_text": text, "comment": values["comment"]})


async def _shortest_fitting(
    template: FimTemplate, part: Snippet, joins: bool, values: dict[str, str], count_tokens: CountTokens, room: int
) -> tuple[Snippet, int]:
    """The first of the part's shorter forms that fits `room`, else its shortest, with its cost."""
    cost = room + 1
    shorter = part
    for how, text in part.shorter:
        shorter = dataclasses.replace(part, text=text, shorter=(), reason="; ".join(filter(None, (part.reason, f"{how}, to fit"))))
        cost = await _cost(template, shorter, joins, values, count_tokens)
        if cost <= room:
            break
    return shorter, cost


async def _cut_to(
    template: FimTemplate, part: Snippet, values: dict[str, str], budget: int, count_tokens: CountTokens
) -> tuple[str, int] | None:
    """The part's first lines (and their token count with its header) that fit `budget`, or None."""
    lines = part.text.split("\n")
    low, high = 1, len(lines) - 1
    best: tuple[str, int] | None = None
    while low <= high:  # the longest head that fits; a few token counts
        middle = (low + high) // 2
        text = "\n".join(lines[:middle])
        cost = await count_tokens(_block(template, part, text, values))
        if cost <= budget:
            best, low = (text, cost), middle + 1
        else:
            high = middle - 1
    return best


def _report(part: Snippet, tokens: int, status: str, reason: str) -> PartReport:
    return PartReport(part.kind, part.path, part.start_line, part.end_line, tokens, status, reason, part.name)
