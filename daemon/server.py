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
    engine = create_engine(config, model_path, engine_name)
    await engine.start()
    family = family_for_model(model_path, [engine.info.model], config.family)
    template = family.template
    canary = CanaryResult("pending")
    stats = DaemonStats()
    scheduler = Scheduler(engine, BackgroundPolicy(pause_for_interactive=config.background_pause))
    service = FimService(scheduler, template, PromptBudget(total_tokens=config.prompt_tokens), stats)
    assumed = os.environ.get("NEARCODE_ASSUME_READ_SPEED")  # benchmarks on a busy machine (docs/benchmark.md)
    if assumed:
        service.assume_speed(float(assumed))
    token = secrets.token_urlsafe(32)
    sock, where = bind_socket(config.transport)
    endpoint = Endpoint(token=token, pid=os.getpid(), version=__version__, **where)
    uv_server: uvicorn.Server | None = None

    async def shutdown() -> None:
        # Cancel generations first: uvicorn's graceful shutdown would otherwise wait for every
        # open stream to finish.
        await scheduler.close()
        if uv_server is not None:
            uv_server.should_exit = True

    def describe() -> dict[str, Any]:
        info = engine.info
        return {
            "engine": info.engine,
            "model": info.model,
            "model_path": info.model_path,
            "family": template.family,
            "template": template.template,
            "context_tokens": info.context_tokens,
            "parallel_slots": info.parallel_slots,
            "prompt_budget_tokens": service.budget.total_tokens,
            "prompt_tokens_per_s": round(service.prompt_tokens_per_s, 1) if service.prompt_tokens_per_s else None,
            "fim_mode": template.mode,
            "family_reason": family.reason,
            "engine_reason": engine_reason,
            "engine_metadata": info.metadata,
            "canary": canary.as_dict(),
        }

    async def canary_probe() -> None:
        # In the background, once no generation has run for a moment: start is never delayed, an
        # editor's first request never shares the CPU with it, a bad template is reported, not fatal.
        nonlocal canary
        quiet_since, give_up = time.monotonic(), time.monotonic() + 60
        while time.monotonic() < give_up and time.monotonic() - quiet_since < 2.0:
            if sum(scheduler.gate.running.values()):
                quiet_since = time.monotonic()
            await asyncio.sleep(0.25)
        canary = await run_canary(engine, template)
        log.log(logging.INFO if canary.status == "ok" else logging.WARNING,
                "canary %s: %r %s", canary.status, canary.answer, canary.detail)

    def status() -> dict[str, Any]:
        counters = engine.cancel_counters
        return {
            "version": __version__,
            "pid": os.getpid(),
            "transport": endpoint.transport,
            "address": endpoint.address,
            **describe(),
            **stats.snapshot(),
            "cancelled_in_engine": counters.cancelled,
            "tokens_after_cancel_total": counters.tokens_after_cancel_total,
            "tokens_after_cancel_max": counters.tokens_after_cancel_max,
            "running": {p.name.lower(): n for p, n in scheduler.gate.running.items()},
            "background": {"paused": scheduler.background.paused, "shed": scheduler.background.shed},
            "anchored_prompts": service.anchored_prompts,
            "warm_prompts": service.prompts.warm_prompts,
            "prefills_done": service.prefills_done,
            "network": privacy.network_status(),
        }

    app = build_app(service, describe, status, shutdown, token)
    uv_config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3
    )
    uv_server = uvicorn.Server(uv_config)
    address_file = paths.address_file()
    endpoint.write(address_file)
    log.info(
        "serving %s on %s (%s, family %s) ready in %.1fs",
        engine.info.model, endpoint.address, engine.info.engine, template.family, time.monotonic() - started,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: loop.create_task(shutdown()))
    canary_task = asyncio.create_task(canary_probe())
    try:
        await uv_server.serve(sockets=[sock])
    finally:
        canary_task.cancel()
        await scheduler.close()
        current = Endpoint.read(address_file)
        if current is not None and current.pid == os.getpid():
            address_file.unlink(missing_ok=True)
            if endpoint.transport == "unix":
                with contextlib.suppress(OSError):
                    Path(endpoint.path).unlink()
        await engine.close()
        log.info("stopped")
    return 0
