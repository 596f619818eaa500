"""The prompt budget from the engine's measured reading speed.

A cold prompt is read at the engine's speed (0.5B on 2 cores ~150 tokens/s, 1.5B ~65); a budget
fixed for the fastest model would make a slower one, or four editors at once, miss every deadline.
Less context under load costs some quality; a late answer is worth nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from nearcode.daemon.engines.base import GenerationStats
from nearcode.daemon.prompting.fim import PromptBudget

# Longest cold prompt read an interactive request is budgeted for: ~900 tokens on 2 idle cores.
# Only the first completion at a new place pays it (the context block is read ahead on open and
# then cached); llama.vscode's requests take ~5.5 s cold here.
COLD_READ_TARGET_S = 6.0
# What a request whose context block is already in the engine's cache may read: the first
# completion at a new place in a file opened a moment ago answers in about a second.
WARM_READ_TARGET_S = 0.8
# What a read-ahead's context block may take to read (background work, before it is needed): a
# cold request's block is its share of the cold budget, too small on a slow machine (the 1.5B on 2
# slow cores: ~100 tokens) to hold even a cut of the file's head, so a block was never read ahead.
READ_AHEAD_BLOCK_S = 4.0
MIN_PROMPT_TOKENS = 192
BUDGET_STEP_TOKENS = 64
BUDGET_HYSTERESIS = 0.15  # the measured reading speed must move this much to move the budget
# A read shorter than this is not a sample on its own (fixed costs weigh on it); shorter reads are
# pooled until together they are this long. Counting none of them froze a first estimate taken
# while another read shared the cores (30.8 tokens/s against 45 alone): the budget it set kept every
# later read short (read-aheads ~60 tokens, completions ~85), so none could correct it.
MIN_SAMPLE_TOKENS = 128
MIN_POOLED_READ_TOKENS = 32  # a keystroke's few tokens are nearly all fixed cost: never counted
# Until a speed is known every prompt is budgeted at the configured maximum (1,024 tokens: 30 s of
# the 1.5B on 2 slow cores, a missed deadline), so a shorter read is taken as the first estimate:
# fixed costs make it a little slow, which errs toward a smaller prompt, and longer reads correct
# it. Still above the start-up canary's ~35 tokens, whose read also pages the weights in.
MIN_FIRST_SAMPLE_TOKENS = 64
# Answers while several editors have interactive work on an engine that shares the cores: their
# requests run one after another (daemon/scheduler.py), so each token one editor's answer takes is
# a wait for the others. The cap is shared among them, never below a useful piece of a line (a line
# of code is 10-25 tokens for Qwen2.5-Coder); the rest comes from the next request, as the user types.
SHARED_ANSWER_TOKENS = 48
MIN_SHARED_ANSWER_TOKENS = 16


class ReadBudget:
    """`budget_for` a request, from the engine's reading speed as measured on finished requests
    (`learn`), or as assumed (`assume_speed`)."""

    def __init__(self, budget: PromptBudget, interactive_clients: Callable[[], set[str]]) -> None:
        self.budget = budget  # the configured budget: the most any request gets
        self._interactive_clients = interactive_clients  # editors with interactive work running
        self.tokens_per_s: float | None = None  # measured cold-read speed of the engine
        self._affordable_tokens: float | None = None  # cold-read budget, steadied (see budget_for)
        self._speed_fixed = False
        self._pooled_tokens = 0  # short reads not yet counted (see MIN_SAMPLE_TOKENS)
        self._pooled_ms = 0.0

    def warm_tokens(self) -> int:
        """What a request whose context block is cached may read (0 until the speed is known)."""
        if self.tokens_per_s is None:
            return 0
        return max(MIN_PROMPT_TOKENS // 2, int(self.tokens_per_s * WARM_READ_TARGET_S))

    def budget_for(self, client: str, priority: str = "interactive") -> PromptBudget:
        """At most what the engine reads within COLD_READ_TARGET_S, shared among the editors with
        interactive requests running at once."""
        if self.tokens_per_s is None or priority == "background":
            return self.budget
        # Editors with interactive work, not requests: a keystroke's superseded request is still
        # stopping when the next one arrives, and must not halve the next one's prompt.
        sharing = len(self._interactive_clients() | {client})
        # Steadied and rounded: the measured speed wobbles by a few percent from request to request,
        # and a budget that follows it cuts every prompt a little differently, so the same code
        # gets different answers run after run and cached prompts lose their shape.
        self._affordable_tokens = level = self._steadied_level(self.tokens_per_s)
        alone = self._alone_tokens(level)
        affordable = round(level / sharing / BUDGET_STEP_TOKENS) * BUDGET_STEP_TOKENS
        total = max(MIN_PROMPT_TOKENS, min(self.budget.total_tokens, affordable))
        # The context block's share follows the unshared budget: it is read once and then cached,
        # and a block that shrank whenever another editor typed would be read again each time.
        return dataclasses.replace(self.budget, total_tokens=total, stable_total_tokens=alone)

    def _steadied_level(self, tokens_per_s: float) -> float:
        """What a cold read may hold: the steadied level, moved only when the measured speed has."""
        measured = tokens_per_s * COLD_READ_TARGET_S
        level = self._affordable_tokens
        return measured if level is None or abs(measured - level) > BUDGET_HYSTERESIS * level else level

    def cold_prompt_tokens(self) -> int:
        """What one editor's cold prompt may hold now (`/api/model`), the configured total until a
        speed is known. Only reads: a status poll must not move the budget the next request gets."""
        if self.tokens_per_s is None:
            return self.budget.total_tokens
        return self._alone_tokens(self._steadied_level(self.tokens_per_s))

    def _alone_tokens(self, level: float) -> int:
        """An editor's cold budget when it is alone: the level in steps, within floor and total."""
        return max(MIN_PROMPT_TOKENS, min(self.budget.total_tokens, round(level / BUDGET_STEP_TOKENS) * BUDGET_STEP_TOKENS))

    def read_ahead_budget(self, client: str) -> PromptBudget:
        """A read-ahead's budget: a cold request's, with a context block as large as reads in
        READ_AHEAD_BLOCK_S (never less than a cold request's, never over the configured total).
        Requests keep that block while it is cached (daemon/context/document_prompts.py)."""
        budget = self.budget_for(client)
        level = self._affordable_tokens  # steadied, as budget_for's: the block keeps its size
        if level is None or budget.context_share <= 0:
            return budget
        own = budget.stable_total_tokens or budget.total_tokens
        speed = level / COLD_READ_TARGET_S
        larger = round(speed * READ_AHEAD_BLOCK_S / budget.context_share / BUDGET_STEP_TOKENS)
        stable = min(self.budget.total_tokens, max(own, larger * BUDGET_STEP_TOKENS))
        return dataclasses.replace(budget, stable_total_tokens=stable)

    def answer_tokens(self, client: str, asked: int, priority: str = "interactive") -> int:
        """The token cap of an interactive answer: what was asked while the editor is alone, a share
        of SHARED_ANSWER_TOKENS while other editors have interactive work too."""
        if priority != "interactive":
            return asked
        sharing = len(self._interactive_clients() | {client})
        if sharing < 2:
            return asked
        return min(asked, max(MIN_SHARED_ANSWER_TOKENS, SHARED_ANSWER_TOKENS // sharing))

    def assume_speed(self, tokens_per_s: float) -> None:
        """Budget as if the engine read this fast, whatever it measures (benchmarks on a shared
        machine: prompts then have the shape they have on an idle one, only slower)."""
        self.tokens_per_s = tokens_per_s
        self._speed_fixed = True

    def learn(self, stats: GenerationStats | None) -> None:
        """A request's reading time, into the measured speed (a moving average). A request that
        ended while still reading (its deadline) counts what it had read by then: such a request
        once taught nothing (or, taken as the whole prompt, a speed too fast), so a model that reads
        slower than the first, unmeasured budget assumes missed deadline after deadline."""
        if self._speed_fixed or stats is None:
            return
        read = stats.prompt_tokens - stats.cached_tokens if stats.read_so_far is None else stats.read_so_far
        if read < MIN_POOLED_READ_TOKENS or stats.prompt_ms <= 0:
            return
        least = MIN_SAMPLE_TOKENS if self.tokens_per_s is not None else MIN_FIRST_SAMPLE_TOKENS
        read_ms = stats.prompt_ms
        if read < least:
            self._pooled_tokens += read
            self._pooled_ms += read_ms
            if self._pooled_tokens < least:
                return
            read, read_ms = self._pooled_tokens, self._pooled_ms
            self._pooled_tokens, self._pooled_ms = 0, 0.0
        sample = read / (read_ms / 1000)
        old = self.tokens_per_s
        self.tokens_per_s = sample if old is None else 0.7 * old + 0.3 * sample
