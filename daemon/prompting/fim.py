"""Fill-in-the-middle prompts that fit a token budget.

Prompt parts share the budget by explicit percentages (as Copilot's prompt assembly does): the
prefix matters most, the suffix is re-read on every request so it stays short, and context
snippets take what is left. A share a part does not use goes to the prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nearcode.daemon.prompting.templates import FimTemplate, render

CountTokens = Callable[[str], Awaitable[int]]

# Code averages 3-4 characters a token; 8 bounds how much text is tokenized to fill a budget.
_MAX_CHARS_PER_TOKEN = 8


@dataclass(frozen=True)
class PromptBudget:
    total_tokens: int = 768
    prefix_share: float = 0.75
    suffix_share: float = 0.10
    context_share: float = 0.15
    # The suffix follows the cursor in the prompt, so the engine re-reads it on every keystroke; when
    # completing one line it is cut further, to the lines right after the cursor.
    single_line_suffix_tokens: int = 40

    def split(self, has_context: bool, single_line: bool = False) -> tuple[int, int, int]:
        """Token budgets for (prefix, suffix, context)."""
        suffix = int(self.total_tokens * self.suffix_share)
        if single_line:
            suffix = min(suffix, self.single_line_suffix_tokens)
        context = int(self.total_tokens * self.context_share) if has_context else 0
        return self.total_tokens - suffix - context, suffix, context


@dataclass(frozen=True)
class Snippet:
    path: str
    text: str


@dataclass(frozen=True)
class FimInput:
    prefix: str
    suffix: str
    path: str = ""
    language: str = ""
    context: tuple[Snippet, ...] = ()
    repo: str = ""


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


async def build_fim_prompt(
    inp: FimInput,
    template: FimTemplate,
    budget: PromptBudget,
    count_tokens: CountTokens,
    single_line: bool = False,
    anchor: PrefixAnchor | None = None,
) -> FimPrompt:
    prefix_budget, suffix_budget, context_budget = budget.split(bool(inp.context), single_line)
    if not template.uses_suffix:
        # A prefix-only prompt (model without FIM tokens): the suffix's share goes to the prefix.
        prefix_budget, suffix_budget = prefix_budget + suffix_budget, 0
    prefix = await _anchored_prefix(inp.prefix, prefix_budget, count_tokens, anchor)
    anchored = prefix is not None
    if prefix is None:
        share = REFIT_SHARE if anchor is not None else 1.0
        prefix = await fit_tail(inp.prefix, int(prefix_budget * share), count_tokens)
    suffix = await fit_head(inp.suffix, suffix_budget, count_tokens)
    context, used = await _render_context(inp, template, context_budget, count_tokens)
    text = render(
        template.template,
        {"context": context, "prefix": prefix, "suffix": suffix, "language": inp.language},
    )
    new_anchor = PrefixAnchor(prefix[:ANCHOR_HEAD_CHARS]) if len(prefix) < len(inp.prefix) else None
    return FimPrompt(text=text, prefix_chars=len(prefix), suffix_chars=len(suffix), snippets=used,
                     anchor=new_anchor, anchored=anchored)


async def _anchored_prefix(
    prefix: str, budget: int, count_tokens: CountTokens, anchor: PrefixAnchor | None
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
    return candidate if ANCHOR_MIN_SHARE * budget <= tokens <= ANCHOR_MAX_SHARE * budget else None


async def fit_tail(text: str, budget: int, count_tokens: CountTokens) -> str:
    """The end of `text` within `budget` tokens, starting at a line start where one is cut."""
    return await _fit(text, budget, count_tokens, keep_end=True)


async def fit_head(text: str, budget: int, count_tokens: CountTokens) -> str:
    """The start of `text` within `budget` tokens, ending at a line end where one is cut."""
    return await _fit(text, budget, count_tokens, keep_end=False)


async def _fit(text: str, budget: int, count_tokens: CountTokens, keep_end: bool) -> str:
    if budget <= 0 or not text:
        return ""
    limit = budget * _MAX_CHARS_PER_TOKEN
    candidate = _cut(text, limit, keep_end)
    # Estimate characters per token from the candidate, cut, re-count; converges in 1-2 rounds.
    for _ in range(4):
        tokens = await count_tokens(candidate)
        if tokens <= budget:
            return candidate
        keep = int(len(candidate) * budget / tokens * 0.95)
        candidate = _cut(candidate, keep, keep_end)
    return candidate


def _cut(text: str, max_chars: int, keep_end: bool) -> str:
    if len(text) <= max_chars:
        return text
    if keep_end:
        piece = text[-max_chars:]
        newline = piece.find("\n")
        # Drop the partial first line unless that would leave nothing (one very long line).
        return piece[newline + 1 :] if 0 <= newline < len(piece) - 1 else piece
    piece = text[:max_chars]
    newline = piece.rfind("\n")
    return piece[: newline + 1] if newline > 0 else piece


async def _render_context(
    inp: FimInput, template: FimTemplate, budget: int, count_tokens: CountTokens
) -> tuple[str, int]:
    if not inp.context or budget <= 0 or not template.context_snippet:
        return "", 0
    # {comment}: families without repository tokens write file paths as line comments.
    values = {"repo": inp.repo or "workspace", "path": inp.path, "comment": line_comment(inp.language)}
    header = render(template.context_header, values)
    footer = render(template.context_current_file, values)
    remaining = budget - await count_tokens(header + footer)
    parts, used = [], 0
    for snippet in inp.context:
        if remaining <= 0:
            break
        block = render(
            template.context_snippet,
            {"snippet_path": snippet.path, "snippet_text": snippet.text, "comment": values["comment"]},
        )
        cost = await count_tokens(block)
        if cost > remaining:
            break
        parts.append(block)
        remaining -= cost
        used += 1
    if not parts:
        return "", 0
    return header + "".join(parts) + footer, used


_HASH_COMMENT = {"python", "shellscript", "sh", "bash", "ruby", "perl", "r", "yaml", "toml", "dockerfile", "makefile", "elixir", "julia", "powershell", "coffeescript", "nim"}
_DASH_COMMENT = {"lua", "sql", "haskell", "elm", "ada", "vhdl"}


def line_comment(language: str) -> str:
    """The line-comment marker of an LSP language id ("//" when unknown: the most common one)."""
    lang = language.lower()
    if lang in _HASH_COMMENT:
        return "#"
    if lang in _DASH_COMMENT:
        return "--"
    if lang in ("clojure", "lisp", "scheme", "emacs-lisp"):
        return ";"
    return "//"
