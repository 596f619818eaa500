"""A prefix cut shorter (a smaller budget, a re-fitted anchor) is read from the engine's cache, on
the real embedded engine and model.

llama.cpp reuses a cached prompt whose start was cut off by shifting its tokens into place
(n_cache_reuse), but only when the new prompt's first token after the part they share is one of
the cached tokens. The tokenizer merges a run of line breaks into one token, so a prefix cut to
start at a blank line begins with a token the longer prompt never had, and the engine reads the
whole prompt again (7.3 s against 0.2 s on a 2-core machine): the cut starts at a line with text.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from nearcode.daemon.engines.base import GenerationRequest, GenerationStats
from nearcode.daemon.engines.llamacpp import LlamaCppConfig, LlamaCppEngine
from nearcode.daemon.model_store import FAST_PRESET, PRESETS, model_path
from nearcode.daemon.prompting.fim import fit_tail
from nearcode.daemon.prompting.templates import fim_templates, render

# A blank line after every line: wherever the budget cuts, the first whole line after the cut is
# blank (code spaced out like this is common enough between functions and paragraphs of a body).
SOURCE = "".join(
    f"def step_{i}(state, value):\n\n    total = state.get('total', 0) + value * {i}\n\n    return {{**state, 'total': total}}\n\n\n"
    for i in range(10)
) + "def run(values):\n\n    state = {}\n\n    for value in values:\n        "


async def _read(engine: LlamaCppEngine, prefix: str) -> GenerationStats:
    template = fim_templates()["qwen2.5-coder"]
    prompt = render(template.template, {"context": "", "prefix": prefix, "suffix": "\n    return state\n", "language": "python"})
    stats = GenerationStats()
    async for chunk in engine.generate(GenerationRequest(prompt=prompt, max_tokens=1, affinity="doc")):
        stats = replace(chunk.stats) if chunk.stats is not None else stats
    return stats


@pytest.mark.real
async def test_a_prefix_cut_shorter_is_read_from_the_cache() -> None:
    engine = LlamaCppEngine(LlamaCppConfig(model_path=model_path(PRESETS[FAST_PRESET]), parallel_slots=1,
                                           context_per_slot=2048))  # fmt: skip
    await engine.start()
    try:
        # The file whole, then cut to a smaller budget (the reading speed was learned, another
        # editor came): the second prompt's text is the end of the first one's.
        shorter = await fit_tail(SOURCE, await engine.count_tokens(SOURCE) - 60, engine.count_tokens)
        assert shorter.split("\n", 1)[0].strip() and SOURCE.endswith(shorter), "the cut starts at a line with text"
        first = await _read(engine, SOURCE)
        assert first.cached_tokens <= 1 and first.prompt_tokens > 300, first
        second = await _read(engine, shorter)
        # Everything but the template's first token is found in the cache (shifted into place).
        assert second.cached_tokens >= second.prompt_tokens - 8, second
    finally:
        await engine.close()
