"""`nearcode daemon`: load the model once, serve every editor of this user until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from nearcode import __version__
from nearcode.daemon.api import Services, build_app
from nearcode.daemon.canary import CanaryResult, run_canary
from nearcode.daemon.context.assembler import ContextAssembler
from nearcode.daemon.engines.base import Engine, EngineError
from nearcode.daemon.engines.factory import EngineOptions, build_engine, decide_engine
from nearcode.daemon.engines.starting import BackgroundStart
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.log_rotation import StderrRotation
from nearcode.daemon.model_family import family_for_model
from nearcode.daemon.model_store import ModelError, model_file_named, preset_serving, resolve_model
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import FamilyChoice
from nearcode.daemon.residency import ResidentEngine, resident_memory_bytes
from nearcode.daemon.scheduler import BackgroundPolicy, Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.daemon.workspace.registry import WorkspaceRegistry
from nearcode.daemon.workspace.routes import workspace_routes
from nearcode.shared import paths, privacy
from nearcode.shared.endpoint import Endpoint
from nearcode.shared.heap_trace import ENV as HEAP_TRACE_ENV
from nearcode.shared.heap_trace import heap_report, start_if_asked
from nearcode.shared.instance_lock import InstanceLock
from nearcode.shared.native_memory import allocator_report, tune_malloc

log = logging.getLogger("nearcode.daemon")

EXIT_ALREADY_RUNNING = 3
EXIT_MODEL_ERROR = 4
EXIT_ENGINE_ERROR = 5


@dataclass(frozen=True)
class DaemonConfig:
    model: str = ""  # preset name or GGUF path; empty: the default preset
    engine: str = "auto"  # auto, llamacpp, vllm, openai (daemon/engines/engine_choice.py)
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    family: str | None = None  # override the detected prompt family
    parallel_slots: int = 4
    threads: int = 0
    transport: str = "auto"  # auto (unix socket, else tcp), unix, tcp
    prompt_tokens: int = PromptBudget().total_tokens
    background_pause: bool = True  # pause background work while keystrokes' requests run
    idle_unload_minutes: float = 30.0  # release the model after this long without work; 0: never


def bind_socket(transport: str) -> tuple[socket.socket, dict[str, Any]]:
    if transport in ("auto", "unix") and hasattr(socket, "AF_UNIX"):
        path = paths.socket_path()
        try:
            path.unlink(missing_ok=True)  # stale: we hold the lock, so no live daemon owns it
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(path))
            path.chmod(0o600)
            return sock, {"transport": "unix", "path": str(path)}
        except OSError:
            if transport == "unix":
                raise
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, {"transport": "tcp", "host": "127.0.0.1", "port": sock.getsockname()[1]}


def create_engine(config: DaemonConfig, model_path: Path | None, engine: str = "") -> Engine:
    return build_engine(
        engine or config.engine, model_path, config.engine_options, config.parallel_slots, config.threads
    )


def run_daemon(config: DaemonConfig) -> int:
    # The daemon needs no network: local-only unless NEARCODE_PRIVACY_MODE says otherwise (nearcode/shared/privacy.py).
    privacy.install_from_environment("daemon")
    # NEARCODE_LOG_LEVEL=debug: where each request's time went (counts only; never document text).
    # Only nearcode's own loggers: at debug, httpcore and watchdog would log every connection and
    # every file event of the workspace (paths), burying the counts this level is for.
    level = logging.getLevelName(os.environ.get("NEARCODE_LOG_LEVEL", "INFO").upper())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nearcode-daemon %(levelname)s %(message)s")
    logging.getLogger("nearcode").setLevel(level if isinstance(level, int) else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tune_malloc()  # before any engine thread: freed prompt states go back to the system
    if start_if_asked():
        log.info("tracing the Python heap (%s): status carries python_heap", HEAP_TRACE_ENV)
    lock = InstanceLock.acquire()
    if lock is None:
        endpoint = Endpoint.read(paths.address_file())
        where = f" (pid {endpoint.pid}, {endpoint.address})" if endpoint else ""
        print(f"nearcode: a daemon is already running{where}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    gguf = model_file_named(config.model)  # vLLM serves its converted form
    choice = decide_engine(config.engine, config.engine_options, gguf)
    log.info("engine %s: %s", choice.engine, choice.reason)
    try:
        # Remote engines need no local file unless one is named. vLLM serves the GGUF's converted
        # form unless --vllm-model names another (and the GGUF tells the prompt family).
        needs_file = (choice.engine == "llamacpp" or bool(config.model)
                      or (choice.engine == "vllm" and not config.engine_options.vllm_model))
        gguf_path = resolve_model(config.model) if needs_file else None
    except ModelError as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    try:
        return asyncio.run(_serve(config, gguf_path, choice.engine, choice.reason, lock))
    except EngineError as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return EXIT_ENGINE_ERROR
    finally:
        lock.release()


async def _serve(
    config: DaemonConfig, model_path: Path | None, engine_name: str, engine_reason: str, lock: InstanceLock
) -> int:
    started = time.monotonic()
    engine: Engine = create_engine(config, model_path, engine_name)
    loading: BackgroundStart | None = None
    residency: ResidentEngine | None = None
    if engine.info.starts_slowly:
        # Serve at once and load behind it: status says "loading vllm: <phase>" meanwhile. Never
        # released when idle: loading it again would cost the user half a minute.
        loading = BackgroundStart(engine, lambda message: daemon.fail(message))
        engine = loading
    else:
        # In memory only while used: released after the idle time, loaded again on demand.
        residency = ResidentEngine(
            lambda: create_engine(config, model_path, engine_name), idle_s=config.idle_unload_minutes * 60
        )
        engine = residency
        await engine.start()
    family = family_for_model(model_path, [engine.info.model], config.family)
    sock, where = bind_socket(config.transport)
    daemon = Daemon(config, engine, family, engine_reason, where, loading, residency)
    log.info(
        "serving %s on %s (%s, family %s) %s in %.1fs",
        engine.info.model, daemon.endpoint.address, engine.info.engine, family.template.family,
        "answering while the engine loads" if loading else "ready", time.monotonic() - started,
    )
    await daemon.serve(sock, lock)
    if daemon.start_failure:
        print(f"nearcode: {daemon.start_failure}", file=sys.stderr)
        return EXIT_ENGINE_ERROR
    return 0


class Daemon:
    """One running daemon: the engine, the scheduler and service in front of it, the HTTP server
    and the address file that lets editors find it, from start to clean shutdown."""

    def __init__(
        self, config: DaemonConfig, engine: Engine, family: FamilyChoice, engine_reason: str, where: dict[str, Any],
        loading: BackgroundStart | None = None, residency: ResidentEngine | None = None,
    ) -> None:
        self.engine = engine
        self.loading = loading  # the engine's start, while it runs in the background (vLLM)
        self.residency = residency  # the model's load and idle release (the embedded engine)
        self.start_failure = ""
        self._stopping: asyncio.Task[None] | None = None
        self.family = family
        self.template = family.template
        self.engine_reason = engine_reason
        self.canary = CanaryResult("pending")
        self.stats = DaemonStats()
        self.scheduler = Scheduler(engine, BackgroundPolicy(pause_for_interactive=config.background_pause))
        # Workspace indexes (daemon/workspace/): their scans wait while a keystroke's completion runs.
        self.workspaces = WorkspaceRegistry(should_yield=self.scheduler.gate.interactive_busy)
        # Completions' project context reads the index that holds the file (daemon/context/).
        self.services = Services.around(FimService(
            self.scheduler, self.template, PromptBudget(total_tokens=config.prompt_tokens), self.stats,
            context=ContextAssembler(self.workspaces.for_path),
        ))
        assumed = os.environ.get("NEARCODE_ASSUME_READ_SPEED")  # benchmarks on a busy machine (docs/benchmark.md)
        if assumed:
            self.services.fim.reading.assume_speed(float(assumed))
        token = secrets.token_urlsafe(32)
        self.endpoint = Endpoint(token=token, pid=os.getpid(), version=__version__, **where)
        app = build_app(
            self.services, self.describe, self.status, self.shutdown, token, workspace_routes(self.workspaces),
            model_loaded=lambda: residency is None or residency.loaded,
        )
        self.http = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3)
        )

    async def serve(self, sock: socket.socket, lock: InstanceLock) -> None:
        address_file = paths.address_file()
        self.endpoint.write(address_file)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: loop.create_task(self.shutdown()))
        if self.loading is not None:
            await self.loading.start()
        canary_task = asyncio.create_task(self.canary_probe())
        rotation_task = asyncio.create_task(StderrRotation(paths.daemon_log_file()).run())  # daemon.log bounded
        sweeper = asyncio.create_task(self.workspaces.run_sweeper())
        try:
            await self.http.serve(sockets=[sock])
        finally:
            canary_task.cancel()
            rotation_task.cancel()
            sweeper.cancel()
            self.workspaces.close()
            await self.scheduler.close()
            current = Endpoint.read(address_file)
            if current is not None and current.pid == os.getpid():
                address_file.unlink(missing_ok=True)
                if self.endpoint.transport == "unix":
                    with contextlib.suppress(OSError):
                        Path(self.endpoint.path).unlink()
            # No longer reachable: a new daemon may start while this one frees its engine.
            lock.release()
            await self.engine.close()
            log.info("stopped")

    def fail(self, message: str) -> None:
        """The engine could not start: stop serving (the exit code and message say why)."""
        self.start_failure = message
        self._stopping = asyncio.get_running_loop().create_task(self.shutdown())

    async def shutdown(self) -> None:
        # Cancel generations first: uvicorn's graceful shutdown would otherwise wait for every
        # open stream to finish.
        await self.scheduler.close()
        self.http.should_exit = True

    async def canary_probe(self) -> None:
        """In the background, once no generation has run for a moment: start is never delayed, an
        editor's first request never shares the CPU with it, a bad template is reported, not fatal."""
        if self.loading is not None:
            try:
                await self.loading.wait()
            except EngineError:
                return  # the start failure is reported (status, log, exit code); no canary
        await self.scheduler.gate.idle_for(2.0, give_up_s=60)  # then it runs anyway
        self.canary = await run_canary(self.engine, self.template)
        log.log(logging.INFO if self.canary.status == "ok" else logging.WARNING,
                "canary %s: %r %s", self.canary.status, self.canary.answer, self.canary.detail)
        if self.canary.status != "error":
            await self.services.fim.read_ahead.measure_speed()

    def describe(self) -> dict[str, Any]:
        """`/api/model`: what serves, and why."""
        info, reading = self.engine.info, self.services.fim.reading
        return {
            "engine": info.engine,
            "model": info.model,
            "model_path": info.model_path,
            "preset": preset_serving(info.model_path),  # an editor's `model` setting is checked against it
            "family": self.template.family,
            "template": self.template.template,
            "context_tokens": info.context_tokens,
            "parallel_slots": info.parallel_slots,
            # Several requests share one pass over the weights (vLLM): alternatives are cheap.
            "batches": not info.shares_local_compute,
            "prompt_budget_tokens": reading.budget.total_tokens,
            "prompt_tokens_per_s": round(reading.tokens_per_s, 1) if reading.tokens_per_s else None,
            # What one editor's cold prompt may hold at that speed (the configured budget until measured).
            "cold_prompt_tokens": reading.cold_prompt_tokens(),
            "fim_mode": self.template.mode,
            "family_reason": self.family.reason,
            "engine_reason": self.engine_reason,
            "engine_metadata": info.metadata,
            "canary": self.canary.as_dict(),
        }

    def cache_sizes(self) -> dict[str, int]:
        """What the daemon keeps between requests, each with its bound (docs/protocol.md)."""
        return {
            "prompt_anchors": self.services.fim.prompts.anchor_count,  # <= ANCHORS_KEPT (512)
            "streams": self.scheduler.stream_count,  # requests in flight (superseded ones end)
            "gate_waiters": self.scheduler.gate.waiter_count,  # queued for an engine slot
            "latency_samples": len(self.stats.latencies_ms),  # <= 2000
            "token_counts": len(self.services.fim.prompts.count_tokens),  # <= COUNTS_KEPT (4096), digests
        }

    async def status(self) -> dict[str, Any]:
        """`/api/status`: `describe()` plus what the daemon has done, and the engine's own figures."""
        counters, gate, loading, residency = self.engine.cancel_counters, self.scheduler.gate, self.loading, self.residency
        return {
            "version": __version__,
            "pid": os.getpid(),
            "transport": self.endpoint.transport,
            "address": self.endpoint.address,
            "state": loading.state if loading else "ready",  # loading, ready or failed
            "state_message": loading.message() if loading else "",
            "engine_ready_after_s": round(loading.ready_after_s, 1) if loading and loading.ready_after_s else None,
            "engine_runtime": await self.engine.runtime_status(),  # vLLM: prefix-cache hit rate, queue
            **self.describe(),
            **self.stats.snapshot(),
            "speculation": self.stats.speculation(self.engine.info.speculation),
            "cancelled_in_engine": counters.cancelled,
            "tokens_after_cancel_total": counters.tokens_after_cancel_total,
            "tokens_after_cancel_max": counters.tokens_after_cancel_max,
            "running": {p.name.lower(): n for p, n in gate.running.items()},
            "background": {"paused": self.scheduler.background.paused, "shed": self.scheduler.background.shed},
            "anchored_prompts": self.services.fim.prompts.anchored_prompts,
            "caches": self.cache_sizes(),
            "warm_prompts": self.services.fim.prompts.warm_prompts,
            "prefills_done": self.services.fim.read_ahead.prefills_done,
            "network": privacy.network_status(),
            "workspace": self.workspaces.status(),
            "memory_rss_bytes": resident_memory_bytes(),
            "allocator": allocator_report(),  # malloc in use / free / mapped, CPython blocks (the soak)
            "python_heap": heap_report(),  # None unless NEARCODE_TRACE_HEAP=1 (nearcode/shared/heap_trace.py)
            "model_state": _model_state(loading, residency),
            "idle_unload_s": residency.idle_s if residency and residency.releasable else 0,
            "model_unloads": residency.counters.unloads if residency else 0,
            "model_reloads": residency.counters.reloads if residency else 0,
            "model_load_ms": residency.counters.last_load_ms if residency else (
                round(loading.ready_after_s * 1000, 1) if loading and loading.ready_after_s else None),
        }


def _model_state(loading: BackgroundStart | None, residency: ResidentEngine | None) -> str:
    """loaded, loading or released (after idle time; the next request loads it again)."""
    if loading is not None:
        return "loaded" if loading.state == "ready" else "loading"
    if residency is None or residency.loaded:
        return "loaded"
    return "loading" if residency.loading else "released"
