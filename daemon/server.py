"""`nearcode daemon`: load the model once, serve every editor of this user until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
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
from nearcode.daemon.api import build_app
from nearcode.daemon.canary import CanaryResult, run_canary
from nearcode.daemon.engines.base import Engine, EngineError
from nearcode.daemon.engines.factory import EngineOptions, build_engine, decide_engine
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.model_family import family_for_model
from nearcode.daemon.model_store import ModelError, resolve_model
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import FamilyChoice
from nearcode.daemon.residency import ResidentEngine, resident_memory_bytes
from nearcode.daemon.scheduler import BackgroundPolicy, Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.shared import paths, privacy
from nearcode.shared.endpoint import Endpoint

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


def acquire_lock() -> int | None:
    """Hold the per-user lock for the daemon's lifetime; None when another daemon holds it."""
    fd = os.open(paths.lock_file(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nearcode-daemon %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    lock = acquire_lock()
    if lock is None:
        endpoint = Endpoint.read(paths.address_file())
        where = f" (pid {endpoint.pid}, {endpoint.address})" if endpoint else ""
        print(f"nearcode: a daemon is already running{where}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    choice = decide_engine(config.engine, config.engine_options)
    log.info("engine %s: %s", choice.engine, choice.reason)
    try:
        # Remote engines need no local file unless one is named (vLLM may serve a local path).
        needs_file = choice.engine == "llamacpp" or bool(config.model)
        model_path = resolve_model(config.model) if needs_file else None
    except ModelError as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    try:
        return asyncio.run(_serve(config, model_path, choice.engine, choice.reason))
    except EngineError as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return EXIT_ENGINE_ERROR


async def _serve(config: DaemonConfig, model_path: Path | None, engine_name: str, engine_reason: str) -> int:
    started = time.monotonic()
    engine = ResidentEngine(
        lambda: create_engine(config, model_path, engine_name), idle_s=config.idle_unload_minutes * 60
    )
    await engine.start()
    family = family_for_model(model_path, [engine.info.model], config.family)
    sock, where = bind_socket(config.transport)
    daemon = Daemon(config, engine, family, engine_reason, where)
    log.info(
        "serving %s on %s (%s, family %s) ready in %.1fs",
        engine.info.model, daemon.endpoint.address, engine.info.engine, family.template.family,
        time.monotonic() - started,
    )
    await daemon.serve(sock)
    return 0


class Daemon:
    """One running daemon: the engine, the scheduler and service in front of it, the HTTP server
    and the address file that lets editors find it, from start to clean shutdown."""

    def __init__(
        self, config: DaemonConfig, engine: ResidentEngine, family: FamilyChoice, engine_reason: str,
        where: dict[str, Any],
    ) -> None:
        self.engine = engine
        self.family = family
        self.template = family.template
        self.engine_reason = engine_reason
        self.canary = CanaryResult("pending")
        self.stats = DaemonStats()
        self.scheduler = Scheduler(engine, BackgroundPolicy(pause_for_interactive=config.background_pause))
        self.service = FimService(
            self.scheduler, self.template, PromptBudget(total_tokens=config.prompt_tokens), self.stats
        )
        token = secrets.token_urlsafe(32)
        self.endpoint = Endpoint(token=token, pid=os.getpid(), version=__version__, **where)
        app = build_app(
            self.service, self.describe, self.status, self.shutdown, token, model_loaded=lambda: engine.loaded
        )
        self.http = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3)
        )

    async def serve(self, sock: socket.socket) -> None:
        address_file = paths.address_file()
        self.endpoint.write(address_file)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: loop.create_task(self.shutdown()))
        canary_task = asyncio.create_task(self.canary_probe())
        try:
            await self.http.serve(sockets=[sock])
        finally:
            canary_task.cancel()
            await self.scheduler.close()
            current = Endpoint.read(address_file)
            if current is not None and current.pid == os.getpid():
                address_file.unlink(missing_ok=True)
                if self.endpoint.transport == "unix":
                    with contextlib.suppress(OSError):
                        Path(self.endpoint.path).unlink()
            await self.engine.close()
            log.info("stopped")

    async def shutdown(self) -> None:
        # Cancel generations first: uvicorn's graceful shutdown would otherwise wait for every
        # open stream to finish.
        await self.scheduler.close()
        self.http.should_exit = True

    async def canary_probe(self) -> None:
        """In the background, once no generation has run for a moment: start is never delayed, an
        editor's first request never shares the CPU with it, a bad template is reported, not fatal."""
        quiet_since, give_up = time.monotonic(), time.monotonic() + 60
        while time.monotonic() < give_up and time.monotonic() - quiet_since < 2.0:
            if sum(self.scheduler.gate.running.values()):
                quiet_since = time.monotonic()
            await asyncio.sleep(0.25)
        self.canary = await run_canary(self.engine, self.template)
        log.log(logging.INFO if self.canary.status == "ok" else logging.WARNING,
                "canary %s: %r %s", self.canary.status, self.canary.answer, self.canary.detail)

    def describe(self) -> dict[str, Any]:
        """`/api/model`: what serves, and why."""
        info, service = self.engine.info, self.service
        return {
            "engine": info.engine,
            "model": info.model,
            "model_path": info.model_path,
            "family": self.template.family,
            "template": self.template.template,
            "context_tokens": info.context_tokens,
            "parallel_slots": info.parallel_slots,
            # Several requests share one pass over the weights (vLLM): alternatives are cheap.
            "batches": not info.shares_local_compute,
            "prompt_budget_tokens": service.budget.total_tokens,
            "prompt_tokens_per_s": round(service.prompt_tokens_per_s, 1) if service.prompt_tokens_per_s else None,
            "fim_mode": self.template.mode,
            "family_reason": self.family.reason,
            "engine_reason": self.engine_reason,
            "engine_metadata": info.metadata,
            "canary": self.canary.as_dict(),
        }

    def status(self) -> dict[str, Any]:
        """`/api/status`: `describe()` plus what the daemon has done."""
        counters, gate, residency = self.engine.cancel_counters, self.scheduler.gate, self.engine.counters
        return {
            "version": __version__,
            "pid": os.getpid(),
            "transport": self.endpoint.transport,
            "address": self.endpoint.address,
            **self.describe(),
            **self.stats.snapshot(),
            "cancelled_in_engine": counters.cancelled,
            "tokens_after_cancel_total": counters.tokens_after_cancel_total,
            "tokens_after_cancel_max": counters.tokens_after_cancel_max,
            "running": {p.name.lower(): n for p, n in gate.running.items()},
            "background": {"paused": self.scheduler.background.paused, "shed": self.scheduler.background.shed},
            "anchored_prompts": self.service.anchored_prompts,
            "network": privacy.network_status(),
            "memory_rss_bytes": resident_memory_bytes(),
            "model_state": "loaded" if self.engine.loaded else "loading" if self.engine.loading else "released",
            "idle_unload_s": self.engine.idle_s if self.engine.releasable else 0,
            "model_unloads": residency.unloads,
            "model_reloads": residency.reloads,
            "model_load_ms": residency.last_load_ms,
        }
