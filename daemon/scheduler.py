"""Who generates when: interactive completions first, stale requests cancelled at once.

Each request runs as its own asyncio task that feeds a queue; the HTTP response reads the queue.
Cancelling that task closes the engine's generator, which stops the engine. Two things cancel it:
the client going away, and a newer request on the same stream key (one document of one editor),
because nobody is waiting for the old answer any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from daemon.engines.base import (
    Engine,
    EngineError,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
    Priority,
)


@dataclass
class _Waiter:
    priority: Priority
    client: str
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class PriorityGate:
    """At most `capacity` generations at once; waiters admitted by priority, then by fair share
    (the editor with fewer generations running goes first), then by arrival.

    Work below interactive priority never takes the last slot, so a keystroke always finds one.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.running: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.running_by_client: Counter[str] = Counter()
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()

    def waiting(self, priority: Priority) -> int:
        return sum(1 for w in self._waiters if w.priority == priority)

    def _may_run(self, priority: Priority) -> bool:
        busy = sum(self.running.values())
        limit = self.capacity if priority == Priority.INTERACTIVE else max(1, self.capacity - 1)
        return busy < limit

    def _rank(self, waiter: _Waiter) -> tuple[int, int, int]:
        return (int(waiter.priority), self.running_by_client[waiter.client], waiter.seq)

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority, client: str = "") -> AsyncIterator[None]:
        # Go at once if allowed and nobody of the same or higher priority is queued.
        if self._may_run(priority) and all(w.priority > priority for w in self._waiters):
            self._admit(priority, client)
        else:
            waiter = _Waiter(priority, client, next(self._seq), asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)
            try:
                await waiter.future
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.future.done() and not waiter.future.cancelled():
                    self._release(priority, client)  # admitted just as we were cancelled
                raise
        try:
            yield
        finally:
            self._release(priority, client)

    def _admit(self, priority: Priority, client: str) -> None:
        self.running[priority] += 1
        self.running_by_client[client] += 1

    def _release(self, priority: Priority, client: str) -> None:
        self.running[priority] -= 1
        self.running_by_client[client] -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = min(self._waiters, key=self._rank)
            if not self._may_run(waiter.priority):
                return
            self._waiters.remove(waiter)
            if waiter.future.done():
                continue
            self._admit(waiter.priority, waiter.client)
            waiter.future.set_result(None)


class GenerationHandle:
    """One scheduled generation: read `events()`; `cancel()` stops it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[GenerationChunk] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.cancel_reason = FinishReason.CANCELLED

    def cancel(self, reason: FinishReason = FinishReason.CANCELLED) -> None:
        if self.task is not None and not self.task.done():
            self.cancel_reason = reason
            self.task.cancel()

    async def events(self) -> AsyncIterator[GenerationChunk]:
        try:
            while True:
                chunk = await self.queue.get()
                yield chunk
                if chunk.finish_reason is not None:
                    return
        finally:
            self.cancel()


class Scheduler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gate = PriorityGate(engine.info.parallel_slots)
        self._streams: dict[str, GenerationHandle] = {}

    def submit(
        self, request: GenerationRequest, stream_key: str | None = None, client: str = ""
    ) -> GenerationHandle:
        handle = GenerationHandle()
        if stream_key is not None:
            previous = self._streams.get(stream_key)
            if previous is not None:
                previous.cancel(FinishReason.SUPERSEDED)
            self._streams[stream_key] = handle
        handle.task = asyncio.create_task(self._run(request, handle, stream_key, client))
        return handle

    async def _run(
        self, request: GenerationRequest, handle: GenerationHandle, key: str | None, client: str
    ) -> None:
        try:
            async with self.gate.slot(request.priority, client):
                generator = self.engine.generate(request)
                try:
                    async for chunk in generator:
                        handle.queue.put_nowait(chunk)
                        if chunk.finish_reason is not None:
                            return
                finally:
                    await generator.aclose()  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            handle.queue.put_nowait(GenerationChunk("", handle.cancel_reason, GenerationStats()))
        except EngineError as exc:
            handle.queue.put_nowait(GenerationChunk(str(exc), FinishReason.ERROR, GenerationStats()))
        finally:
            if key is not None and self._streams.get(key) is handle:
                del self._streams[key]

    async def close(self) -> None:
        for handle in list(self._streams.values()):
            handle.cancel()
