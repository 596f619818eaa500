"""Prompt templates from prompts/ and token budgets, with the real model's tokenizer where it counts."""

from __future__ import annotations

from pathlib import Path

from daemon.prompting.fim import (
    FimInput,
    PromptBudget,
    Snippet,
    build_fim_prompt,
    fit_head,
    fit_tail,
)
from daemon.prompting.templates import detect_family, fim_templates, prompts_dir, render


async def count_by_words(text: str) -> int:
    return len(text.split())


def test_templates_load_from_checkout() -> None:
    assert prompts_dir() == Path(__file__).resolve().parents[1] / "prompts"
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
