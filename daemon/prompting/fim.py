"""Fill-in-the-middle prompts that fit a token budget.

Prompt parts share the budget by explicit percentages (as Copilot's prompt assembly does): the
prefix matters most, the suffix is re-read on every request so it stays short, and context
snippets take what is left. A share a part does not use goes to the prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nearcode.daemon.prompting.context_fit import (
    FittedContext,
    PartReport,
    Snippet,
    fit_context,
)
from nearcode.daemon.prompting.templates import FimTemplate, render
from nearcode.shared.languages import line_comment

CountTokens = Callable[[str], Awaitable[int]]

# Code averages 3-4 characters a token; 8 bounds how much text is tokenized to fill a budget.
_MAX_CHARS_PER_TOKEN = 8


@dataclass(frozen=True)
class PromptBudget:
    # A cap, not the usual size: the engine's measured speed sets the budget (fim_service.py).
    total_tokens: int = 1024
    # Measured on the cross-file cases (docs/benchmark.md): at 35% the definitions that held the
    # answer were found but dropped for room, while the prefix beyond ~450 tokens added little.
    prefix_share: float = 0.50
    suffix_share: float = 0.10
    context_share: float = 0.40
    # The suffix follows the cursor in the prompt, so the engine re-reads it on every keystroke; when
    # completing one line it is cut further, to the lines right after the cursor.
    single_line_suffix_tokens: int = 40
    # The total the context share is taken of (0: total_tokens). The block is read once and then
    # cached, so it follows the engine's speed but not how many editors share it at the moment.
    stable_total_tokens: int = 0

    def split(self, has_context: bool, single_line: bool = False) -> tuple[int, int, int]:
        """Token budgets for (prefix, suffix, context)."""
        suffix = int(self.total_tokens * self.suffix_share)
        if single_line:
            suffix = min(suffix, self.single_line_suffix_tokens)
        basis = self.stable_total_tokens or self.total_tokens
        context = int(basis * self.context_share) if has_context else 0
        return max(0, self.total_tokens - suffix - context), suffix, context


@dataclass(frozen=True)
class FimInput:
    prefix: str
    suffix: str
    path: str = ""
    language: str = ""
    context: tuple[Snippet, ...] = ()  # best first
    repo: str = ""
    # Identities of the context block's parts in the previous prompt of this document, in order:
    # kept parts stay in that order so the engine's KV cache still holds them.
    previous_block: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrefixAnchor:
    """Where the prefix kept in a document's previous prompt started (its first characters).

    Fitting the prefix from the cursor backwards moves its start whenever the token count near the
    cursor changes, and a prompt whose first line moved shares nothing with the engine's KV cache:
    every token is read again (seconds on a CPU). The next prompt of the same document starts at
    the anchor as long as that still fits the budget and keeps enough of it.
    """

    head: str


ANCHOR_HEAD_CHARS = 160
# An anchored prefix must keep at least this share of the budget, else it is fitted afresh;
# fitted afresh in a document that had an anchor, it takes this share, leaving room to type on.
ANCHOR_MIN_SHARE = 0.5
REFIT_SHARE = 0.85
# It may also exceed the budget by this share: the budget bounds the cost of reading a prompt,
# and the anchored part is already in the engine's cache (the budget itself moves a little as
# the engine's measured reading speed does).
ANCHOR_MAX_SHARE = 1.25


@dataclass(frozen=True)
class FimPrompt:
    text: str
    prefix_chars: int  # how much of the input's prefix/suffix made it in
    suffix_chars: int
    snippets: int
    anchor: PrefixAnchor | None = None  # pass to the document's next prompt
    anchored: bool = False  # the prefix started where the previous prompt's did
    warm: bool = False  # the context block was in the engine's cache: budgeted by what must be read
    prefix_end: int = 0  # where the prefix ends in `text`: what stays the same while the user types on
    context: FittedContext | None = None  # what the context block holds and what was left out
    # Token budgets (allotted) and use, by part: context, prefix, suffix.
    allotted: tuple[tuple[str, int], ...] = ()
    used: tuple[tuple[str, int], ...] = ()

    @property
    def parts(self) -> tuple[PartReport, ...]:
        return self.context.reports if self.context else ()


@dataclass(frozen=True)
class CacheView:
    """What the engine's KV cache holds in this document's slot, as far as the daemon knows, and
    how many tokens a request may read when its context block is already there."""

    text: str = ""  # the prompt last read into the slot
    warm_tokens: int = 0  # 0: no warm rule (every prompt is budgeted as if read cold)


# A warm request's near prefix never shrinks below this (a line or two is too little to go on).
MIN_WARM_PREFIX_TOKENS = 48
# The suffix of a request typing on (its near prefix mostly in the engine's cache) is at most this
# share of what a warm request may read. In prefix-suffix-middle order the suffix follows the
# cursor, so each keystroke's request reads it again: typing on, it is most of what is read (a
# typed line is ~10-20 tokens, the suffix's share of the budget ~80), and at a line start it
# decides whether the answer comes inside the typing pause (bench/replay.py, docs/benchmark.md
# stop 34). The first request at a new place reads its near prefix anyway and keeps the suffix's
# share: cut there too, the first completion after opening lost line starts (7 of 25 -> 3).
TYPING_SUFFIX_SHARE = 0.3


async def build_fim_prompt(
    inp: FimInput,
    template: FimTemplate,
    budget: PromptBudget,
    count_tokens: CountTokens,
    single_line: bool = False,
    anchor: PrefixAnchor | None = None,
    cache: CacheView | None = None,
) -> FimPrompt:
    """The prompt: the context block first (it changes least), then the text around the cursor.

    Cold (nothing of this prompt is in the engine's cache) the whole prompt is budgeted: what the
    engine reads within its cold-read target, shared by the parts' percentages. Warm (the context
    block is in the cache already) what is in the cache costs almost nothing and only what must be
    read is budgeted, to `cache.warm_tokens`: an anchored prefix whose start is cached is kept
    however long it has grown (up to ANCHOR_MAX_SHARE of the cold prefix budget), a fresh one is
    fitted to what reads within the warm target, so the first completion at a new place is fast.
    Typing on (the near prefix mostly cached too) the suffix, read again at every keystroke, is cut
    to TYPING_SUFFIX_SHARE of the warm target.
    """
    _, suffix_budget, context_budget = budget.split(bool(inp.context), single_line)
    if not template.uses_suffix:
        suffix_budget = 0  # a prefix-only prompt (model without FIM tokens): its share goes to the prefix
    # {comment}: families without repository tokens write file paths as line comments.
    values = {"repo": inp.repo or "workspace", "path": inp.path, "comment": line_comment(inp.language)}
    context = await fit_context(inp.context, template, context_budget, count_tokens, values, inp.previous_block)
    suffix = await fit_suffix(inp.suffix, suffix_budget, count_tokens)
    suffix_tokens = await count_tokens(suffix)
    # Shares a part leaves unused go to the prefix.
    prefix_budget = max(MIN_WARM_PREFIX_TOKENS, budget.total_tokens - suffix_tokens - context.tokens)
    values = {"context": context.text, "suffix": suffix, "language": inp.language}

    def prompt_with(prefix: str) -> str:
        return render(template.template, {**values, "prefix": prefix})

    # What comes before the prefix: the block, and in suffix-first (SPM) order the suffix too.
    start = render(template.template.split("{prefix}")[0], values)
    block = render(template.template.split("{context}")[0], values) + context.text
    warm = bool(cache and cache.warm_tokens and context.text and cache.text.startswith(block))
    prefix: str | None = None
    if warm and cache is not None:
        full_suffix = suffix
        prefix = await _anchored_prefix(inp.prefix, prefix_budget, count_tokens, anchor, minimum=0.0)
        if prefix is not None:
            suffix = values["suffix"] = await _typing_on_suffix(inp.suffix, suffix, start, prefix, template, cache, count_tokens)
            uncached = await _uncached_tokens(prompt_with(prefix), cache.text, count_tokens)
            prefix = prefix if uncached <= cache.warm_tokens else None
        if prefix is None:
            suffix = values["suffix"] = full_suffix
            # What must be read besides the prefix: the suffix after it (PSM), or a suffix that
            # changed (SPM); a suffix the cache holds costs nothing.
            rest = await _uncached_tokens(prompt_with(""), cache.text, count_tokens)
            near = max(MIN_WARM_PREFIX_TOKENS, cache.warm_tokens - rest)
            prefix = await fit_tail(inp.prefix, min(near, prefix_budget), count_tokens)
            # A new place's near prefix is read anyway: its suffix stays whole (cut only when the
            # near prefix happens to be cached, e.g. read ahead).
            suffix = values["suffix"] = await _typing_on_suffix(inp.suffix, suffix, start, prefix, template, cache, count_tokens)
            anchored = False
        else:
            anchored = True
        if suffix is not full_suffix:
            suffix_budget = int(cache.warm_tokens * TYPING_SUFFIX_SHARE)
            suffix_tokens = await count_tokens(suffix)
    else:
        prefix = await _anchored_prefix(inp.prefix, prefix_budget, count_tokens, anchor)
        anchored = prefix is not None
        if prefix is None:
            share = REFIT_SHARE if anchor is not None else 1.0
            prefix = await fit_tail(inp.prefix, int(prefix_budget * share), count_tokens)
    text = prompt_with(prefix)
    new_anchor = PrefixAnchor(prefix[:ANCHOR_HEAD_CHARS]) if len(prefix) < len(inp.prefix) else None
    return FimPrompt(
        text=text, prefix_chars=len(prefix), suffix_chars=len(suffix), snippets=len(context.kept),
        anchor=new_anchor, anchored=anchored, context=context, warm=warm,
        prefix_end=len(start) + len(prefix) if text.startswith(start + prefix) else 0,
        allotted=(("context", context_budget), ("prefix", prefix_budget), ("suffix", suffix_budget)),
        used=(("context", context.tokens), ("prefix", await count_tokens(prefix)), ("suffix", suffix_tokens)),
    )


async def _typing_on_suffix(
    text: str, suffix: str, start: str, near_prefix: str, template: FimTemplate, cache: CacheView,
    count_tokens: CountTokens,
) -> str:
    """`suffix`, or when the user types on (most of the near prefix, after the block, is in the
    engine's cache) in prefix-suffix-middle order, `text` cut to TYPING_SUFFIX_SHARE of the warm read."""
    cached = shared_start(start + near_prefix, cache.text) - len(start)
    if not template.suffix_after_prefix or 2 * cached < len(near_prefix):
        return suffix
    short = await fit_suffix(text, int(cache.warm_tokens * TYPING_SUFFIX_SHARE), count_tokens)
    return short if len(short) < len(suffix) else suffix


async def _uncached_tokens(text: str, cached: str, count_tokens: CountTokens) -> int:
    """Tokens of `text` past the longest start it shares with `cached` (what the engine reads)."""
    return await count_tokens(text[shared_start(text, cached):])


def shared_start(a: str, b: str) -> int:
    """The length of the longest start `a` and `b` share (slices compare in C: a few µs for 10 kB)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while high - low > 1:  # a[:low] == b[:low] and a[:high] != b[:high]
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low


async def _anchored_prefix(
    prefix: str, budget: int, count_tokens: CountTokens, anchor: PrefixAnchor | None,
    minimum: float = ANCHOR_MIN_SHARE,
) -> str | None:
    """The prefix from the previous prompt's start, if it is still there, fits, and keeps enough."""
    if anchor is None or not anchor.head or budget <= 0:
        return None
    start = prefix.rfind(anchor.head)
    if start < 0 or (start > 0 and prefix[start - 1] != "\n"):
        return None
    candidate = prefix[start:]
    if len(candidate) > ANCHOR_MAX_SHARE * budget * _MAX_CHARS_PER_TOKEN:
        return None
    tokens = await count_tokens(candidate)
    return candidate if minimum * budget <= tokens <= ANCHOR_MAX_SHARE * budget else None


async def fit_tail(text: str, budget: int, count_tokens: CountTokens) -> str:
    """The end of `text` within `budget` tokens, starting at a line start where one is cut."""
    return await _fit(text, budget, count_tokens, keep_end=True)


async def fit_head(text: str, budget: int, count_tokens: CountTokens) -> str:
    """The start of `text` within `budget` tokens, ending at a line end where one is cut."""
    return await _fit(text, budget, count_tokens, keep_end=False)


# The suffix's first line with text may take up to this many times the suffix's share.
SUFFIX_FIRST_LINE_SHARES = 2
SUFFIX_FIRST_LINE_MAX_GAP = 8  # blank lines: further down, the answer has room of its own


async def fit_suffix(text: str, budget: int, count_tokens: CountTokens) -> str:
    """The suffix: its head within `budget`, and in any case the first line with text after the
    cursor (up to SUFFIX_FIRST_LINE_SHARES x `budget`, cut inside the line beyond). That line is
    where the answer must lead (`is_dataclass(x)` below the import being written); a cut at a line
    end would otherwise leave only the blank lines before a long line, and show none of it. The
    prefix gives up the tokens (its budget is what the other parts leave)."""
    head = await fit_head(text, budget, count_tokens)
    if budget <= 0 or head.strip():
        return head
    start = len(text) - len(text.lstrip())  # where the first line with text begins (or the end)
    if start == len(text) or text.count("\n", 0, start) > SUFFIX_FIRST_LINE_MAX_GAP:
        return head
    end = text.find("\n", start)
    wanted = text if end < 0 else text[: end + 1]
    return await _fit(wanted, SUFFIX_FIRST_LINE_SHARES * budget, count_tokens, keep_end=False, inside_line=True)


async def _fit(text: str, budget: int, count_tokens: CountTokens, keep_end: bool, inside_line: bool = False) -> str:
    if budget <= 0 or not text:
        return ""
    limit = budget * _MAX_CHARS_PER_TOKEN
    candidate = _cut(text, limit, keep_end, inside_line)
    # Estimate characters per token from the candidate, cut, re-count; converges in 1-2 rounds.
    for _ in range(4):
        tokens = await count_tokens(candidate)
        if tokens <= budget:
            return candidate
        keep = int(len(candidate) * budget / tokens * 0.95)
        candidate = _cut(candidate, keep, keep_end, inside_line)
    return candidate


def _from_a_line_with_text(piece: str) -> str:
    """`piece` from its first line that is not blank.

    Where a cut prefix starts decides whether llama.cpp can reuse a cached prompt cut elsewhere
    (n_cache_reuse): it shifts the cached tokens into place only when the new prompt's first token
    after their shared start is one of the cached ones. Tokenizers merge a run of line breaks (and
    whitespace-only lines) into one token, so a piece that starts with a blank line starts with a
    token the whole text never had ("\n" where it had "\n\n"), and a prompt cut there is read
    again from its start: a budget that shrank by one step cost a whole cold read (7.3 s against
    0.2 s, 0.5B, bench/pause_probe.py's prompt). A line with text starts a token in both.
    """
    start = 0
    while True:
        newline = piece.find("\n", start)
        if newline < 0 or piece[start:newline].strip():
            break
        start = newline + 1
    return piece[start:] if piece[start:].strip() else piece


def _cut(text: str, max_chars: int, keep_end: bool, inside_line: bool = False) -> str:
    """`text` within `max_chars`, at a line boundary where one is cut; `inside_line` (a head): inside
    its last line when a cut at a line end would keep nothing but blank lines."""
    if len(text) <= max_chars:
        return text
    if keep_end:
        piece = text[-max_chars:]
        newline = piece.find("\n")
        # Drop the partial first line unless that would leave nothing (one very long line).
        kept = piece[newline + 1 :] if 0 <= newline < len(piece) - 1 else piece
        return _from_a_line_with_text(kept)
    piece = text[:max_chars]
    newline = piece.rfind("\n")
    if newline <= 0 or (inside_line and not piece[:newline].strip()):
        return piece
    return piece[: newline + 1]
