"""Per document: its prompt's context block, where its prefix starts, what the engine's cache holds
for it, and what its last completion was given.

Everything here serves one goal: the large parts of a prompt are read once. The context block is
chosen with hysteresis (selection.py), the prefix start is anchored (prompting/fim.py PrefixAnchor),
and the text last read into the document's engine slot is remembered, so a request whose block is
already cached is budgeted by what it must read rather than by its whole length.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from nearcode.daemon.context.assembler import NO_CONTEXT, ContextAssembler, ContextChoice
from nearcode.daemon.context.file_view import file_view_part
from nearcode.daemon.context.records import PromptRecord, PromptRecords
from nearcode.daemon.prompting.context_fit import Snippet
from nearcode.daemon.prompting.fim import (
    CacheView,
    CountTokens,
    FimInput,
    FimPrompt,
    PrefixAnchor,
    PromptBudget,
    build_fim_prompt,
    shared_start,
)
from nearcode.daemon.prompting.templates import FimTemplate
from nearcode.shared.protocol.daemon_api import PREFIX_WINDOW_CHARS, ContextSnippet
from nearcode.shared.protocol.editor import ContextResult, PromptBudgetReport, PromptPart
from nearcode.shared.text import text_digest

DOCUMENTS_KEPT = 512
COUNTS_KEPT = 4096  # token counts of prompt parts (a few dozen parts a document)
VIEW_AFTER_SCORE = 0.7
VIEW_PROBE_CHARS = 200  # how much of a view's start shows that a cached prompt holds it
CHARS_PER_TOKEN = 3.0  # a low estimate for code: "the prefix surely fits" errs towards keeping the view
V = TypeVar("V")


@dataclass(frozen=True)
class PromptRequest:
    """What a prompt is built from: a completion request or a prefill (daemon_api models)."""

    client: str
    document: str
    affinity: str
    path: str
    language: str
    prefix: str
    suffix: str
    context_mode: str
    single_line: bool = True
    extra_context: tuple[ContextSnippet, ...] = ()
    head: str | None = None  # the document's start, when known (a prefill sends it)

    @property
    def slot_key(self) -> str:
        """Anchors, blocks and cache views follow the engine slot: a document's speculation shares
        them (it runs in the same slot)."""
        return f"{self.client}\x00{self.affinity or self.document}"

    @property
    def record_key(self) -> str:
        return f"{self.client}\x00{self.document}"


@dataclass
class BuiltPrompt:
    prompt: FimPrompt
    record: PromptRecord


class DocumentPrompts:
    def __init__(self, template: FimTemplate, count_tokens: CountTokens, assembler: ContextAssembler,
                 slot_holds: Callable[[str], bool] | None = None) -> None:
        self.template = template
        self.count_tokens = CachedCounter(count_tokens)
        self.assembler = assembler
        self.records = PromptRecords()
        # Whether the engine still keeps a slot for an affinity key (None: assume it does).
        self._slot_holds = slot_holds
        self._anchors: LruDict[PrefixAnchor] = LruDict()
        self._cached: LruDict[str] = LruDict()  # slot key -> the prompt text last read there
        self._views: LruDict[Snippet] = LruDict()  # slot key -> the current file's far text, as last seen
        self._block_totals: LruDict[int] = LruDict()  # slot key -> the stable total its block was built with
        # The template's text right after the context block (a FIM token, never in code): where a
        # cached prompt's block ends ("" when the template has none).
        after = template.template.partition("{context}")[2]
        self._block_end = after[: after.find("{")] if "{" in after else after
        self.anchored_prompts = 0
        self.warm_prompts = 0

    @property
    def anchor_count(self) -> int:
        return len(self._anchors)

    def _anchor(self, key: str, anchor: PrefixAnchor | None) -> None:
        if anchor is None:
            self._anchors.pop(key)
        else:
            self._anchors.put(key, anchor)

    def cache_view(self, req: PromptRequest, warm_tokens: int) -> CacheView:
        affinity = req.affinity or req.document
        if self._slot_holds is not None and affinity and not self._slot_holds(affinity):
            return CacheView()
        return CacheView(self._cached.get(req.slot_key) or "", warm_tokens)

    def read(self, req: PromptRequest, text: str, complete: bool) -> None:
        """The engine read `text` into the request's slot (all of it, or part when `complete` is
        False: then only what it shares with what was there before is known to be cached)."""
        if complete:
            self._cached.put(req.slot_key, text)
            return
        before = self._cached.get(req.slot_key) or ""
        self._cached.put(req.slot_key, text[: shared_start(before, text)])

    async def build(self, req: PromptRequest, budget: PromptBudget, warm_tokens: int) -> BuiltPrompt:
        """The prompt for `req` within `budget`. A block already in the slot that was built larger
        than `budget` allows (a read-ahead's, `read_ahead_budget`, or one from before the measured
        speed fell) is kept while the slot still holds it: the request reads only the text after it,
        rather than a smaller block of its own from the start."""
        kept_total = self._block_totals.get(req.slot_key)
        if kept_total is not None and kept_total > (budget.stable_total_tokens or budget.total_tokens):
            larger = dataclasses.replace(budget, stable_total_tokens=kept_total)
            prompt, choice = await self._compose(req, larger, warm_tokens)
            if prompt.warm:
                return self._commit(req, choice, prompt, larger)
        prompt, choice = await self._compose(req, budget, warm_tokens)
        return self._commit(req, choice, prompt, budget)

    async def _compose(self, req: PromptRequest, budget: PromptBudget, warm_tokens: int) -> tuple[FimPrompt, ContextChoice]:
        choice = NO_CONTEXT
        if req.context_mode == "workspace":
            choice = await self.assembler.choose(req.slot_key, req.path, req.language, req.prefix, req.suffix)
        shown_path = choice.relative(req.path)
        parts = [Snippet(choice.relative(c.path), c.text, c.kind, c.start_line, c.end_line, c.reason, c.key, c.name,
                         shorter=c.shorter)
                 for c in choice.candidates]
        view = self._view(req, shown_path, choice, budget) if req.context_mode == "workspace" else None
        if view is not None:
            # Fitted after the definitions the cursor plainly needs (a call just typed, an imported
            # name used right here), before the rest; its place in the prompt stays first once
            # read (the block keeps its parts' order).
            strong = sum(1 for c in choice.candidates if c.score >= VIEW_AFTER_SCORE)
            parts.insert(strong, view)
        parts += [Snippet(s.path, s.text, "snippet", reason="sent by the editor") for s in req.extra_context]
        prompt = await build_fim_prompt(
            FimInput(prefix=req.prefix, suffix=req.suffix, path=shown_path, language=req.language,
                     context=tuple(parts), repo=choice.repo, previous_block=choice.previous_block),
            self.template, budget, self.count_tokens, single_line=req.single_line,
            anchor=self._anchors.get(req.slot_key), cache=self.cache_view(req, warm_tokens),
        )
        return prompt, choice

    def _commit(self, req: PromptRequest, choice: ContextChoice, prompt: FimPrompt, budget: PromptBudget) -> BuiltPrompt:
        self._anchor(req.slot_key, prompt.anchor)
        self._block_totals.put(req.slot_key, budget.stable_total_tokens or budget.total_tokens)
        if prompt.context is not None:
            self.assembler.built(req.slot_key, prompt.context.kept, req.path)
        self.anchored_prompts += prompt.anchored
        self.warm_prompts += prompt.warm
        return BuiltPrompt(prompt, self._record(req, choice, prompt, budget))

    def _view(self, req: PromptRequest, shown_path: str, choice: ContextChoice, budget: PromptBudget) -> Snippet | None:
        """The current file's far text, as last seen: kept per slot (it starts the context block, so
        it must not change while the user types), taken afresh from a prefill's head of the document.
        None when the near prefix reaches back to the file's start anyway (a short file, or the
        cursor near its top): the head would be there twice; unless the slot holds it already."""
        starts_file = len(req.prefix) < PREFIX_WINDOW_CHARS and (req.prefix or req.head is None)
        if starts_file and len(req.prefix) <= CHARS_PER_TOKEN * budget.total_tokens * budget.prefix_share:
            return self._cached_view(req, shown_path)
        if req.head is None:
            kept = self._views.get(req.slot_key)
            if kept is not None and kept.path == shown_path:
                return kept
        text = req.head
        if text is None:
            # Without the document's head, only a prefix that starts at the file's start shows it.
            text = req.prefix + req.suffix if len(req.prefix) < PREFIX_WINDOW_CHARS else ""
        view = file_view_part(shown_path, text, req.language, choice.current_definitions)
        if view is not None:
            self._views.put(req.slot_key, view)
        return view

    def _cached_view(self, req: PromptRequest, shown_path: str) -> Snippet | None:
        """The view the slot already holds (read ahead when the file was opened, before the cursor
        was known), or None. Kept, it costs nothing to read; left out, the block no longer matches
        the cache and the whole prompt is read again (2-3 s on the 1.5B, for 1 first completion in 8
        five seconds after opening: docs/benchmark.md, stop 33)."""
        kept = self._views.get(req.slot_key)
        if kept is None or kept.path != shown_path:
            return None
        if req.prefix.count("\n") <= kept.end_line:
            # The cursor is in the head the view shows (an import being written): shown twice, the
            # line left unfinished reads as written already, and the model answered nothing.
            return None
        # Its start, in the cached block: the block holds the view cut to its share, and a prefix
        # that begins at the file's start holds the same text (a prompt built without the view).
        return kept if kept.text[:VIEW_PROBE_CHARS] in self._cached_block(req) else None

    def _cached_block(self, req: PromptRequest) -> str:
        """The context block of the prompt in the request's slot (the whole prompt when the
        template marks no end)."""
        cached = self.cache_view(req, 1).text
        end = cached.find(self._block_end) if self._block_end else -1
        return cached[:end] if end >= 0 else cached

    def _record(self, req: PromptRequest, choice: ContextChoice, prompt: FimPrompt, budget: PromptBudget) -> PromptRecord:
        shown = choice.relative(req.path)
        cursor_line = req.prefix.count("\n")
        prefix_text = req.prefix[len(req.prefix) - prompt.prefix_chars:]
        suffix_text = req.suffix[: prompt.suffix_chars]
        used = dict(prompt.used)
        # Validated: the fitter's kind and status strings are the protocol's literals.
        parts = [PromptPart.model_validate(dataclasses.asdict(p)) for p in prompt.parts]
        why_prefix = "text before the cursor" + (", from the same start as the previous prompt (cached)"
                                                 if prompt.anchored else "")
        if prompt.warm and not prompt.anchored:
            why_prefix += ", cut to what reads quickly: the context block was already cached"
        parts.append(PromptPart(kind="prefix", path=shown, start_line=cursor_line - prefix_text.count("\n"),
                                end_line=cursor_line, tokens=used.get("prefix", 0), status="kept", reason=why_prefix))
        parts.append(PromptPart(kind="suffix", path=shown, start_line=cursor_line,
                                end_line=cursor_line + suffix_text.count("\n"), tokens=used.get("suffix", 0),
                                status="kept", reason="text after the cursor"))
        shares = {"context": budget.context_share, "prefix": budget.prefix_share, "suffix": budget.suffix_share}
        report = PromptBudgetReport(total_tokens=budget.total_tokens, shares=shares, allotted=dict(prompt.allotted),
                                    used=used)
        return PromptRecord(
            uri=req.document, path=shown, context_mode=req.context_mode, parts=parts, budget=report,
            prompt=prompt.text, assembly_ms=choice.elapsed_ms, deadline_ms=self.assembler.deadline_s * 1000,
            deadline_missed=choice.deadline_missed, stable_block_reused=choice.reused, why=choice.why,
        )

    def report(self, client: str, document: str) -> ContextResult:
        record = self.records.get(f"{client}\x00{document}")
        if record is None:
            return ContextResult(available=False, uri=document,
                                 reason="no completion has been asked for in this document yet")
        return record.result()


class CachedCounter:
    """Token counts remembered: a document's context parts are the same request after request, and
    each count is a call into the engine's tokenizer.

    Keyed by a digest, not by the text: the texts are prompt parts of up to ~10 kB, and 4096 of
    them kept as keys made the daemon's memory creep for hours while the map filled (the soak's
    largest growing Python allocation sites were these strings)."""

    def __init__(self, count: CountTokens, kept: int = COUNTS_KEPT) -> None:
        self._count = count
        self._known: LruDict[int] = LruDict(kept)
        self.calls = 0

    def __len__(self) -> int:
        return len(self._known)

    async def __call__(self, text: str) -> int:
        key = text_digest(text)
        known = self._known.get(key)
        if known is None:
            self.calls += 1
            known = await self._count(text)
            self._known.put(key, known)
        return known


class LruDict(Generic[V]):
    """A small least-recently-used map (documents come and go over a day)."""

    def __init__(self, kept: int = DOCUMENTS_KEPT) -> None:
        self._kept = kept
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._kept:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
