"""An engine that loads in the background while the daemon already answers.

vLLM takes ~30 s to load on a CPU (minutes with CUDA graphs on a GPU). Rather than keep every
editor's language server waiting on a daemon that does not answer at all, the daemon binds its
socket at once and reports the loading phase in `/api/status` (the language servers show it in the
editor's status); requests that arrive meanwhile wait for the engine, within their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from nearcode.daemon.engines.base import (
    CancelCounters,
    Engine,
    EngineError,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
)

log = logging.getLogger("nearcode.daemon")


class BackgroundStart:
    """Wraps an engine whose start() runs as a task; `state` is loading, ready or failed."""

    def __init__(self, engine: Engine, on_failure: Callable[[str], None]) -> None:
        self.engine = engine
        self._on_failure = on_failure
        self._task: asyncio.Task[None] | None = None
        self.started_at = time.monotonic()
        self.ready_after_s: float | None = None
        self.error = ""

    @property
    def state(self) -> str:
        if self.error:
            return "failed"
        return "ready" if self.ready_after_s is not None else "loading"

    def message(self) -> str:
        """What the editors' status line says: "loading vllm: loading the weights (12 s)"."""
        if self.state == "failed":
            return f"{self.engine.info.engine} failed to start: {self.error}"
        if self.state == "ready":
            return ""
        phase = self.engine.info.metadata.get("startup_phase") or "starting"
        return f"loading {self.engine.info.engine}: {phase}"

    @property
    def info(self) -> EngineInfo:
        return self.engine.info

    @property
    def cancel_counters(self) -> CancelCounters:
        return self.engine.cancel_counters

    async def start(self) -> None:
        self.started_at = time.monotonic()
        self._task = asyncio.create_task(self._start(), name="engine start")

    async def _start(self) -> None:
        try:
            await self.engine.start()
        except EngineError as exc:
            self.error = str(exc)
            log.error("the %s engine failed to start: %s", self.engine.info.engine, exc)
            self._on_failure(self.error)
            return
        self.ready_after_s = time.monotonic() - self.started_at
        log.info("the %s engine is ready after %.1f s", self.engine.info.engine, self.ready_after_s)

    async def wait(self, deadline: float | None = None) -> None:
        """Until the engine is up; EngineError if it failed or `deadline` passes first."""
        if self._task is None:
            raise EngineError("engine not started")
        if not self._task.done():
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
        if self.error:
            raise EngineError(self.error)
        if self.ready_after_s is None:
            raise EngineError(self.message() + " - not ready yet")

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.engine.close()

    async def count_tokens(self, text: str) -> int:
        await self.wait()
        return await self.engine.count_tokens(text)

    async def healing_piece(self, prefix: str) -> str:
        """The engine's (token healing, engines/token_healing.py); "" for an engine without it."""
        await self.wait()
        piece_of: Callable[[str], Awaitable[str]] | None = getattr(self.engine, "healing_piece", None)
        return await piece_of(prefix) if piece_of is not None else ""

    async def runtime_status(self) -> dict[str, object]:
        return await self.engine.runtime_status() if self.state == "ready" else {}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        await self.wait(request.deadline)
        async with contextlib.aclosing(self.engine.generate(request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                yield chunk
