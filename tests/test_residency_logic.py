"""Idle unload (fast tier: scripted engine): the model is released after the idle time, never
under a running generation, loaded again by the next request, which is told so first."""

from __future__ import annotations

import asyncio
import json

import httpx

from nearcode.daemon.api import Services, build_app
from nearcode.daemon.engines.base import GenerationRequest
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.residency import ResidentEngine, resident_memory_bytes
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from tests.scripted_engine import ScriptedEngine


class Engines:
    """The factory: every engine it built (a released one is never started again)."""

    def __init__(self, **kwargs: object) -> None:
        self.built: list[ScriptedEngine] = []
        self.kwargs = kwargs

    def __call__(self) -> ScriptedEngine:
        engine = ScriptedEngine(script=lambda r: "pass\n", **self.kwargs)  # type: ignore[arg-type]
        self.built.append(engine)
        return engine


async def wait_until(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def drain(engine: ResidentEngine) -> str:
    return "".join([c.text async for c in engine.generate(GenerationRequest(prompt="x", max_tokens=8))])


async def test_released_after_idle_and_loaded_again_on_the_next_request() -> None:
    engines = Engines()
    resident = ResidentEngine(engines, idle_s=0.2)
    await resident.start()
    try:
        assert resident.loaded and len(engines.built) == 1
        await wait_until(lambda: not resident.loaded)
        assert resident.counters.unloads == 1
        assert await drain(resident) == "pass\n"
        assert resident.loaded and resident.counters.reloads == 1 and len(engines.built) == 2
        assert engines.built[1].requests and not engines.built[0].requests
    finally:
        await resident.close()


async def test_never_released_under_a_running_generation_or_when_idle_is_zero() -> None:
    engines = Engines(token_delay_s=0.02)
    resident = ResidentEngine(engines, idle_s=0.05)
    await resident.start()
    try:
        long = GenerationRequest(prompt="x", max_tokens=64)
        engines.built[0].script = lambda r: "a " * 8  # 16 tokens x 0.02 s: six idle times and more
        text = "".join([c.text async for c in resident.generate(long)])
        assert text == "a " * 8 and resident.counters.unloads == 0
    finally:
        await resident.close()
    never = ResidentEngine(Engines(), idle_s=0)
    await never.start()
    await asyncio.sleep(0.1)  # what made the other one idle twice over
    assert never.loaded and not never.releasable
    await never.close()


async def test_a_fim_request_to_a_released_model_says_loading_first() -> None:
    resident = ResidentEngine(Engines(), idle_s=0.2)
    await resident.start()
    service = FimService(Scheduler(resident), fim_templates()["qwen2.5-coder"], PromptBudget(), DaemonStats())

    async def shutdown() -> None:
        return None

    app = build_app(Services.around(service), dict, dict, shutdown, "t", model_loaded=lambda: resident.loaded)
    try:
        await wait_until(lambda: not resident.loaded)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
            response = await client.post("/api/fim", json={"prefix": "def f():\n    "},
                                         headers={"Authorization": "Bearer t"})
            events = [json.loads(line) for line in response.text.splitlines()]
            assert events[0] == {"type": "status", "state": "loading", "message": events[0]["message"]}
            assert events[-1]["type"] == "done" and resident.loaded
            again = await client.post("/api/fim", json={"prefix": "x = "}, headers={"Authorization": "Bearer t"})
            assert all(json.loads(line)["type"] != "status" for line in again.text.splitlines())
    finally:
        await resident.close()


def test_resident_memory_is_read_from_proc() -> None:
    rss = resident_memory_bytes()
    assert rss is not None and rss > 10 * 2**20
