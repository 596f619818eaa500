"""Every daemon request ends with exactly one final event, whatever fails (fast tier: a scripted
engine behind the real scheduler, service and HTTP endpoint, no model).

Each of these hung on the old code: the stream never ended and the client waited out its read
timeout (120 s) for an answer that could not come.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from nearcode.daemon.api import Services, build_app
from nearcode.daemon.engines.base import FinishReason, GenerationRequest, Priority
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import BackgroundPolicy, Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.daemon.streams import ServiceError
from nearcode.shared.protocol.daemon_api import FimRequest
from tests.scripted_engine import ScriptedEngine
from tests.test_scheduler_logic import collect, request

WITHIN_S = 5.0  # far more than any of these needs; the old code never answered
TOKEN = "test-token"


def service_on(engine: ScriptedEngine) -> FimService:
    return FimService(Scheduler(engine), fim_templates()["qwen2.5-coder"], PromptBudget(), DaemonStats())


async def fim_events(svc: FimService, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST /api/fim through the daemon's real ASGI app; the NDJSON events."""

    async def nothing() -> None:
        return None

    app = build_app(Services.around(svc), dict, dict, nothing, TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await asyncio.wait_for(
            client.post("/api/fim", json=body, headers={"Authorization": f"Bearer {TOKEN}"}), WITHIN_S
        )
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines() if line]


def assert_one_final(events: list[dict[str, Any]]) -> dict[str, Any]:
    finals = [e for e in events if e["type"] in ("done", "error")]
    assert len(finals) == 1 and events[-1] is finals[0], events
    return finals[0]


async def test_an_unexpected_engine_exception_ends_the_stream_with_an_error_event() -> None:
    engine = ScriptedEngine(fail_with=ValueError("malformed chunk from the engine"))
    final = assert_one_final(await fim_events(service_on(engine), {"prefix": "x = ", "document": "d", "client": "c"}))
    assert final["type"] == "error" and "ValueError" in final["message"] and "malformed chunk" in final["message"]


async def test_an_exception_after_some_text_still_ends_the_stream_once() -> None:
    engine = ScriptedEngine(script=lambda r: "one two three", fail_mid_stream_with=IndexError("list index out of range"))
    events = await fim_events(service_on(engine), {"prefix": "x = ", "mode": "multi"})
    final = assert_one_final(events)
    assert final["type"] == "error" and "IndexError" in final["message"]


async def test_token_counting_failing_while_building_the_prompt_ends_with_an_error_event() -> None:
    engine = ScriptedEngine(count_fails_with=httpx.ConnectError("tokenizer endpoint went away"))
    final = assert_one_final(await fim_events(service_on(engine), {"prefix": "def f():\n    ", "suffix": "\n"}))
    assert final["type"] == "error" and "ConnectError" in final["message"]
    assert not engine.requests, "nothing was generated without a prompt"


async def test_the_service_raises_its_error_for_an_engine_exception() -> None:
    svc = service_on(ScriptedEngine(fail_with=KeyError("choices")))

    async def drain() -> None:
        async for _ in svc.stream(FimRequest(prefix="x = ")):
            pass

    try:
        await asyncio.wait_for(drain(), WITHIN_S)
    except ServiceError as exc:
        assert "KeyError" in str(exc)
    else:
        raise AssertionError("the engine's failure must reach the caller")


async def test_a_request_superseded_before_it_ever_ran_still_gets_its_final_event() -> None:
    engine = ScriptedEngine(script=lambda r: "a b c")
    scheduler = Scheduler(engine)
    first = scheduler.submit(request("a"), "c\x00doc", "c")
    second = scheduler.submit(request("b"), "c\x00doc", "c")  # same tick: the first never started
    (_, first_final), (_, second_final) = await asyncio.wait_for(asyncio.gather(collect(first), collect(second)), WITHIN_S)
    assert first_final.finish_reason == FinishReason.SUPERSEDED
    assert second_final.finish_reason == FinishReason.STOP


async def test_counting_a_paused_jobs_text_failing_ends_it_with_an_error() -> None:
    engine = ScriptedEngine(
        script=lambda r: "k" if r.priority == Priority.INTERACTIVE else " ".join(f"w{i}" for i in range(40)),
        token_delay_s=0.01,
    )
    scheduler = Scheduler(engine, BackgroundPolicy(resume_after_quiet_s=0.05))
    background = scheduler.submit(GenerationRequest("doc:", 200, priority=Priority.BACKGROUND), "c\x00gen", "c")
    reader = asyncio.create_task(collect(background))
    await asyncio.sleep(0.08)
    engine.count_fails_with = RuntimeError("tokenizer crashed")  # counted when the job pauses
    await collect(scheduler.submit(request("k"), "c\x00doc", "c"))
    _, final = await asyncio.wait_for(reader, WITHIN_S)
    assert final.finish_reason == FinishReason.ERROR and "tokenizer crashed" in final.text


async def test_a_request_stuck_before_the_engine_ends_at_its_deadline() -> None:
    # Nothing reaches the engine's own deadline check: it is still "reading the prompt".
    engine = ScriptedEngine(prompt_delay_s=30)
    scheduler = Scheduler(engine)
    deadline = time.monotonic() + 0.3
    handle = scheduler.submit(GenerationRequest("p", 10, deadline=deadline), "c\x00doc", "c")
    _, final = await asyncio.wait_for(collect(handle), WITHIN_S)
    assert final.finish_reason == FinishReason.DEADLINE and time.monotonic() - deadline < 2


async def test_a_request_queued_for_a_slot_ends_at_its_deadline() -> None:
    engine = ScriptedEngine(script=lambda r: " ".join(["t"] * 500), token_delay_s=0.01, parallel_slots=1)
    scheduler = Scheduler(engine)
    long = scheduler.submit(GenerationRequest("a", 1000), "c\x00one", "c")
    queued = scheduler.submit(GenerationRequest("b", 10, deadline=time.monotonic() + 0.3), "c\x00two", "c")
    _, final = await asyncio.wait_for(collect(queued), WITHIN_S)
    assert final.finish_reason == FinishReason.DEADLINE
    long.cancel()
    assert engine.requests[-1].prompt == "a", "the queued request never reached the engine"


async def test_every_choice_of_an_n_request_reaches_the_client_with_its_own_done() -> None:
    """n > 1: each choice ends with its own done event. The endpoint once took the first choice's
    done for the stream's end and dropped every alternative after it (all of them on the embedded
    engine, which runs them after the first; on vLLM, whatever came after the first finished)."""
    for batches in (False, True):
        engine = ScriptedEngine(script=lambda r: f"{r.temperature} + 1\n", shares_local_compute=not batches)
        body = {"prefix": "x = ", "n": 3, "document": "d", "client": "c", "mode": "multi"}
        events = await fim_events(service_on(engine), body)
        dones = sorted(e["index"] for e in events if e["type"] == "done")
        assert dones == [0, 1, 2], (batches, events)
        texts = {i: "".join(e["text"] for e in events if e["type"] == "delta" and e["index"] == i) for i in dones}
        assert len(set(texts.values())) == 3, texts  # greedy, then two temperatures: three answers
        assert not [e for e in events if e["type"] == "error"], events
