"""The model in memory only while it is used: released after an idle time, loaded again on demand.

`ResidentEngine` stands in front of the real engine (same interface, so the scheduler and the FIM
service do not know it is there). When no generation or tokenization has run for `idle_s`, it
closes the engine, which frees the model's weights and KV cache; the next request builds a new
engine from the factory and starts it before going on (the embedded 0.5B model loads in a second
or two). A user who walks away for lunch gets their memory back; the first keystroke after it
pays one load.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from nearcode.daemon.engines.base import (
    CancelCounters,
    Engine,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
)

log = logging.getLogger("nearcode.daemon")

CHECK_INTERVAL_S = 1.0  # how often the idle clock is looked at (at most this late to release)


@dataclass
class ResidencyCounters:
    unloads: int = 0
    reloads: int = 0
    last_load_ms: float | None = None


class ResidentEngine:
    """An Engine that loads its model on demand and releases it after `idle_s` without work."""

    def __init__(self, factory: Callable[[], Engine], idle_s: float) -> None:
        self._factory = factory
        self._engine = factory()
        self.idle_s = idle_s  # 0: never release
        self.loaded = False
        self.loading = False
        self.counters = ResidencyCounters()
        self._lock = asyncio.Lock()
        self._active = 0  # generations and tokenizations in progress
        self._last_used = time.monotonic()
        self._retired = CancelCounters()  # counters of engines already released
        self._watcher: asyncio.Task[None] | None = None

    @property
    def info(self) -> EngineInfo:
        return self._engine.info

    @property
    def cancel_counters(self) -> CancelCounters:
        live = self._engine.cancel_counters
        return CancelCounters(
            cancelled=self._retired.cancelled + live.cancelled,
            tokens_after_cancel_total=self._retired.tokens_after_cancel_total + live.tokens_after_cancel_total,
            tokens_after_cancel_max=max(self._retired.tokens_after_cancel_max, live.tokens_after_cancel_max),
        )

    @property
    def releasable(self) -> bool:
        """A remote engine holds nothing in this machine's memory: there is nothing to release."""
        return self.idle_s > 0 and self._engine.info.engine != "openai"

    async def start(self) -> None:
        await self._ensure_loaded()
        if self.releasable and self._watcher is None:
            self._watcher = asyncio.create_task(self._release_when_idle())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        async with self._lock:
            if self.loaded:
                await self._engine.close()
                self.loaded = False

    def holds_slot(self, key: str) -> bool:
        """Whether the engine probably still caches what requests with affinity `key` read (the
        context block's cache view, daemon/context/document_prompts.py): never after a release."""
        if not self.loaded:
            return False
        holds: Callable[[str], bool] | None = getattr(self._engine, "holds_slot", None)
        return True if holds is None else holds(key)

    async def runtime_status(self) -> dict[str, object]:
        """The engine's own figures while it is loaded (a released one has none, and asking must
        not load it)."""
        return await self._engine.runtime_status() if self.loaded else {}

    async def count_tokens(self, text: str) -> int:
        async with self._using():
            return await self._engine.count_tokens(text)

    async def healing_piece(self, prefix: str) -> str:
        """The engine's (token healing, engines/token_healing.py); "" for an engine without it."""
        piece_of: Callable[[str], Awaitable[str]] | None = getattr(self._engine, "healing_piece", None)
        if piece_of is None:
            return ""
        async with self._using():
            return await piece_of(prefix)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        async with self._using(), contextlib.aclosing(self._engine.generate(request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                yield chunk

    @contextlib.asynccontextmanager
    async def _using(self) -> AsyncIterator[None]:
        self._active += 1  # counted before loading: the watcher never releases under a waiter
        try:
            await self._ensure_loaded()
            yield
        finally:
            self._active -= 1
            self._last_used = time.monotonic()

    async def _ensure_loaded(self) -> None:
        if self.loaded:
            return
        async with self._lock:
            if self.loaded:
                return
            started = time.monotonic()
            self.loading = True
            try:
                await self._engine.start()
            finally:
                self.loading = False
            self.loaded = True
            self.counters.last_load_ms = round((time.monotonic() - started) * 1000, 1)
            if self.counters.unloads:
                self.counters.reloads += 1
                log.info("model loaded again in %.0f ms", self.counters.last_load_ms)

    async def _release_when_idle(self) -> None:
        while True:
            await asyncio.sleep(min(CHECK_INTERVAL_S, self.idle_s))
            if self.loaded and not self._active and time.monotonic() - self._last_used >= self.idle_s:
                async with self._lock:
                    if not self.loaded or self._active:
                        continue
                    self._retired = self.cancel_counters
                    await self._engine.close()
                    # A closed engine does not start again: the next load starts a new one (built
                    # now, which loads nothing, so its counters start from zero at once).
                    self._engine = self._factory()
                    self.loaded = False
                    self.counters.unloads += 1
                    _return_freed_memory()
                log.info("model released after %.0f s idle", self.idle_s)


def _return_freed_memory() -> None:
    """glibc keeps freed heap pages for reuse; after dropping a model that is hundreds of MB the
    user asked to get back. malloc_trim hands them to the system (a no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    if not name:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


def resident_memory_bytes() -> int | None:
    """This process's resident set size (VmRSS), or None where /proc is not available."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
