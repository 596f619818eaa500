"""The priority gate: interactive first, background never takes the last slot."""

from __future__ import annotations

import asyncio

from nearcode.daemon.engines.base import Priority
from nearcode.daemon.scheduler import PriorityGate


async def test_interactive_waiters_go_before_background() -> None:
    gate = PriorityGate(2)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, priority: Priority) -> None:
        async with gate.slot(priority):
            order.append(name)
            await release.wait()

    holders = [asyncio.create_task(hold(f"busy{i}", Priority.INTERACTIVE)) for i in range(2)]
    await asyncio.sleep(0)
    waiting = [
        asyncio.create_task(hold("background", Priority.BACKGROUND)),
        asyncio.create_task(hold("interactive", Priority.INTERACTIVE)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*holders, *waiting)
    assert order[2:] == ["interactive", "background"]


async def test_background_leaves_a_slot_for_keystrokes() -> None:
    gate = PriorityGate(2)
    entered = asyncio.Event()
    hold = asyncio.Event()

    async def background() -> None:
        async with gate.slot(Priority.BACKGROUND):
            entered.set()
            await hold.wait()

    first = asyncio.create_task(background())
    second = asyncio.create_task(background())
    await entered.wait()
    await asyncio.sleep(0.01)
    assert gate.running[Priority.BACKGROUND] == 1  # the second background job waits
    async with gate.slot(Priority.INTERACTIVE):
        assert gate.running[Priority.INTERACTIVE] == 1
    hold.set()
    await asyncio.gather(first, second)


async def test_cancelled_waiter_frees_its_place() -> None:
    gate = PriorityGate(1)
    async with gate.slot(Priority.INTERACTIVE):
        waiter = asyncio.create_task(gate.slot(Priority.INTERACTIVE).__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert sum(gate.running.values()) == 0
    async with gate.slot(Priority.BACKGROUND):
        pass


async def test_fair_share_between_editors() -> None:
    gate = PriorityGate(2)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(client: str) -> None:
        async with gate.slot(Priority.INTERACTIVE, client):
            order.append(client)
            await release.wait()

    busy = [asyncio.create_task(hold("a")), asyncio.create_task(hold("a"))]
    await asyncio.sleep(0)
    queued = [asyncio.create_task(hold(c)) for c in ("a", "a", "b")]
    await asyncio.sleep(0)
    busy[0].cancel()  # one of editor a's slots frees up
    for _ in range(5):
        await asyncio.sleep(0)
    assert order[2] == "b", "the editor with nothing running goes before a third request of a"
    release.set()
    await asyncio.gather(*busy, *queued, return_exceptions=True)


async def test_one_at_a_time_runs_interactive_requests_in_turn_and_speculation_after() -> None:
    gate = PriorityGate(4, one_at_a_time=True)
    order: list[str] = []
    releases = {name: asyncio.Event() for name in ("a", "b", "c", "spec")}

    async def hold(name: str, priority: Priority) -> None:
        async with gate.slot(priority, name):
            order.append(name)
            await releases[name].wait()

    tasks = [asyncio.create_task(hold("a", Priority.INTERACTIVE))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(hold("spec", Priority.SPECULATIVE)),
              asyncio.create_task(hold("b", Priority.INTERACTIVE)),
              asyncio.create_task(hold("c", Priority.INTERACTIVE))]
    await asyncio.sleep(0.01)
    assert order == ["a"], "the others wait while one interactive generation runs"
    releases["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b"]
    releases["b"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c"], "speculation waits while an interactive request waits"
    releases["c"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c", "spec"]
    releases["spec"].set()
    await asyncio.gather(*tasks)


async def test_without_one_at_a_time_interactive_requests_share_the_slots() -> None:
    gate = PriorityGate(4)
    release = asyncio.Event()
    running: list[str] = []

    async def hold(name: str) -> None:
        async with gate.slot(Priority.INTERACTIVE, name):
            running.append(name)
            await release.wait()

    tasks = [asyncio.create_task(hold(n)) for n in "abc"]
    await asyncio.sleep(0.01)
    assert sorted(running) == ["a", "b", "c"]  # an engine that batches cheaply takes them together
    release.set()
    await asyncio.gather(*tasks)
