"""Token healing (daemon/engines/token_healing.py): the prompt cut before the prefix's last token,
the answer forced to start with it and handed back without it. Fast: no model."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from nearcode.daemon.engines.base import GenerationRequest
from nearcode.daemon.engines.llamacpp import _Completion
from nearcode.daemon.engines.token_healing import (
    ForcedStart,
    cut_prompt,
    forced_start_grammar,
    healable,
    may_heal,
    tail_of,
)
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.shared.protocol.daemon_api import DeltaEvent, FimRequest
from tests.scripted_engine import ScriptedEngine, tokens


def test_only_a_visible_piece_is_healed() -> None:
    assert healable(".") and healable(" xtr") and healable("_config") and healable(" return")
    assert not healable(")") and not healable(" +") and not healable(" =")  # complete: nothing to heal
    assert not healable("") and not healable("    ") and not healable("\n") and not healable("  x")
    assert not healable("é") and not healable("x" * 25)
    assert tail_of("import os\n\ndef f():\n    return os.pa") == "    return os.pa"
    assert may_heal("x = os.pa") and may_heal("x = os.") and not may_heal("f(") and not may_heal("x = ") and not may_heal("")


def test_the_prompt_is_cut_where_the_prefix_ends_and_only_there() -> None:
    text = "<|fim_prefix|>x = _config.<|fim_suffix|>\n<|fim_middle|>"
    end = text.index("<|fim_suffix|>")
    assert cut_prompt(text, end, ".") == "<|fim_prefix|>x = _config<|fim_suffix|>\n<|fim_middle|>"
    assert cut_prompt(text, end, "Config") is None  # the prefix does not end with it
    assert cut_prompt(text, 0, ".") is None  # where the prefix ends is not known


def test_the_forced_start_is_stripped_across_chunks_and_nothing_else() -> None:
    forced = ForcedStart("._co")
    assert [forced.cut_from(t) for t in (".", "_c", "onfig", ".x")] == ["", "", "nfig", ".x"]
    assert ForcedStart(".").cut_from(".ConfigWrapper(") == "ConfigWrapper("
    assert ForcedStart(".").cut_from("x") == "x"  # an engine that did not obey: its text as it is


def test_the_grammar_escapes_what_gbnf_would_read_as_syntax() -> None:
    assert forced_start_grammar('"a\\') == 'root ::= "\\"a\\\\" [^\\x00]*'


async def test_llama_cpp_is_given_the_grammar_only_for_a_forced_start() -> None:
    engine = SimpleNamespace(info=SimpleNamespace(speculation="none"))
    loop = asyncio.get_running_loop()
    healed = _Completion(engine, GenerationRequest(prompt="p", max_tokens=4, forced_start="."), None, loop)  # type: ignore[arg-type]
    plain = _Completion(engine, GenerationRequest(prompt="p", max_tokens=4), None, loop)  # type: ignore[arg-type]
    assert healed.body["grammar"] == 'root ::= "." [^\\x00]*' and "grammar" not in plain.body


class HealingEngine(ScriptedEngine):
    """The scripted engine with a tokenizer's last piece, as llama.cpp's /tokenize gives it."""

    tokenized = 0  # calls that asked the tokenizer

    async def healing_piece(self, prefix: str) -> str:
        self.tokenized += 1
        pieces = tokens(tail_of(prefix))
        return pieces[-1] if pieces and healable(pieces[-1]) else ""


async def test_a_prompt_ending_in_a_partial_token_is_cut_before_it_and_shown_as_sent() -> None:
    engine = HealingEngine(script=lambda r: "ConfigWrapper(config)\n")
    svc = FimService(Scheduler(engine), fim_templates()["qwen2.5-coder"], PromptBudget(total_tokens=768), DaemonStats())
    request = FimRequest(prefix="def f(config):\n    wrapper = _config.", suffix="\n", mode="single",
                         client="c", document="file:///a.py", path="/a.py")
    text = "".join([e.text async for e in svc.stream(request) if isinstance(e, DeltaEvent)])
    sent = engine.requests[-1]
    assert sent.forced_start == "." and "wrapper = _config<|fim_suffix|>" in sent.prompt
    assert text == "ConfigWrapper(config)"  # (the script stands for what follows the forced start)
    record = svc.prompts.records.get("c\x00file:///a.py")
    assert record is not None and record.prompt == sent.prompt and record.forced_start == "."
    # A prefix that ends in whitespace ends no token half-way: the prompt is sent as built.
    await asyncio.gather(*[_drain(svc, request.model_copy(update={"prefix": "def f():\n    "}))])
    assert engine.requests[-1].forced_start == "" and engine.requests[-1].prompt.endswith("    <|fim_suffix|>\n<|fim_middle|>")
    assert engine.tokenized == 1  # a prefix that cannot end in a healable piece asks no tokenizer


async def _drain(svc: FimService, request: FimRequest) -> None:
    async for _ in svc.stream(request):
        pass
