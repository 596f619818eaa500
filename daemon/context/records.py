"""What the last completion of each (client, document) was given, for `nearcode.showContext`.

Kept in memory only (the prompt is the user's code: it is never logged or written anywhere), a
bounded number of documents, and rendered for people by the same code for every editor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from nearcode.shared.protocol.editor import ContextResult, PromptBudgetReport, PromptPart

RECORDS_KEPT = 256


@dataclass
class PromptRecord:
    uri: str
    path: str  # as shown in the prompt
    context_mode: str
    parts: list[PromptPart]
    budget: PromptBudgetReport
    prompt: str
    assembly_ms: float = 0.0
    deadline_ms: float = 0.0
    deadline_missed: bool = False
    stable_block_reused: bool = False
    why: str = ""  # why the context block was kept or rebuilt
    prompt_tokens: int = 0
    cached_tokens: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    forced_start: str = ""  # token healing: the prompt ends before these characters of the prefix

    def result(self) -> ContextResult:
        result = ContextResult(
            available=True, uri=self.uri, context_mode=self.context_mode, parts=self.parts, budget=self.budget,
            prompt_tokens=self.prompt_tokens, cached_tokens=self.cached_tokens, assembly_ms=self.assembly_ms,
            deadline_ms=self.deadline_ms, deadline_missed=self.deadline_missed,
            stable_block_reused=self.stable_block_reused, prompt=self.prompt,
        )
        result.text = render_text(self, result)
        return result


class PromptRecords:
    def __init__(self, kept: int = RECORDS_KEPT) -> None:
        self._kept = kept
        self._records: OrderedDict[str, PromptRecord] = OrderedDict()

    def put(self, key: str, record: PromptRecord) -> None:
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self._kept:
            self._records.popitem(last=False)

    def get(self, key: str) -> PromptRecord | None:
        return self._records.get(key)


def render_text(record: PromptRecord, result: ContextResult) -> str:
    """The report as plain text: the budget by part, then each part with its lines, tokens and why."""
    lines = [f"nearcode context: {record.path} ({record.context_mode} mode)"]
    lines.append(
        f"last completion: {result.prompt_tokens} prompt tokens, {result.cached_tokens} of them from the engine's cache"
    )
    gathered = f"context gathered in {result.assembly_ms:.1f} ms (deadline {result.deadline_ms:.0f} ms"
    lines.append(gathered + (", missed: less context this time)" if result.deadline_missed else ")"))
    if record.why:
        lines.append(f"context block {record.why}")
    budget = result.budget
    if budget is not None:
        lines.append("")
        lines.append(f"budget: {budget.total_tokens} tokens")
        for name, allotted in budget.allotted.items():
            share = budget.shares.get(name)
            share_text = f"{share:.0%} " if share is not None else ""
            lines.append(f"  {name:<8} {share_text}allotted {allotted:>5}, used {budget.used.get(name, 0):>5}")
    if record.forced_start:
        lines.append(f"token healing: the prompt ends {len(record.forced_start)} characters before the cursor "
                     "(the prefix's last token); the answer was made to start with them")
    lines.append("")
    lines.append("parts (prompt order; then what was left out):")
    for part in result.parts:
        where = f"{part.path}:{part.start_line + 1}-{part.end_line + 1}"
        label = f"{part.name}: " if part.name else ""
        lines.append(f"  {part.status:<8} {part.kind:<10} {where:<48} {part.tokens:>5} tokens  {label}{part.reason}")
    return "\n".join(lines) + "\n"
