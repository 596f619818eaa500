"""The model catalog in prompts/families: every family's templates against its real special tokens.

The token lists below are the families' real special-token names, copied from their tokenizer
configurations (none of these models' weights exist here, so the names are the facts we test with):
- Qwen2.5-Coder: Qwen/Qwen2.5-Coder-*-Instruct tokenizer_config.json added_tokens_decoder
  151643-151664 (also checked against the real GGUF file in tests/test_gguf.py).
- StarCoder2: bigcode/starcoder2-15b tokenizer_config.json added_tokens_decoder 0-6 (and the
  StarCoder2 paper, arXiv 2402.19173 section 5.1, for <repo_name>/<file_sep>).
- DeepSeek-Coder: deepseek-ai/deepseek-coder-6.7b-base tokenizer_config.json 32013-32021; llama.cpp
  src/llama-vocab.cpp detects "<｜fim▁begin｜>" (full-width bars U+FF5C, U+2581) as DeepSeek's FIM_PRE.
- Code Llama: codellama/CodeLlama-7b-hf tokenizer (SentencePiece) ids 32007-32010 "▁<PRE>",
  "▁<SUF>", "▁<MID>", "▁<EOT>"; llama.cpp src/llama-vocab.cpp matches "▁<PRE>" as CodeLlama's FIM_PRE.
- Codestral: mistral-common src/mistral_common/tokens/tokenizers/base.py SpecialTokens
  (prefix "[PREFIX]", middle "[MIDDLE]", suffix "[SUFFIX]", "[INST]", "[/INST]", "</s>").
- CodeGemma: google/codegemma-7b tokenizer_config.json ("<|fim_prefix|>", "<|fim_middle|>",
  "<|fim_suffix|>", "<|file_separator|>", "<start_of_turn>", "<end_of_turn>", "<eos>"), and
  ai.google.dev/gemma/docs/codegemma/prompt-structure.
- Phi-3-mini: microsoft/Phi-3-mini-4k-instruct added tokens 32000-32010 (as torchtune's
  models/phi3/_tokenizer.py PHI3_SPECIAL_TOKENS lists them).
- Llama 3.1: meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json 128000-128010.
"""

from __future__ import annotations

import re

import pytest

from nearcode.daemon.prompting.chat import ChatMessage, render_chat
from nearcode.daemon.prompting.fim import FimInput, PromptBudget, Snippet, build_fim_prompt
from nearcode.daemon.prompting.templates import choose_family, fim_templates, with_mode

REAL_SPECIAL_TOKENS: dict[str, set[str]] = {
    "qwen2.5-coder": {
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
        "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    },
    "starcoder2": {
        "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<repo_name>",
        "<file_sep>",
    },
    "deepseek-coder": {
        "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>",
        "<｜fim▁end｜>", "<|EOT|>",
    },
    "codellama": {"<s>", "</s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"},
    "codestral": {"<s>", "</s>", "[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"},
    "codegemma": {
        "<bos>", "<eos>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_separator|>",
        "<start_of_turn>", "<end_of_turn>",
    },
    "phi-3-mini": {"<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"},
    "llama-3.1-8b": {
        "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    },
}
# (prefix marker, suffix marker) in the text of each FIM template; None for prefix-only families.
FIM_MARKERS: dict[str, tuple[str, str] | None] = {
    "qwen2.5-coder": ("<|fim_prefix|>", "<|fim_suffix|>"),
    "starcoder2": ("<fim_prefix>", "<fim_suffix>"),
    "deepseek-coder": ("<｜fim▁begin｜>", "<｜fim▁hole｜>"),
    "codellama": ("<PRE>", "<SUF>"),
    "codestral": ("[PREFIX]", "[SUFFIX]"),
    "codegemma": ("<|fim_prefix|>", "<|fim_suffix|>"),
    "phi-3-mini": None,
    "llama-3.1-8b": None,
}
# Markup that is plain text in a prompt (our infill instructions), not a special token.
_PLAIN_MARKUP = {"<HOLE>", "<CODE>", "</CODE>", "<COMPLETION>", "</COMPLETION>"}
# Llama 2's chat markup ([INST], <<SYS>>) is plain text that its tokenizer splits into pieces.
_PLAIN_FOR_FAMILY = {"codellama": {"[INST]", "[/INST]", "<SYS>", "</SYS>"}}
_TOKEN_LIKE = re.compile(r"<\|[^|>]+\|>|<｜[^｜]+｜>|</?[A-Za-z_]+>|\[/?[A-Z_]+\]")


def tokens_in(text: str) -> set[str]:
    return {t for t in _TOKEN_LIKE.findall(text) if t not in _PLAIN_MARKUP}


def in_vocabulary(token: str, family: str) -> bool:
    # SentencePiece stores Code Llama's FIM tokens with the word-boundary mark: "<PRE>" is "▁<PRE>".
    if token in _PLAIN_FOR_FAMILY.get(family, set()):
        return True
    return token in REAL_SPECIAL_TOKENS[family] or f"▁{token}" in REAL_SPECIAL_TOKENS[family]


async def count_chars(text: str) -> int:
    return len(text)


def test_catalog_has_every_specified_family() -> None:
    assert set(fim_templates()) >= set(REAL_SPECIAL_TOKENS)


@pytest.mark.parametrize("family", sorted(REAL_SPECIAL_TOKENS))
def test_every_token_a_template_writes_is_a_real_special_token(family: str) -> None:
    template = fim_templates()[family]
    assert set(template.special_tokens) <= REAL_SPECIAL_TOKENS[family]
    texts = [template.template, template.context_header, template.context_snippet,
             template.context_current_file, template.infill_template, *template.stop, *template.infill_stop]
    assert template.chat is not None, f"{family} has no chat template"
    chat = template.chat
    texts += [chat.system, chat.user, chat.assistant, chat.generation_prompt, *chat.stop]
    wrong = {t for text in texts for t in tokens_in(text) if not in_vocabulary(t, family)}
    assert not wrong, f"{family} writes tokens its tokenizer does not have: {wrong}"


@pytest.mark.parametrize("family", sorted(REAL_SPECIAL_TOKENS))
async def test_fim_prompt_order_and_budget(family: str) -> None:
    template = fim_templates()[family]
    inp = FimInput(prefix="def f(x):\n    return ", suffix="\n\nprint(f(1))\n", path="src/a.py",
                   language="python", context=(Snippet("src/b.py", "def g(): pass"),))
    prompt = await build_fim_prompt(inp, template, PromptBudget(total_tokens=4000), count_chars)
    markers = FIM_MARKERS[family]
    assert "src/b.py" in prompt.text and "def g(): pass" in prompt.text
    if markers is None:
        # Prefix-only: the text before the cursor ends the prompt and the suffix is not sent.
        assert template.mode == "prefix" and not template.uses_suffix
        assert prompt.text.endswith("def f(x):\n    return ") and "print(f(1))" not in prompt.text
        return
    prefix_marker, suffix_marker = markers
    at_prefix, at_suffix = prompt.text.index(prefix_marker), prompt.text.index(suffix_marker)
    at_code, at_after = prompt.text.index("def f(x)"), prompt.text.index("print(f(1))")
    if template.order == "spm":  # Codestral: suffix first, then prefix, generation continues it
        assert at_suffix < at_after < at_prefix < at_code and prompt.text.endswith("return ")
    else:
        assert template.order == "psm" and at_prefix < at_code < at_suffix < at_after
    assert prompt.text.index("def g(): pass") < at_code  # repository context before the file


async def test_prefix_only_prompt_gives_the_suffix_share_to_the_prefix() -> None:
    template = fim_templates()["llama-3.1-8b"]
    budget = PromptBudget(total_tokens=100, prefix_share=0.5, suffix_share=0.5, context_share=0.0)
    prefix = "".join(f"x{i}\n" for i in range(40))  # 120 characters, one a "token" here
    prompt = await build_fim_prompt(FimInput(prefix=prefix, suffix="tail"), template, budget, count_chars)
    assert 50 < len(prompt.text) <= 100  # more than the prefix share alone: it got the suffix's too
    # A FIM prompt keeps the suffix's share for the suffix; what the suffix leaves unused goes to
    # the prefix too (here "tail" uses 4 of its 50).
    long_suffix = "y" * 200
    qwen = await build_fim_prompt(FimInput(prefix=prefix, suffix=long_suffix), fim_templates()["qwen2.5-coder"],
                                  budget, count_chars)
    assert qwen.prefix_chars <= 50 and qwen.suffix_chars <= 50
    short = await build_fim_prompt(FimInput(prefix=prefix, suffix="tail"), fim_templates()["qwen2.5-coder"],
                                   budget, count_chars)
    assert 50 < short.prefix_chars <= 96


@pytest.mark.parametrize("family", ["phi-3-mini", "llama-3.1-8b"])
async def test_instruct_infill_prompt_marks_the_hole_and_opens_the_answer(family: str) -> None:
    template = choose_family([], f"{family}:instruct").template
    assert template.mode == "instruct" and "</COMPLETION>" in template.stop
    prompt = await build_fim_prompt(
        FimInput(prefix="def f(x):\n    return ", suffix="\n", language="python"),
        template, PromptBudget(total_tokens=2000), count_chars,
    )
    assert "def f(x):\n    return <HOLE>\n" in prompt.text and "python code" in prompt.text
    assert prompt.text.endswith("<COMPLETION>")
    with pytest.raises(KeyError):
        with_mode(fim_templates()["qwen2.5-coder"], "instruct")  # FIM families have no [infill]


@pytest.mark.parametrize("family", sorted(REAL_SPECIAL_TOKENS))
def test_chat_template_renders_a_conversation(family: str) -> None:
    chat = fim_templates()[family].chat
    assert chat is not None
    prompt = render_chat([ChatMessage("system", "SYS-TEXT"), ChatMessage("user", "USER-TEXT")], chat)
    assert prompt.index("SYS-TEXT") < prompt.index("USER-TEXT")
    assert prompt.endswith(chat.generation_prompt) and prompt.count("SYS-TEXT") == 1
    if chat.system_in_first_user:
        # No system role: the system text sits inside the first user turn, after its opening.
        opening = chat.user.split("{content}")[0]
        assert prompt.startswith(opening) and prompt.index(opening) < prompt.index("SYS-TEXT")


@pytest.mark.parametrize("family", sorted(REAL_SPECIAL_TOKENS))
def test_family_detected_from_its_vocabulary(family: str) -> None:
    vocabulary = REAL_SPECIAL_TOKENS[family] | {"hello", "▁world", "<unk>"}
    choice = choose_family(["some-finetune-v2.gguf"], None, vocabulary)
    assert choice.template.family == family, choice.reason


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Qwen2.5 Coder 1.5B Instruct", "qwen2.5-coder"),
        ("starcoder2-3b-q4_k_m.gguf", "starcoder2"),
        ("deepseek-coder-6.7b-base.Q4_K_M.gguf", "deepseek-coder"),
        ("CodeLlama 7B", "codellama"),  # not Llama 3 although it contains "llama 7"
        ("codellama-34b-instruct", "codellama"),
        ("Codestral-22B-v0.1-Q4_K_M.gguf", "codestral"),
        ("codegemma-2b-Q8_0.gguf", "codegemma"),
        ("Phi 3 Mini 4k Instruct", "phi-3-mini"),
        ("Meta Llama 3.1 8B Instruct", "llama-3.1-8b"),
        ("meta-llama-3.1-8b-instruct-q4_k_m.gguf", "llama-3.1-8b"),
    ],
)
def test_family_detected_from_model_names(name: str, family: str) -> None:
    assert choose_family([name]).template.family == family


def test_override_beats_detection_and_unknown_names_fall_back() -> None:
    qwen_vocab = REAL_SPECIAL_TOKENS["qwen2.5-coder"]
    assert choose_family(["x"], "starcoder2", qwen_vocab).template.family == "starcoder2"
    fallback = choose_family(["mystery-model.gguf"])
    assert fallback.template.family == "qwen2.5-coder" and "--family" in fallback.reason
    with pytest.raises(KeyError):
        choose_family([], "no-such-family")
