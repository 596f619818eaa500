"""From a FIM request to events, against a scripted engine (fast tier: no model, no server).

The prompt the engine receives (template, budget, a document's anchored start), where a
completion ends (line limit, block end, single line) and the reasons the final event carries.
"""

from __future__ import annotations

import asyncio

import pytest

from nearcode.daemon.engines.base import GenerationRequest, GenerationStats, Priority
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.daemon.streams import ServiceEvent
from nearcode.shared.protocol.daemon_api import DeltaEvent, DoneEvent, FimRequest
from tests.scripted_engine import ScriptedEngine, tokens

QWEN = fim_templates()["qwen2.5-coder"]


def service(engine: ScriptedEngine, total_tokens: int = 768) -> FimService:
    return FimService(Scheduler(engine), QWEN, PromptBudget(total_tokens=total_tokens), DaemonStats())


async def run(svc: FimService, req: FimRequest) -> tuple[str, DoneEvent]:
    text = ""
    events: list[ServiceEvent] = [event async for event in svc.stream(req)]
    for event in events:
        if isinstance(event, DeltaEvent):
            text += event.text
    final = events[-1]
    assert isinstance(final, DoneEvent) and sum(isinstance(e, DoneEvent) for e in events) == 1
    return text, final


def last_prompt(engine: ScriptedEngine) -> GenerationRequest:
    return engine.requests[-1]


async def test_the_prompt_is_the_family_template_with_newline_stop_for_one_line() -> None:
    engine = ScriptedEngine(script=lambda r: "a + b\nnext line")
    text, final = await run(service(engine), FimRequest(prefix="def add(a, b):\n    return ", suffix="\n", mode="single"))
    sent = last_prompt(engine)
    assert sent.prompt == "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>"
    assert "\n" in sent.stop and "<|endoftext|>" in sent.stop
    assert text == "a + b" and final.finish_reason == "newline"


async def test_multi_line_stops_at_the_line_limit() -> None:
    engine = ScriptedEngine(script=lambda r: "a = 1\nb = 2\nc = 3\nd = 4\n")
    text, final = await run(service(engine), FimRequest(prefix="def f():\n    ", mode="multi", max_lines=2))
    assert text == "a = 1\nb = 2" and final.finish_reason == "length"


async def test_multi_line_stops_where_the_block_ends() -> None:
    engine = ScriptedEngine(script=lambda r: "x = 1\n    y = 2\nz = 3\n")
    text, final = await run(
        service(engine), FimRequest(prefix="def f():\n    ", mode="multi", stop_at_block_end=True, max_lines=10)
    )
    assert text == "x = 1\n    y = 2" and final.finish_reason == "stop"


async def test_the_prefix_is_cut_from_its_end_at_whole_lines_within_the_budget() -> None:
    engine = ScriptedEngine(script=lambda r: "1")
    prefix = "".join(f"line_{i} = {i}\n" for i in range(400))
    await run(service(engine, total_tokens=256), FimRequest(prefix=prefix, suffix="", mode="single"))
    sent = last_prompt(engine).prompt
    kept = sent[len("<|fim_prefix|>") : sent.index("<|fim_suffix|>")]
    assert prefix.endswith(kept) and kept.startswith("line_") and len(kept) < len(prefix)
    assert await engine.count_tokens(sent) <= 256


async def test_typing_keeps_the_prompt_start_so_the_cache_is_reused() -> None:
    engine = ScriptedEngine(script=lambda r: "x")
    svc = service(engine, total_tokens=256)
    body = "".join(f"value_{i} = compute({i}, other_{i})\n" for i in range(200))
    starts, cached = [], []
    for typed in range(0, 30, 3):
        typed_text = ("ab" * 15)[:typed]
        req = FimRequest(prefix=body + "result = " + typed_text, mode="single", document="file:///a.py", client="c")
        _, final = await run(svc, req)
        prompt = last_prompt(engine).prompt
        starts.append(prompt[:60])
        cached.append((final.prompt_tokens, final.cached_tokens))
    assert len(set(starts)) == 1, "every keystroke's prompt starts on the same line"
    # Read again: the word being typed and the FIM markers after it (11 stand-in tokens), not the body.
    assert all(total - hit <= 12 for total, hit in cached[1:]), f"only the typed end is read again: {cached}"


async def test_a_slow_engine_gets_a_smaller_budget_and_editors_share_it() -> None:
    engine = ScriptedEngine(script=lambda r: "1")
    svc = service(engine, total_tokens=2000)
    svc.reading.tokens_per_s = 100.0  # 6 s of cold reading: 600 tokens
    alone = svc.reading.budget_for("a")
    assert alone.total_tokens == 576  # in steps of 64
    svc.scheduler.gate.running_interactive_by_client.update({"b": 1})
    shared = svc.reading.budget_for("a")
    assert shared.total_tokens == 320, "two editors with interactive work split the cold-read budget"


async def test_a_read_stopped_by_its_deadline_teaches_the_speed_it_had() -> None:
    """A slow engine's first prompt (the whole configured budget) misses its deadline mid-read:
    what it read by then is the sample (the whole prompt would say 1,017 tokens in 9.5 s, 107
    tokens/s, and keep the budget near 1,024, so that every next request missed too)."""
    svc = service(ScriptedEngine(), total_tokens=1024)
    assert svc.reading.budget_for("a").total_tokens == 1024, "nothing measured yet: the configured budget"
    svc.reading.learn(GenerationStats(prompt_tokens=1024, cached_tokens=7, prompt_ms=9500.0, read_so_far=256))
    assert svc.reading.tokens_per_s == pytest.approx(256 / 9.5)
    assert svc.reading.budget_for("a").total_tokens == 192, "6 s at ~27 tokens/s, never under the floor"
    # A read that ended (the engine said nothing of progress, or a token came): all of it counts.
    svc.reading.learn(GenerationStats(prompt_tokens=200, cached_tokens=8, prompt_ms=4000.0))
    assert svc.reading.tokens_per_s == pytest.approx(0.7 * 256 / 9.5 + 0.3 * 192 / 4.0)


async def test_a_request_superseded_while_it_reads_teaches_the_speed_it_had() -> None:
    """A keystroke supersedes the request before it, often while that one still reads its prompt:
    what it read by then is a sample of the reading speed. Its final event once carried no counts,
    so a fresh daemon under steady typing went on budgeting at the configured maximum."""
    # Reading takes 0.4 s and the answer 0.8 s more: superseded while it reads (or, on a slow
    # machine, while it generates; its counts say the same then).
    engine = ScriptedEngine(script=lambda r: "1 2 3 4 5 6 7 8", prompt_delay_s=0.4, token_delay_s=0.1)
    svc = service(engine, total_tokens=1024)
    prefix = "".join(f"value_{i} = compute({i})\n" for i in range(60))  # 540 tokens: half is a sample
    first = asyncio.ensure_future(run(svc, FimRequest(prefix=prefix, client="a", document="d")))
    await asyncio.sleep(0.3)  # past its progress report (halfway), before its read ends
    second = asyncio.ensure_future(run(svc, FimRequest(prefix=prefix + "total = ", client="a", document="d")))
    _, superseded = await first
    assert superseded.finish_reason == "superseded"
    assert superseded.prompt_tokens >= 540, "the final event says what the engine was reading"
    assert svc.reading.tokens_per_s is not None, "learned from the superseded request's reading"
    await second


async def test_a_request_its_client_left_teaches_the_speed_it_had() -> None:
    """An editor that shows the first line and moves on closes the stream mid-answer: what the
    engine read still teaches the speed (once it taught nothing, and a fresh daemon whose answers
    were all taken early budgeted every prompt at the configured maximum)."""
    engine = ScriptedEngine(script=lambda r: "1 2 3 4 5 6 7 8", prompt_delay_s=0.2, token_delay_s=0.1)
    svc = service(engine, total_tokens=1024)
    prefix = "".join(f"value_{i} = compute({i})\n" for i in range(60))
    first_token = asyncio.Event()

    async def editor() -> None:
        async for event in svc.stream(FimRequest(prefix=prefix, client="a", document="d")):
            if isinstance(event, DeltaEvent):
                first_token.set()

    reading = asyncio.ensure_future(editor())
    await asyncio.wait_for(first_token.wait(), 5)
    reading.cancel()  # the HTTP client hung up: the daemon's stream task is cancelled
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert svc.reading.tokens_per_s is not None, "learned from the abandoned request's reading"


async def test_before_any_speed_is_known_a_short_read_sets_it() -> None:
    """The first read of 64 tokens or more sets the speed (until then every prompt gets the
    configured maximum); once one is known, a read under 128 tokens (fixed costs weigh on it) is
    not a sample on its own: it waits to be pooled with the next."""
    engine = ScriptedEngine(script=lambda r: "1", prompt_delay_s=0.2)
    svc = service(engine, total_tokens=1024)
    short = "".join(f"value_{i} = {i}\n" for i in range(12))  # ~90 stand-in tokens with the markers
    _, final = await run(svc, FimRequest(prefix=short, client="a", document="d"))
    assert 64 <= final.prompt_tokens - final.cached_tokens < 128, final
    learned = svc.reading.tokens_per_s
    assert learned is not None
    await run(svc, FimRequest(prefix=short.replace("value", "other"), client="a", document="e"))
    assert svc.reading.tokens_per_s == learned, "a second short read alone does not move it"


async def test_short_reads_together_correct_a_first_estimate_that_was_too_low() -> None:
    """Once a budget is small, every read is short (read-aheads ~60 tokens, completions ~85): if
    short reads never counted, a first estimate taken while another read shared the cores held
    the budget at its floor for good. Pooled, they move it toward what the engine really reads."""
    engine = ScriptedEngine(script=lambda r: "1", prompt_delay_s=0.1)
    svc = service(engine, total_tokens=1024)
    svc.reading.learn(GenerationStats(prompt_tokens=200, prompt_ms=10_000.0))  # 20 tokens/s: far too low
    short = "".join(f"value_{i} = {i}\n" for i in range(12))
    for name in ("a", "b", "c", "d"):
        _, final = await run(svc, FimRequest(prefix=short.replace("value", name), client="a", document=name))
        assert final.prompt_tokens - final.cached_tokens < 128, final
    assert svc.reading.tokens_per_s is not None and svc.reading.tokens_per_s > 100, svc.reading.tokens_per_s


async def test_a_speed_probe_stops_for_other_work_and_is_read_again_when_quiet() -> None:
    """The start-up probe measures the engine alone, after a quiet moment. Work that comes while it
    reads (an editor's first read at didOpen) stops it: that request must not wait behind it, and a
    probe that shared the cores measured the two together (30.8 tokens/s against 45 alone)."""
    # A slow first read (1.5 s to its halfway report), so a loaded test machine cannot end it
    # before the other work does.
    engine = ScriptedEngine(script=lambda r: "1", prompt_delay_s=3.0)
    svc = service(engine)
    probe = asyncio.ensure_future(svc.read_ahead.measure_speed())
    while not engine.requests:  # noqa: ASYNC110 - the scripted engine records requests, no event
        await asyncio.sleep(0.02)
    assert engine.requests[0].affinity == "nearcode:reading-speed"
    other = GenerationRequest(prompt="x = 1\n", max_tokens=1, priority=Priority.BACKGROUND, affinity="file")
    engine.prompt_delay_s = 0.2  # from now on the engine reads fast; the first probe would end at ~1.6 s
    [_ async for _ in svc.scheduler.submit(other).events()]
    await asyncio.sleep(0.05)  # the other's engine stream closes just after its last event
    assert engine.running == 0, "the probe stopped when other work came"
    await asyncio.wait_for(probe, 10)
    probes = [r for r in engine.requests if r.affinity == "nearcode:reading-speed"]
    assert len(probes) == 2, "read again once the engine was quiet"
    alone = len(tokens(probes[-1].prompt)) / 0.2
    assert svc.reading.tokens_per_s is not None
    assert 0.8 * alone <= svc.reading.tokens_per_s <= 1.1 * alone, (svc.reading.tokens_per_s, alone)


async def test_answers_are_shorter_while_other_editors_wait_and_say_so() -> None:
    engine = ScriptedEngine(script=lambda r: "x" * 100)
    svc = service(engine)
    _, alone = await run(svc, FimRequest(prefix="a = ", client="a", document="d", max_tokens=64))
    assert last_prompt(engine).max_tokens == 64 and alone.max_tokens == 64
    svc.scheduler.gate.running_interactive_by_client.update({"b": 1, "c": 1, "d": 1})
    _, shared = await run(svc, FimRequest(prefix="a = ", client="a", document="d", max_tokens=64))
    assert last_prompt(engine).max_tokens == shared.max_tokens == 16, "four editors: a quarter of the shared cap"
    assert svc.reading.answer_tokens("a", 8) == 8, "never more than asked"
    assert svc.reading.answer_tokens("a", 64, "background") == 64


async def test_the_debug_log_says_where_the_time_went_and_never_the_text(caplog: pytest.LogCaptureFixture) -> None:
    engine = ScriptedEngine(script=lambda r: "secret_total + 1\n")
    with caplog.at_level("DEBUG", logger="nearcode.daemon"):
        await run(service(engine), FimRequest(prefix="secret_total = compute_secret()\nx = ", mode="single"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fim ")]
    assert lines and "prompt" in lines[0] and "generated" in lines[0], lines
    assert not any("secret" in r.getMessage() for r in caplog.records), "document text in the log"


async def test_the_status_figure_of_a_cold_prompt_does_not_move_the_budget() -> None:
    """`/api/model` shows what a cold prompt may hold; reading it must not steady the budget level
    (a poll while the speed briefly jumped would keep later prompts at the jumped size)."""
    svc = service(ScriptedEngine(), total_tokens=1024)
    reading = svc.reading
    reading.tokens_per_s = 100.0  # 600 tokens of cold reading
    assert reading.budget_for("a").stable_total_tokens == reading.cold_prompt_tokens() == 576
    reading.tokens_per_s = 130.0  # a jump past the hysteresis: shown as it is
    assert reading.cold_prompt_tokens() == 768
    reading.tokens_per_s = 110.0  # back within 15% of the level the last request had
    assert reading.budget_for("a").stable_total_tokens == reading.cold_prompt_tokens() == 576
