"""The daemon's request counters (daemon/stats.py): every streamed request counted once, from its
final event, however it ends (fast tier: scripted engine)."""

from __future__ import annotations

import contextlib

import pytest

from nearcode.daemon.api import Services
from nearcode.daemon.engines.base import EngineError
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.daemon.streams import ServiceError
from nearcode.shared.protocol.daemon_api import (
    ChatMessageIn,
    DeltaEvent,
    DoneEvent,
    FimRequest,
    GenerateRequest,
)
from tests.scripted_engine import ScriptedEngine


def service(engine: ScriptedEngine) -> FimService:
    return FimService(Scheduler(engine), fim_templates()["qwen2.5-coder"], PromptBudget(total_tokens=512), DaemonStats())


def counted(stats: DaemonStats, done: DoneEvent) -> None:
    """The stats hold exactly this one request, as its final event says."""
    assert stats.requests == 1 and dict(stats.finish_reasons) == {done.finish_reason: 1}
    assert (stats.prompt_tokens, stats.cached_tokens, stats.generated_tokens) == (
        done.prompt_tokens, done.cached_tokens, done.generated_tokens,
    )
    assert list(stats.latencies_ms) == [done.elapsed_ms]


async def test_a_request_with_alternatives_counts_once_from_its_first_final_event() -> None:
    svc = service(ScriptedEngine(script=lambda r: "x = 1\n"))
    events = [e async for e in svc.stream(FimRequest(prefix="a = ", mode="single", n=3))]
    finals = [e for e in events if isinstance(e, DoneEvent)]
    assert len(finals) == 3
    counted(svc.stats, next(e for e in finals if e.index == 0))


async def test_generate_and_a_raw_completion_count_once_each() -> None:
    services = Services.around(service(ScriptedEngine(script=lambda r: "fine\n")))
    request = GenerateRequest(messages=[ChatMessageIn(role="user", content="hi")])
    generated = [e async for e in services.generate.generate(request)]
    assert isinstance(generated[-1], DoneEvent)
    counted(services.fim.stats, generated[-1])
    raw = [e async for e in services.generate.raw("a = ", max_tokens=8)]
    assert isinstance(raw[-1], DoneEvent) and services.fim.stats.requests == 2


async def test_a_client_that_goes_away_counts_as_cancelled_with_the_work_done() -> None:
    svc = service(ScriptedEngine(script=lambda r: "one two three four five six\n", token_delay_s=0.01))
    stream = svc.stream(FimRequest(prefix="a = ", mode="multi"))
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, DeltaEvent):
                break
    assert svc.stats.requests == 1 and dict(svc.stats.finish_reasons) == {"cancelled": 1}
    assert svc.stats.prompt_tokens > 0 and not svc.stats.latencies_ms  # nobody waited for the rest


async def test_a_failed_request_counts_as_an_error() -> None:
    svc = service(ScriptedEngine(script=lambda r: "x y z\n", fail_mid_stream_with=EngineError("boom")))
    with pytest.raises(ServiceError):
        _ = [e async for e in svc.stream(FimRequest(prefix="a = ", mode="single"))]
    assert svc.stats.requests == 1 and dict(svc.stats.finish_reasons) == {"error": 1}
