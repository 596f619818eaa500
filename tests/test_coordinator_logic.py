"""The language server's decisions on the real daemon logic with a scripted engine (fast tier):
answer from the typing cache, join the in-flight request, cancel a stale one, answer a multi-line
request at its first line, speculate the next line, and debounce only when typing outpaces answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nearcode.daemon.engines.base import GenerationRequest, Priority
from nearcode.lsp.completion import CursorText
from nearcode.lsp.coordinator import CompletionCoordinator
from nearcode.shared.protocol.settings import Settings
from tests.inprocess_daemon import InProcessDaemon
from tests.scripted_engine import ScriptedEngine

URI = "file:///t/fib.py"
BODY = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        "
TAIL = "\n    return a\n"


def cursor(typed: str = "", prefix: str = BODY, suffix: str = TAIL) -> CursorText:
    return CursorText(prefix=prefix + typed, suffix=suffix, uri=URI, path="/t/fib.py", language="python")


def answers(mapping: dict[str, str], default: str = "pass") -> Any:
    """A script: the answer for the longest key the prompt's prefix part ends with."""
    def script(request: GenerationRequest) -> str:
        prefix = request.prompt.split("<|fim_suffix|>")[0]
        keys = sorted((key for key in mapping if prefix.endswith(key)), key=len, reverse=True)
        return mapping[keys[0]] if keys else default
    return script


def coordinator(engine: ScriptedEngine, speculate: bool = False) -> tuple[CompletionCoordinator, InProcessDaemon, Settings]:
    daemon = InProcessDaemon(engine)
    return CompletionCoordinator(daemon, "editor-1"), daemon, Settings(speculate=speculate)  # type: ignore[arg-type]


async def test_typing_through_a_suggestion_needs_no_model_call() -> None:
    engine = ScriptedEngine(script=answers({"        ": "a, b = b, a + b"}))
    coord, daemon, settings = coordinator(engine)
    first = await coord.complete(cursor(), settings, invoked=True)
    assert first.text == "a, b = b, a + b" and first.source == "model"
    typed = await coord.complete(cursor("a, b"), settings, invoked=False)
    back = await coord.complete(cursor("a,"), settings, invoked=False)
    assert (typed.text, typed.source) == (" = b, a + b", "cache")
    assert (back.text, back.source) == (" b = b, a + b", "cache")
    assert len(daemon.requests) == 1


async def test_a_keystroke_that_matches_the_stream_joins_it() -> None:
    engine = ScriptedEngine(script=answers({"        ": "a, b = b, a + b"}), token_delay_s=0.02)
    coord, daemon, settings = coordinator(engine)
    first = asyncio.create_task(coord.complete(cursor(), settings, invoked=True))
    await asyncio.sleep(0.05)  # the stream has produced "a" or more
    first.cancel()  # the editor cancels the unanswered request, then asks after its keystroke
    second = await coord.complete(cursor("a"), settings, invoked=False)
    assert (second.text, second.source) == (", b = b, a + b", "joined")
    assert len(daemon.requests) == 1 and coord.counters["joined"] == 1


async def test_a_keystroke_that_diverges_cancels_the_stale_request() -> None:
    engine = ScriptedEngine(script=answers({"        ": "a, b = b, a + b", "x": " = n"}), token_delay_s=0.02)
    coord, daemon, settings = coordinator(engine)
    first = asyncio.create_task(coord.complete(cursor(), settings, invoked=True))
    await asyncio.sleep(0.05)
    second = await coord.complete(cursor("x"), settings, invoked=True)
    assert second.text == " = n" and coord.counters["cancelled_stale"] == 1
    stale = await first
    assert stale.finish_reason == "superseded" and not stale.offered, "the daemon superseded it"
    assert len(daemon.requests) == 2 and engine.cancel_counters.cancelled == 1


async def test_a_multi_line_request_answers_at_its_first_line() -> None:
    engine = ScriptedEngine(script=lambda r: "total = 0\n    for x in xs:\n        total += x\n    return total", token_delay_s=0.03)
    coord, daemon, settings = coordinator(engine)
    started = asyncio.get_running_loop().time()
    early = await coord.complete(cursor(prefix="def total(xs):\n    ", suffix="\n"), settings, invoked=True)
    early_s = asyncio.get_running_loop().time() - started
    assert early.text == "total = 0" and coord.counters["first_line"] == 1
    for _ in range(40):  # the rest streams on into the typing cache
        await asyncio.sleep(0.05)
        fuller = await coord.complete(cursor(prefix="def total(xs):\n    ", suffix="\n"), settings, invoked=False)
        if "\n" in fuller.text:
            break
    assert fuller.source == "cache" and fuller.text.startswith("total = 0\n    for x in xs:")
    assert len(daemon.requests) == 1 and early_s < 0.5


async def test_an_offered_line_end_speculates_the_next_line_and_a_keystroke_cancels_it() -> None:
    engine = ScriptedEngine(script=answers({"        ": "a, b = b, a + b", "a + b\n        ": "n -= 1"}), token_delay_s=0.01)
    coord, daemon, settings = coordinator(engine, speculate=True)
    await coord.complete(cursor(), settings, invoked=True)
    await asyncio.sleep(0.2)
    speculative = [r for r in daemon.requests if r.priority == "speculative"]
    assert len(speculative) == 1 and speculative[0].document == URI
    # Accepting the line and pressing Enter finds the speculated answer in the cache.
    after = await coord.complete(cursor("a, b = b, a + b\n        "), settings, invoked=False)
    assert (after.text, after.source) == ("n -= 1", "cache")
    assert [r.priority for r in engine.requests].count(Priority.SPECULATIVE) == 1


async def test_debounce_waits_only_when_typing_outpaces_answers_and_a_cancel_then_costs_nothing() -> None:
    engine = ScriptedEngine(script=lambda r: "x", prompt_delay_s=0.0)
    coord, daemon, settings = coordinator(engine)
    coord.typing_interval_s, coord.model_latency_s = 0.08, 0.9
    pending = asyncio.create_task(coord.complete(cursor("q"), settings, invoked=False))
    await asyncio.sleep(0.01)
    pending.cancel()  # the next keystroke came during the debounce
    await asyncio.gather(pending, return_exceptions=True)
    assert daemon.requests == [], "no model call was started"


async def test_accepting_a_line_of_a_multi_line_suggestion_shows_the_next_without_a_model_call() -> None:
    engine = ScriptedEngine(script=lambda r: "total = 0\n    for x in xs:\n        total += x")
    coord, daemon, settings = coordinator(engine)
    prefix = "def total(xs):\n    "
    for _ in range(40):  # the first answer comes at its first line, the rest follows into the cache
        whole = await coord.complete(cursor(prefix=prefix, suffix="\n"), settings, invoked=False)
        if whole.text.count("\n") == 2:
            break
        await asyncio.sleep(0.02)
    assert whole.text == "total = 0\n    for x in xs:\n        total += x"
    # The editor inserts the first line and a newline with its indentation; the next line is there.
    following = await coord.complete(cursor("total = 0\n    ", prefix=prefix, suffix="\n"), settings, invoked=False)
    assert (following.text, following.source) == ("for x in xs:\n        total += x", "cache")
    assert len(daemon.requests) == 1


async def test_the_next_model_request_supersedes_a_running_speculation() -> None:
    engine = ScriptedEngine(
        script=answers({"        ": "a, b = b, a + b", "a + b\n        ": " ".join(["n"] * 200), "zz": "1"}),
        token_delay_s=0.01,
    )
    coord, _, settings = coordinator(engine, speculate=True)
    await coord.complete(cursor(), settings, invoked=True)
    await asyncio.sleep(0.1)  # the speculation is streaming its long answer
    assert engine.running == 1
    answer = await coord.complete(cursor("zz"), settings, invoked=True)
    assert answer.text == "1" and engine.cancel_counters.cancelled == 1, "the speculation was superseded"


async def test_an_answer_cut_for_load_says_so() -> None:
    engine = ScriptedEngine(script=answers({"        ": "a, b = b, a + b  # " + "x " * 60}))
    coord, daemon, settings = coordinator(engine)
    # Three other editors have interactive work: this answer's cap is a quarter of the shared one.
    daemon.scheduler.gate.running_interactive_by_client.update({"editor-2": 1, "editor-3": 1, "editor-4": 1})
    outcome = await coord.complete(cursor(), settings, invoked=True)
    assert outcome.offered and outcome.reason == "shortened: other editors share the engine"
    daemon.scheduler.gate.running_interactive_by_client.clear()
    alone = await coord.complete(cursor(prefix=BODY + "\n"), settings, invoked=True)
    assert alone.reason != "shortened: other editors share the engine"
