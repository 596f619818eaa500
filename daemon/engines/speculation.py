"""Speculative decoding in the embedded engine: which kind runs, with which parameters, and why.

llama.cpp checks several tokens per step instead of one: something cheap guesses ("drafts") the
next tokens, the model reads them in one batch (as it reads a prompt, which on a CPU is several
times faster per token than generating), keeps the longest run it agrees with and goes on from
there. The text is the model's own; only the speed changes (near-ties aside: batch-shaped numerics
can pick the other of two almost equally likely tokens, as a cached prompt already can).

Kinds (`nearcode daemon --speculation`, or NEARCODE_SPECULATION):
* `ngram`: llama.cpp's NGRAM_MOD. A hash of each n-token window of the prompts and answers seen so
  far maps to the token that followed it; when the last n tokens of a generation hash to a known
  window, the tokens that followed are the draft. It costs no model, ~16 MB, nothing measurable
  when it has no draft. Code repeats itself (names, argument lists, a completion typed through),
  and the pool is shared across requests and slots, so a request whose answer was drafted before
  gets it back.
* `draft`: DRAFT_SIMPLE, a small model of the same tokenizer (the default 0.5B) drafting for a
  bigger one (the quality preset's 1.5B); NGRAM_MOD goes first where it has a draft (llama.cpp
  gives a draftless kind precedence when both are on).
* `none`: plain decoding.
* `auto` (the default): `ngram`. It would be `draft` for the quality preset's model when the 0.5B
  is installed, but on this CPU the drafter made the 1.5B slower, not faster (DRAFT_BY_DEFAULT).

This module imports the standard library only: bench/speculation.py measures these very settings
from a clone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPECULATION_ENV = "NEARCODE_SPECULATION"  # the default of `nearcode daemon --speculation`
SPECULATION_MODES = ("auto", "none", "ngram", "draft")

# The presets' model files (daemon/model_store.py PRESETS): the 1.5B and its drafter, which share
# Qwen2.5's tokenizer (a drafter must: llama.cpp compares the drafted token ids directly).
QUALITY_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DRAFT_MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


# Whether `auto` drafts with the 0.5B for the quality preset's 1.5B. Off: measured on 2 cores
# (docs/models.md, "Speculative decoding"), the drafter costs more than it saves. It reads every
# prompt a second time (cold requests, whose time is mostly prompt reading on a CPU, took 1.9x as
# long), and each drafted token is a 0.5B step on the same two cores the 1.5B needs: decode speed
# fell to 0.3x although 69-78% of the drafts were accepted. A GPU, or more cores, may turn this
# round: bench/speculation.py --model <1.5B> --modes none,ngram,draft measures it.
DRAFT_BY_DEFAULT = False


class SpeculationError(ValueError):
    """A speculation kind that cannot run with this model; the message says how to fix it."""


@dataclass(frozen=True)
class NgramParams:
    """NGRAM_MOD's settings, from docs/models.md's measurements (0.5B Q4_K_M, 2 cores, 20 FIM
    prompts, 64 greedy tokens): 16/8/64 gave 1.40x decode speed on a cached prompt, acceptance
    0.76-0.88 and the best end-to-end p50 (0.96 s against 1.60 s plain). llama.cpp's defaults
    (24/48/64) decode as fast (1.42x) but want a 48-token draft before drafting at all, which a
    one-line completion (10-30 tokens) rarely has: 0.05 s slower p50. 8/4/16 drafts more and misses
    more (acceptance 0.56-0.81, 1.31x). The other n-gram kinds gained nothing here (NGRAM_SIMPLE
    1.05x, NGRAM_MAP_K drafted nothing, NGRAM_CACHE 0.8x)."""

    match_tokens: int = 16  # n_match: a window this long must match before it drafts
    min_draft: int = 8  # n_min: shorter drafts are not worth a verification batch
    max_draft: int = 64  # n_max: the longest draft (draft.n_max does not cap the n-gram kinds)


@dataclass(frozen=True)
class DraftParams:
    """DRAFT_SIMPLE's settings for the 0.5B drafting for the 1.5B: each drafted token costs a 0.5B
    step (~1/3 of a 1.5B step on a CPU), so drafts stay short and stop where the drafter itself is
    unsure. Measured once (docs/models.md: 0.3x plain decoding speed on 2 cores, prompt cached or
    not) and not tuned further."""

    max_draft: int = 6  # draft.n_max
    min_draft: int = 0  # draft.n_min
    min_probability: float = 0.75  # draft.p_min: stop drafting below this confidence


@dataclass(frozen=True)
class SpeculationConfig:
    kind: str = "ngram"  # resolved: none, ngram or draft
    draft_model: Path | None = None  # the drafter (kind "draft")
    ngram: NgramParams = field(default_factory=NgramParams)
    draft: DraftParams = field(default_factory=DraftParams)

    def describe(self) -> str:
        """For logs and status: `ngram`, `draft (qwen2.5-coder-0.5b-...)`, `none`."""
        if self.kind == "draft" and self.draft_model is not None:
            return f"draft ({self.draft_model.stem})"
        return self.kind


def requested_mode(value: str | None = None) -> str:
    """The mode asked for: `value`, else $NEARCODE_SPECULATION, else auto; ValueError if unknown."""
    mode = (value or os.environ.get(SPECULATION_ENV) or "auto").strip().lower()
    if mode not in SPECULATION_MODES:
        raise ValueError(f"speculation {mode!r} is not one of {', '.join(SPECULATION_MODES)}")
    return mode


def resolve_speculation(
    requested: str, model: Path, draft_model: Path | None = None, draft_by_default: bool = DRAFT_BY_DEFAULT
) -> SpeculationConfig:
    """What runs for `model` when `requested` is asked; `draft_model` is the drafter's file
    (default: the default preset's 0.5B beside `model`). SpeculationError when `draft` cannot run."""
    mode = requested_mode(requested)
    drafter = draft_model or model.with_name(DRAFT_MODEL_FILE)
    if mode == "auto":
        drafts = draft_by_default and model.name == QUALITY_MODEL_FILE and drafter.is_file()
        mode = "draft" if drafts else "ngram"
    if mode != "draft":
        return SpeculationConfig(kind=mode)
    if not drafter.is_file():
        raise SpeculationError(
            f"--speculation draft needs the draft model {drafter}, which is not installed. Fix: "
            "`nearcode model install --preset fast`, or --speculation ngram"
        )
    if _same_file(drafter, model):
        raise SpeculationError(
            f"{model.name} cannot draft for itself: --speculation draft is for a bigger model "
            "(--model quality). Fix: --speculation ngram"
        )
    return SpeculationConfig(kind="draft", draft_model=drafter)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or a.samefile(b)
    except OSError:
        return False


def apply_speculation(params: Any, config: SpeculationConfig, types: Any, threads: int) -> None:
    """Set `params.speculative` (an xllamacpp CommonParams') for `config`; `types` is
    xllamacpp.common_speculative_type, `threads` the engine's CPU threads (the drafter's too)."""
    spec = params.speculative
    if config.kind == "none":
        spec.types = [types.COMMON_SPECULATIVE_TYPE_NONE]
        return
    ngram = config.ngram
    spec.ngram_mod.n_match = ngram.match_tokens
    spec.ngram_mod.n_min = ngram.min_draft
    spec.ngram_mod.n_max = ngram.max_draft
    kinds = [types.COMMON_SPECULATIVE_TYPE_NGRAM_MOD]
    if config.kind == "draft":
        if config.draft_model is None:
            raise SpeculationError("draft speculation without a draft model")
        draft = spec.draft
        draft.mparams.path = str(config.draft_model)
        draft.n_max = config.draft.max_draft
        draft.n_min = config.draft.min_draft
        draft.p_min = config.draft.min_probability
        # Left at -1 the drafter gets llama.cpp's default thread count, not the engine's: on 2
        # cores that oversubscribes them and every drafted token waits for a descheduled thread.
        draft.cpuparams.n_threads = threads
        draft.cpuparams_batch.n_threads = threads
        kinds.append(types.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE)
    spec.types = kinds
