"""Who generates when: interactive completions first, stale requests cancelled at once.

Each request runs as its own asyncio task that feeds a queue; the HTTP response reads the queue.
Cancelling that task closes the engine's generator, which stops the engine. Two things cancel it:
the client going away, and a newer request on the same stream key (one document of one editor),
because nobody is waiting for the old answer any more.

Background work (docstrings, tests) on an engine that shares the machine's cores is paused while
interactive work runs and resumed once keystrokes go quiet: preemption by recomputation, as
vLLM does it, with the text streamed so far appended to the prompt, so the client sees a pause
and never a restart. Background work kept waiting too long, or queued beyond a limit, is shed
with a reason instead of piling up behind the user's typing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from nearcode.daemon.engines.base import (
    Engine,
    EngineError,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
    Priority,
)

log = logging.getLogger("nearcode.daemon")

DEADLINE_GRACE_S = 0.5  # past a request's deadline, the scheduler ends it if the engine has not


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

    With `one_at_a_time` (an engine that shares the machine's cores), interactive generations run
    one after another and speculative work waits until none runs or waits. On 2 cores a batch of
    four decodes no faster than four single ones (measured: 0.5B, ~90 ms a step for four against
    ~20 ms for one), so running four editors' requests together makes all four late for the pause
    they were asked in; one after another, the first ones are on time (bench/replay.py --editors 4).
    """

    def __init__(self, capacity: int, one_at_a_time: bool = False) -> None:
        self.capacity = max(1, capacity)
        self.one_at_a_time = one_at_a_time
        self.running: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.running_by_client: Counter[str] = Counter()
        self.running_interactive_by_client: Counter[str] = Counter()
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self.interactive_idle_since = time.monotonic()  # when the last interactive job ended
        self.admissions = 0  # generations admitted so far: tells a measurement whether it ran alone
        self._arrival_signals: set[asyncio.Event] = set()

    @contextlib.contextmanager
    def arrivals(self) -> Iterator[asyncio.Event]:
        """An event set whenever a generation is admitted or queued while the block runs."""
        signal = asyncio.Event()
        self._arrival_signals.add(signal)
        try:
            yield signal
        finally:
            self._arrival_signals.discard(signal)

    def _arrived(self) -> None:
        for signal in self._arrival_signals:
            signal.set()

    async def idle_for(self, seconds: float, give_up_s: float) -> bool:
        """Wait until no generation has run or waited for `seconds` (start-up work that must
        neither delay an editor's first request nor share the cores with it); False if that did
        not happen within `give_up_s`."""
        started = quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < seconds:
            if sum(self.running.values()) or self._waiters:
                quiet_since = time.monotonic()
            if time.monotonic() - started > give_up_s:
                return False
            await asyncio.sleep(0.1)
        return True

    def interactive_clients(self) -> set[str]:
        """Editors with an interactive generation running or waiting."""
        waiting = {w.client for w in self._waiters if w.priority == Priority.INTERACTIVE}
        return waiting | {c for c, n in self.running_interactive_by_client.items() if n > 0}

    def interactive_busy(self) -> bool:
        return self.running[Priority.INTERACTIVE] > 0 or self.waiting(Priority.INTERACTIVE) > 0

    @property
    def waiter_count(self) -> int:
        return len(self._waiters)

    def waiting(self, priority: Priority) -> int:
        return sum(1 for w in self._waiters if w.priority == priority)

    def _may_run(self, priority: Priority) -> bool:
        busy = sum(self.running.values())
        limit = self.capacity if priority == Priority.INTERACTIVE else max(1, self.capacity - 1)
        if busy >= limit:
            return False
        if not self.one_at_a_time:
            return True
        if priority == Priority.INTERACTIVE:
            return self.running[Priority.INTERACTIVE] == 0
        if priority == Priority.SPECULATIVE:
            return not self.interactive_busy()
        return True

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
            self._arrived()
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
        self.admissions += 1
        self._arrived()
        self.running[priority] += 1
        self.running_by_client[client] += 1
        if priority == Priority.INTERACTIVE:
            self.running_interactive_by_client[client] += 1

    def _release(self, priority: Priority, client: str) -> None:
        if priority == Priority.INTERACTIVE:
            self.interactive_idle_since = time.monotonic()
            self.running_interactive_by_client[client] -= 1
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
    """One scheduled generation: read `events()`; `cancel()` stops it.

    Its stream always ends with exactly one final chunk (a finish reason), whatever happens to the
    task that feeds it: finished, cancelled (even before it first ran), or failed with any error.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[GenerationChunk] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.cancel_reason = FinishReason.CANCELLED
        self.finished = False  # the final chunk is in the queue
        self.last_stats: GenerationStats | None = None  # the engine's counters as last reported

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.create_task(work)
        self.task.add_done_callback(self._on_task_done)

    def on_done(self, callback: Callable[[], object]) -> None:
        assert self.task is not None
        self.task.add_done_callback(lambda _: callback())

    def emit(self, chunk: GenerationChunk) -> None:
        """Queue a chunk; after the final one, nothing more."""
        if self.finished:
            return
        self.finished = chunk.finish_reason is not None
        self.last_stats = chunk.stats or self.last_stats
        self.queue.put_nowait(chunk)

    def emit_cancelled(self) -> None:
        """The final chunk of a stopped stream: with what the engine had done (a superseded
        request's prompt reading is a sample of the reading speed, daemon/prompting/read_budget.py)."""
        self.emit(GenerationChunk("", self.cancel_reason, self.last_stats or GenerationStats()))

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never runs its own handlers; one that failed
        # past them must not leave its reader waiting either.
        if task.cancelled():
            self.emit_cancelled()
        elif (error := task.exception()) is not None:
            log.error("generation failed", exc_info=error)
            self.emit(GenerationChunk(failure_message(error), FinishReason.ERROR, GenerationStats()))
        elif not self.finished:
            self.emit(GenerationChunk("", FinishReason.CANCELLED, GenerationStats()))

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


def failure_message(error: BaseException) -> str:
    """What an unexpected error says to the client: its kind and text; the traceback is logged."""
    if isinstance(error, EngineError):
        return str(error)
    return f"the daemon failed: {type(error).__name__}: {error} (details in the daemon's log)"


@dataclass(frozen=True)
class BackgroundPolicy:
    """How background work yields to keystrokes on an engine that shares the machine's cores."""

    pause_for_interactive: bool = True
    resume_after_quiet_s: float = 0.4  # keystrokes come in bursts: resume in a pause between them
    shed_after_waiting_s: float = 120.0  # paused or queued this long in all: shed
    max_waiting: int = 8  # a background job arriving with this many already waiting is shed


@dataclass
class BackgroundCounters:
    paused: int = 0
    shed: int = 0


class Shed(Exception):
    """Background work dropped under load; the message says why and what to do."""


class Scheduler:
    def __init__(self, engine: Engine, policy: BackgroundPolicy | None = None) -> None:
        self.engine = engine
        self.gate = PriorityGate(engine.info.parallel_slots, one_at_a_time=engine.info.shares_local_compute)
        self.policy = policy or BackgroundPolicy()
        self.background = BackgroundCounters()
        self._streams: dict[str, GenerationHandle] = {}
        self._pause_signals: set[asyncio.Event] = set()
        self._background_waiting = 0

    def submit(
        self, request: GenerationRequest, stream_key: str | None = None, client: str = ""
    ) -> GenerationHandle:
        handle = GenerationHandle()
        if stream_key is not None:
            previous = self._streams.get(stream_key)
            if previous is not None:
                previous.cancel(FinishReason.SUPERSEDED)
            self._streams[stream_key] = handle
        if request.priority == Priority.INTERACTIVE:
            for pause in self._pause_signals:
                pause.set()
        pausable = (
            request.priority == Priority.BACKGROUND
            and self.policy.pause_for_interactive
            and self.engine.info.shares_local_compute
        )
        handle.start(self._run(request, handle, stream_key, client, pausable))
        if request.deadline is not None:
            # The engine ends a request at its deadline as tokens flow; waiting for a slot, for the
            # engine's own queue or for the prompt's tokens to be counted has no such check.
            loop = asyncio.get_running_loop()
            at = loop.time() + max(0.0, request.deadline - time.monotonic()) + DEADLINE_GRACE_S
            timer = loop.call_at(at, handle.cancel, FinishReason.DEADLINE)
            handle.on_done(timer.cancel)
        return handle

    async def _run(
        self, request: GenerationRequest, handle: GenerationHandle, key: str | None, client: str, pausable: bool
    ) -> None:
        """Stream one generation into `handle`. A pausable one (background work on an engine that
        shares the cores) steps aside whenever a keystroke's request arrives and resumes, after a
        quiet moment, from the text it had streamed; every other one runs once, to its end."""
        produced = ""
        generated_before = 0
        waited_s = 0.0
        try:
            if pausable and self._background_waiting >= self.policy.max_waiting:
                raise Shed(f"shed: {self._background_waiting} background jobs are already waiting; try again later")
            while True:
                if pausable:
                    waited_s += await self._wait_for_quiet(self.policy.shed_after_waiting_s - waited_s)
                async with self.gate.slot(request.priority, client):
                    if pausable and self.gate.interactive_busy():
                        continue  # a keystroke came while we queued for the slot
                    resumed = dataclasses.replace(
                        request,
                        prompt=request.prompt + produced,
                        max_tokens=max(1, request.max_tokens - generated_before),
                    ) if produced else request  # fmt: skip
                    segment = await self._stream(resumed, handle, generated_before, pausable)
                if segment is None:
                    return
                self.background.paused += 1
                produced += segment
                generated_before += await self.engine.count_tokens(segment) if segment else 0
        except asyncio.CancelledError:
            handle.emit_cancelled()
        except Shed as exc:
            self.background.shed += 1
            handle.emit(GenerationChunk(str(exc), FinishReason.SHED, GenerationStats()))
        except Exception as exc:  # any engine or counting failure ends the stream with its reason
            if not isinstance(exc, EngineError):
                log.exception("generation failed")
            handle.emit(GenerationChunk(failure_message(exc), FinishReason.ERROR, GenerationStats()))
        finally:
            self._forget(key, handle)

    async def _wait_for_quiet(self, budget_s: float) -> float:
        """Wait until no interactive work has run for a moment; returns the seconds waited."""
        started = time.monotonic()
        self._background_waiting += 1
        try:
            while (
                self.gate.interactive_busy()
                or time.monotonic() - self.gate.interactive_idle_since < self.policy.resume_after_quiet_s
            ):
                if time.monotonic() - started > budget_s:
                    raise Shed(
                        f"shed: interactive completions kept this background job waiting "
                        f"{self.policy.shed_after_waiting_s:.0f} s; try again when typing pauses"
                    )
                await asyncio.sleep(0.05)
        finally:
            self._background_waiting -= 1
        return time.monotonic() - started

    async def _stream(
        self, request: GenerationRequest, handle: GenerationHandle, generated_before: int, pausable: bool
    ) -> str | None:
        """Stream `request` into `handle` until it finishes (None) or, if pausable, until an
        interactive request arrives (the text this segment streamed)."""
        pieces: list[str] = []
        generator = self.engine.generate(request)

        async def pump() -> None:
            async for chunk in generator:
                if chunk.finish_reason is not None:
                    if chunk.stats is not None:
                        chunk.stats.generated_tokens += generated_before
                    handle.emit(chunk)
                    return
                pieces.append(chunk.text)
                handle.emit(chunk)

        if not pausable:  # the hot path of every keystroke: no extra task
            try:
                await pump()
            finally:
                await generator.aclose()  # type: ignore[attr-defined]
            return None
        pause = asyncio.Event()
        self._pause_signals.add(pause)
        pumping = asyncio.create_task(pump())
        paused = asyncio.create_task(pause.wait())
        try:
            await asyncio.wait({pumping, paused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pause_signals.discard(pause)
            paused.cancel()
            if not pumping.done():
                pumping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pumping
            await generator.aclose()  # type: ignore[attr-defined]
        if pumping.done() and not pumping.cancelled():
            pumping.result()  # re-raises an engine error
            return None
        return "".join(pieces)

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def _forget(self, key: str | None, handle: GenerationHandle) -> None:
        if key is not None and self._streams.get(key) is handle:
            del self._streams[key]

    async def close(self) -> None:
        for handle in list(self._streams.values()):
            handle.cancel()
