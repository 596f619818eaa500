"""The scheduler's decisions against a scripted engine (fast tier: no model, no server).

Supersede, priorities, pausing background work for keystrokes and resuming it from its text,
shedding under load, and exactly one final event per generation whatever happens.
"""

from __future__ import annotations

import asyncio

from nearcode.daemon.engines.base import FinishReason, GenerationChunk, GenerationRequest, Priority
from nearcode.daemon.scheduler import BackgroundPolicy, GenerationHandle, Scheduler
from tests.scripted_engine import ScriptedEngine, engine_error


async def collect(handle: GenerationHandle) -> tuple[str, GenerationChunk]:
    text = ""
    async for chunk in handle.events():
        if chunk.finish_reason is not None:
            return text, chunk
        text += chunk.text
    raise AssertionError("the stream ended without a final event")


def request(prompt: str = "p", priority: Priority = Priority.INTERACTIVE, max_tokens: int = 50) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, max_tokens=max_tokens, priority=priority)


async def test_a_newer_request_supersedes_the_older_one_on_the_same_stream() -> None:
    engine = ScriptedEngine(script=lambda r: "one two three four five six", token_delay_s=0.01)
    scheduler = Scheduler(engine)
    old = scheduler.submit(request("a"), "client\x00doc", "client")
    reader = asyncio.create_task(collect(old))
    await asyncio.sleep(0.025)
    new = scheduler.submit(request("b"), "client\x00doc", "client")
    old_text, old_final = await reader
    new_text, new_final = await collect(new)
    assert old_final.finish_reason == FinishReason.SUPERSEDED and len(old_text) < len("one two three four five six")
    assert new_final.finish_reason == FinishReason.STOP and new_text == "one two three four five six"
    assert engine.running == 0, "the superseded generation stopped in the engine"


async def test_other_documents_are_not_superseded() -> None:
    engine = ScriptedEngine(script=lambda r: "x y z", token_delay_s=0.005)
    scheduler = Scheduler(engine)
    first = scheduler.submit(request(), "c\x00doc1", "c")
    second = scheduler.submit(request(), "c\x00doc2", "c")
    results = await asyncio.gather(collect(first), collect(second))
    assert [final.finish_reason for _, final in results] == [FinishReason.STOP, FinishReason.STOP]


async def test_background_work_pauses_for_a_keystroke_and_resumes_from_its_text() -> None:
    engine = ScriptedEngine(
        script=lambda r: "fast" if r.priority == Priority.INTERACTIVE else " ".join(f"w{i}" for i in range(30)),
        token_delay_s=0.01,
    )
    scheduler = Scheduler(engine, BackgroundPolicy(resume_after_quiet_s=0.05))
    background = scheduler.submit(request("doc:", Priority.BACKGROUND, max_tokens=200), "c\x00gen", "c")
    reader = asyncio.create_task(collect(background))
    await asyncio.sleep(0.1)
    keystroke = scheduler.submit(request("k"), "c\x00doc", "c")
    _, key_final = await collect(keystroke)
    text, final = await reader
    assert key_final.finish_reason == FinishReason.STOP
    assert scheduler.background.paused >= 1
    # The client saw one continuous text; the resumed request continued from what was streamed.
    assert text.startswith("w0 w1") and final.finish_reason == FinishReason.STOP
    resumed = [r for r in engine.requests if r.priority == Priority.BACKGROUND][1]
    assert resumed.prompt.startswith("doc:w0 w1") and resumed.max_tokens < 200


async def test_background_is_not_paused_on_an_engine_with_its_own_compute() -> None:
    engine = ScriptedEngine(script=lambda r: "a b c d e f", token_delay_s=0.01, shares_local_compute=False)
    scheduler = Scheduler(engine, BackgroundPolicy(resume_after_quiet_s=0.05))
    background = scheduler.submit(request("d", Priority.BACKGROUND), "c\x00gen", "c")
    reader = asyncio.create_task(collect(background))
    await asyncio.sleep(0.02)
    await collect(scheduler.submit(request("k"), "c\x00doc", "c"))
    await reader
    assert scheduler.background.paused == 0


async def test_background_beyond_the_waiting_limit_is_shed_with_a_reason() -> None:
    engine = ScriptedEngine(script=lambda r: "a b c", token_delay_s=0.01)
    scheduler = Scheduler(engine, BackgroundPolicy(max_waiting=2, resume_after_quiet_s=0.05))
    keystroke = scheduler.submit(request("k", max_tokens=50), "c\x00doc", "c")
    engine.script = lambda r: " ".join(["k"] * 20) if r.priority == Priority.INTERACTIVE else "a b c"
    waiting = [scheduler.submit(request(f"b{i}", Priority.BACKGROUND), f"c\x00gen{i}", "c") for i in range(3)]
    results = await asyncio.gather(collect(keystroke), *(collect(h) for h in waiting))
    reasons = [final.finish_reason for _, final in results[1:]]
    assert reasons.count(FinishReason.SHED) == 1 and reasons.count(FinishReason.STOP) == 2
    shed = next(final for _, final in results[1:] if final.finish_reason == FinishReason.SHED)
    assert "already waiting" in shed.text and scheduler.background.shed == 1


async def test_an_engine_error_ends_the_stream_with_its_message() -> None:
    engine = ScriptedEngine(fail_with=engine_error("the model file is corrupt"))
    scheduler = Scheduler(engine)
    _, final = await collect(scheduler.submit(request(), "c\x00doc", "c"))
    assert final.finish_reason == FinishReason.ERROR and "corrupt" in final.text


async def test_cancelling_the_reader_stops_the_engine() -> None:
    engine = ScriptedEngine(script=lambda r: " ".join(["t"] * 100), token_delay_s=0.01)
    scheduler = Scheduler(engine)
    handle = scheduler.submit(request(max_tokens=200), "c\x00doc", "c")
    events = handle.events()
    await anext(events)
    await events.aclose()  # what a client that hangs up does
    await asyncio.sleep(0.05)
    assert engine.running == 0 and engine.cancel_counters.cancelled == 1
