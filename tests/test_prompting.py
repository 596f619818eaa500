"""Prompt templates from prompts/ and token budgets, with the real model's tokenizer where it counts."""

from __future__ import annotations

from pathlib import Path

from nearcode.daemon.prompting.fim import (
    CacheView,
    FimInput,
    PromptBudget,
    Snippet,
    build_fim_prompt,
    fit_head,
    fit_suffix,
    fit_tail,
)
from nearcode.daemon.prompting.templates import detect_family, fim_templates, prompts_dir, render


async def count_by_words(text: str) -> int:
    return len(text.split())


def test_templates_load_from_checkout() -> None:
    assert prompts_dir().resolve() == Path(__file__).resolve().parents[1] / "prompts"
    qwen = fim_templates()["qwen2.5-coder"]
    assert "<|fim_middle|>" in qwen.template and "<|endoftext|>" in qwen.stop
    assert qwen.chat is not None and "<|im_start|>" in qwen.chat.generation_prompt


def test_family_detection_and_override() -> None:
    assert detect_family(["qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"]).family == "qwen2.5-coder"
    assert detect_family(["something.gguf"], "qwen2.5-coder").family == "qwen2.5-coder"


def test_render_leaves_code_braces_alone() -> None:
    out = render("<a>{prefix}<b>{suffix}", {"prefix": "x = {prefix} {}", "suffix": "}{"})
    assert out == "<a>x = {prefix} {}<b>}{"


async def test_fit_tail_keeps_whole_lines_at_the_end() -> None:
    text = "".join(f"line{i} a b c\n" for i in range(100)) + "    cursor here"
    fitted = await fit_tail(text, 40, count_by_words)
    assert fitted.endswith("    cursor here")
    assert fitted.startswith("line") and await count_by_words(fitted) <= 40


async def test_fit_head_keeps_whole_lines_at_the_start() -> None:
    text = ")\n" + "".join(f"next{i} a b\n" for i in range(100))
    fitted = await fit_head(text, 20, count_by_words)
    assert fitted.startswith(")\n") and fitted.endswith("\n") and await count_by_words(fitted) <= 20


async def test_the_suffix_shows_the_first_line_with_text_even_past_its_share() -> None:
    usage = "    if is_dataclass(value) and " + "word " * 12 + "x:\n"
    text = "\n\n" + usage + "        return asdict(value)\n"
    # A cut at a line end within 10 tokens would keep only the two blank lines.
    assert await fit_head(text, 10, count_by_words) == "\n\n"
    assert await fit_suffix(text, 10, count_by_words) == "\n\n" + usage
    cut = await fit_suffix("\n" + "word " * 100 + "\n", 10, count_by_words)  # past twice the share: cut inside it
    assert cut.startswith("\nword word") and await count_by_words(cut) <= 20
    assert await fit_suffix("a b\nc d\n", 10, count_by_words) == "a b\nc d\n"  # fits: as fit_head


async def test_budget_shares_and_context() -> None:
    budget = PromptBudget(total_tokens=100, prefix_share=0.6, suffix_share=0.2, context_share=0.2)
    assert budget.split(has_context=False) == (80, 20, 0)
    assert budget.split(has_context=True) == (60, 20, 20)
    template = fim_templates()["qwen2.5-coder"]
    prompt = await build_fim_prompt(
        FimInput(prefix="def f():\n    ", suffix="\nprint(f())\n", path="a.py",
                 context=(Snippet("b.py", "def g(): pass"), Snippet("c.py", "word " * 500))),
        template, budget, count_by_words,
    )
    assert prompt.text.startswith("<|repo_name|>") and "<|file_sep|>b.py\ndef g(): pass\n" in prompt.text
    assert "c.py" not in prompt.text and prompt.snippets == 1  # over budget: left out whole
    assert prompt.text.endswith("<|fim_prefix|>def f():\n    <|fim_suffix|>\nprint(f())\n<|fim_middle|>")


async def test_typing_keeps_the_prompt_start_where_the_cache_is() -> None:
    """Keystroke after keystroke, an anchored prompt starts at the same line (the engine re-reads
    only the end); fitted afresh each time, the start moves and the whole prompt is read again."""
    template = fim_templates()["qwen2.5-coder"]
    budget = PromptBudget(total_tokens=200)
    source = "".join(f"value_{i} = compute(alpha, beta, {i})\n" for i in range(300))
    typed = "result = combine(first_value, second_value, third_value)"
    anchor = None
    anchored_starts, fresh_starts = set(), set()

    async def count_like_bpe(text: str) -> int:  # about 4 characters a token, as code has
        return (len(text) + 3) // 4

    for n in range(1, len(typed) + 1):
        inp = FimInput(prefix=source + typed[:n], suffix="\n", path="a.py")
        prompt = await build_fim_prompt(inp, template, budget, count_like_bpe, anchor=anchor)
        anchor = prompt.anchor
        anchored_starts.add(prompt.text[:60])
        fresh = await build_fim_prompt(inp, template, budget, count_like_bpe)
        fresh_starts.add(fresh.text[:60])
        assert await count_like_bpe(prompt.text) <= budget.total_tokens * 1.25 + 2
        assert prompt.text.endswith(typed[:n] + "<|fim_suffix|>\n<|fim_middle|>")
    assert len(anchored_starts) == 1 and prompt.anchored
    assert len(fresh_starts) > 1  # what this prevents: the start moved while typing one line


async def test_a_suffix_first_template_marks_where_its_prefix_ends_and_finds_its_block_cached() -> None:
    """Suffix-first (SPM) families (Codestral) put the suffix before the prefix. What is read ahead
    is the prompt up to the prefix's end, and a completion whose block the engine holds is budgeted
    warm. Both once looked for the text before {prefix} with {suffix} left unfilled: never found,
    so such a family read nothing ahead (prefix_end 0) and was never warm."""
    template = fim_templates()["codestral"]
    inp = FimInput(prefix="def f():\n    return ", suffix="\nprint(f())\n", path="a.py",
                   context=(Snippet("b.py", "def g(): pass"),))
    budget = PromptBudget(total_tokens=200)
    cold = await build_fim_prompt(inp, template, budget, count_by_words)
    assert cold.prefix_end > 0 and cold.text[: cold.prefix_end].endswith("def f():\n    return ")
    warm = await build_fim_prompt(inp, template, budget, count_by_words,
                                  cache=CacheView(text=cold.text[: cold.prefix_end], warm_tokens=40))
    assert warm.warm and warm.text == cold.text


async def test_anchor_is_dropped_when_the_text_above_changes_or_overflows() -> None:
    template = fim_templates()["qwen2.5-coder"]
    budget = PromptBudget(total_tokens=100)
    source = "".join(f"line {i} a b\n" for i in range(200))
    first = await build_fim_prompt(FimInput(prefix=source, suffix=""), template, budget, count_by_words)
    assert first.anchor is not None and not first.anchored
    edited = source.replace(first.anchor.head, "changed above\n" + first.anchor.head[3:], 1)
    moved = await build_fim_prompt(FimInput(prefix=edited, suffix=""), template, budget, count_by_words,
                                   anchor=first.anchor)
    assert not moved.anchored
    grown = source + "".join(f"more {i} x y\n" for i in range(40))  # far past the budget
    refit = await build_fim_prompt(FimInput(prefix=grown, suffix=""), template, budget, count_by_words,
                                   anchor=first.anchor)
    assert not refit.anchored and "more 39 x y" in refit.text
    # Refitted inside a session, it leaves room to type on before the start has to move again.
    prefix_budget = budget.split(has_context=False)[0]
    assert await count_by_words(refit.text) <= int(prefix_budget * 0.85) + 10


async def test_token_counts_are_remembered_by_digest_not_by_text() -> None:
    """The count cache holds thousands of entries over a day: a prompt part's text must not be
    kept as its key (the soak's slow memory creep), and a repeated part is not counted again."""
    from nearcode.daemon.context.document_prompts import CachedCounter

    seen: list[str] = []

    async def count(text: str) -> int:
        seen.append(text)
        return len(text) // 4

    counter = CachedCounter(count, kept=2)
    part = "def parse(source: str) -> Tree:\n    ...\n" * 200  # ~8 kB, as a context part can be
    assert await counter(part) == await counter(part) == len(part) // 4
    assert seen == [part]  # counted once
    keys = list(counter._known._items)
    assert len(counter) == 1 and all(len(key) <= 64 for key in keys)
    await counter("a")
    await counter("b")
    assert len(counter) == 2  # bounded


async def test_typing_on_reads_a_short_suffix_and_a_new_place_its_share() -> None:
    """The suffix follows the cursor in prefix-suffix-middle order, so every keystroke's request
    reads it again: typing on (the block and most of the near prefix cached) it is cut to a share of
    what a warm request may read; cold, or at a new place (only the block cached: the near prefix
    is read anyway), it keeps its share of the budget. In suffix-first order a suffix the cache
    holds costs nothing, and it is not cut."""
    suffix = "\n" + "".join(f"step_{i} = run({i})\n" for i in range(60))
    inp = FimInput(prefix="def f():\n    total = 0\n    ", suffix=suffix, path="a.py",
                   context=(Snippet("b.py", "def g(): pass"),))
    budget = PromptBudget(total_tokens=600)  # the suffix's share: 60 words

    async def suffix_words(template_name: str, cached: str) -> tuple[bool, int]:
        template = fim_templates()[template_name]
        cold = await build_fim_prompt(inp, template, budget, count_by_words)
        block_end = cold.text.index("def f():") if cached == "block" else cold.prefix_end
        cache = CacheView(text=cold.text[:block_end], warm_tokens=100) if cached else None
        prompt = await build_fim_prompt(inp, template, budget, count_by_words, cache=cache)
        return prompt.warm, dict(prompt.used)["suffix"]

    warm, cold_words = await suffix_words("qwen2.5-coder", "")
    assert not warm and 50 <= cold_words <= 60  # whole lines within the share
    assert await suffix_words("qwen2.5-coder", "block") == (True, cold_words)
    warm, words = await suffix_words("qwen2.5-coder", "prefix")
    assert warm and 20 <= words <= 30  # TYPING_SUFFIX_SHARE of the 100 a warm request may read
    assert await suffix_words("codestral", "prefix") == (True, cold_words)
