"""Load the model-family templates of prompts/ and render them without str.format pitfalls."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
DEFAULT_FAMILY = "qwen2.5-coder"
# How a completion prompt is built: "fim" with the family's FIM tokens; "prefix" continues the
# text before the cursor (no FIM tokens: the suffix is left out); "instruct" asks a chat model to
# fill a marked hole (the `[infill]` section of a family file).
FIM_MODES = ("fim", "prefix", "instruct")


@dataclass(frozen=True)
class ChatTemplate:
    system: str
    user: str
    assistant: str
    generation_prompt: str
    default_system: str
    stop: tuple[str, ...]
    # Families without a system role (Gemma, Mistral, Llama 2): the rendered system block is put
    # at the start of the first user message instead of a turn of its own.
    system_in_first_user: bool = False


@dataclass(frozen=True)
class FimTemplate:
    family: str
    description: str
    name_patterns: tuple[str, ...]
    special_tokens: tuple[str, ...]
    order: str
    template: str
    stop: tuple[str, ...]
    context_header: str
    context_snippet: str
    context_current_file: str
    chat: ChatTemplate | None = None
    mode: str = "fim"
    # The instruction-style infill prompt and its stops (families without FIM tokens).
    infill_template: str = ""
    infill_stop: tuple[str, ...] = ()

    @property
    def uses_suffix(self) -> bool:
        """False for prefix-only prompts: the text after the cursor is not part of them."""
        return "{suffix}" in self.template

    @property
    def suffix_after_prefix(self) -> bool:
        """Prefix-suffix-middle order: the suffix follows the cursor, so each keystroke reads it again."""
        return self.uses_suffix and "{prefix}" in self.template and self.template.index("{suffix}") > self.template.index("{prefix}")


@dataclass(frozen=True)
class FamilyChoice:
    template: FimTemplate
    reason: str  # why this family: for `nearcode doctor` and the daemon log


def prompts_dir() -> Path:
    """nearcode/prompts: a link to prompts/ in a checkout, the shipped copy in a wheel."""
    # Through the regular `nearcode` package: files() of the data folder itself is a namespace
    # package and gives a MultiplexedPath, whose str() is not a path.
    return Path(str(resources.files("nearcode") / "prompts"))


def _chat(data: dict[str, Any] | None) -> ChatTemplate | None:
    if not data:
        return None
    return ChatTemplate(
        system=data["system"],
        user=data["user"],
        assistant=data["assistant"],
        generation_prompt=data["generation_prompt"],
        default_system=data.get("default_system", ""),
        stop=tuple(data.get("stop", ())),
        system_in_first_user=bool(data.get("system_in_first_user", False)),
    )


def load_family(text: str) -> FimTemplate:
    data = tomllib.loads(text)
    fim, context, infill = data["fim"], data.get("context", {}), data.get("infill", {})
    mode = fim.get("mode", "fim")
    if mode not in FIM_MODES:
        raise ValueError(f"family {data['family']}: unknown [fim] mode {mode!r}")
    return FimTemplate(
        family=data["family"],
        description=data.get("description", ""),
        name_patterns=tuple(data.get("name_patterns", ())),
        special_tokens=tuple(data.get("special_tokens", ())),
        order=fim.get("order", "psm"),
        template=fim["template"],
        stop=tuple(fim.get("stop", ())),
        context_header=context.get("header", ""),
        context_snippet=context.get("snippet", ""),
        context_current_file=context.get("current_file", ""),
        chat=_chat(data.get("chat")),
        mode=mode,
        infill_template=infill.get("template", ""),
        infill_stop=tuple(infill.get("stop", ())),
    )


@cache
def fim_templates() -> dict[str, FimTemplate]:
    templates = {}
    for path in sorted((prompts_dir() / "families").glob("*.toml")):
        template = load_family(path.read_text(encoding="utf-8"))
        templates[template.family] = template
    return templates


def with_mode(template: FimTemplate, mode: str) -> FimTemplate:
    """The same family with its completion prompt switched to `mode` ("instruct": the [infill] one)."""
    if mode == template.mode:
        return template
    if mode == "instruct":
        if not template.infill_template:
            raise KeyError(f"model family {template.family} has no [infill] (instruction) prompt")
        return dataclasses.replace(
            template, mode=mode, order="instruct", template=template.infill_template,
            stop=template.infill_stop,
        )
    if mode == "prefix":
        # Context, then the text before the cursor, and nothing of the FIM tokens.
        return dataclasses.replace(template, mode=mode, order="prefix-only", template="{context}{prefix}")
    raise KeyError(f"model family {template.family} cannot switch to mode {mode!r}")


def choose_family(
    names: list[str], override: str | None = None, vocabulary: Collection[str] | None = None
) -> FamilyChoice:
    """The template for a model and why: explicit override ("family" or "family:mode"), else the
    model's special tokens (from its GGUF vocabulary), else its names, else the default family.

    Tokens come before names because a name is free text (a fine-tune called "my-model") while
    the FIM tokens are what the prompt must contain.
    """
    templates = fim_templates()
    if override:
        family, _, mode = override.partition(":")
        if family not in templates:
            raise KeyError(f"unknown model family {family!r}; known: {', '.join(sorted(templates))}")
        chosen = with_mode(templates[family], mode) if mode else templates[family]
        return FamilyChoice(chosen, f"override --family {override}")
    if vocabulary:
        # The family with the most identifying tokens, all of which the model has.
        matches = [
            t for t in templates.values()
            if t.special_tokens and all(token in vocabulary for token in t.special_tokens)
        ]
        if matches:
            best = max(matches, key=lambda t: len(t.special_tokens))
            return FamilyChoice(best, f"vocabulary has {', '.join(best.special_tokens[:3])}")
    lowered = [n.lower() for n in names if n]
    # The longest matching pattern wins, so "codellama" is not taken for a Llama pattern.
    hits = [
        (len(pattern), template, name, pattern)
        for template in templates.values()
        for pattern in template.name_patterns
        for name in lowered
        if pattern in name
    ]
    if hits:
        _, template, name, pattern = max(hits, key=lambda hit: hit[0])
        return FamilyChoice(template, f"name {name!r} matches {pattern!r}")
    return FamilyChoice(
        templates[DEFAULT_FAMILY], f"nothing matched; default {DEFAULT_FAMILY} (set --family)"
    )


def detect_family(
    names: list[str], override: str | None = None, vocabulary: Collection[str] | None = None
) -> FimTemplate:
    """The template for a model, by explicit override, else by tokens and names, else the default."""
    return choose_family(names, override, vocabulary).template


def render(template: str, values: dict[str, str]) -> str:
    """Replace `{name}` placeholders; unknown names are left as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
