"""The vLLM engine: nearcode supervises vLLM's OpenAI-compatible server as a child process.

Why a child process and not vLLM's in-process `AsyncLLM`:

- **Dependencies.** vLLM pins torch and `fastapi[standard]<0.137`; the daemon is built on
  starlette/uvicorn and must stay installable (and fast to start) without a 2 GB torch. The child
  runs from a venv of its own (`nearcode engine install vllm`, daemon/vllm_setup/).
- **Crash isolation.** Out-of-memory, driver faults and worker crashes kill the process that hit
  them. In a child they cost a restart (supervised here, with back-off); in process they would take
  the daemon, its socket and every editor's session down with them.
- **Start-up.** Importing torch and loading takes ~30 s on a CPU, minutes with CUDA graphs; the
  daemon answers health and status meanwhile (`starts_slowly`), saying which phase vLLM is in.
- **One client path.** The child is driven by the same OpenAI-compatible client as a team's shared
  vLLM deployment (daemon/engines/openai_compat.py).

What in-process `AsyncLLM` would have given, and how the child keeps it: priority scheduling
(`--scheduling-policy priority` plus the request's `priority` field: inline completions 0,
speculative 1, docstrings/tests 2); abort on cancel (vLLM aborts a request when its HTTP client
disconnects, which is what closing the stream does: measured here, running requests at 0 within
0.1-0.3 s); prefix caching (`--enable-prefix-caching`, 16-token blocks, hit rate from /metrics in
`nearcode status`). The cost is one local HTTP hop per request and per tokenize call (~1 ms).

The child itself (configuration, environment, launch plan, isolation, failure diagnoses):
daemon/engines/vllm_child.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from nearcode.daemon.engines.base import (
    CancelCounters,
    EngineError,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
)
from nearcode.daemon.engines.netns import ISOLATED, NOT_ISOLATED
from nearcode.daemon.engines.openai_compat import OpenAICompatConfig, OpenAICompatEngine
from nearcode.daemon.engines.supervisor import ChildServer, ChildSpec
from nearcode.daemon.engines.vllm_child import (
    NETWORK_ISOLATED,
    NETWORK_SHARED,
    InstalledVllmPython,
    VllmConfig,
    detect_device,
    diagnose_vllm,
    find_vllm,
    installed_vllm_python,
    plan_child,
    plan_stand_in,
)
from nearcode.daemon.engines.vllm_launch import Device, VllmLaunch, startup_phase
from nearcode.daemon.engines.vllm_metrics import vllm_load

log = logging.getLogger("nearcode.engine.vllm")

# How long a request waits for a restarting server before it fails (its own deadline may be less).
_RESTART_WAIT_S = 30.0


class VllmEngine:
    """`detect` and `find` say what this machine has (a GPU, an installed vLLM); tests give them."""

    def __init__(
        self, config: VllmConfig, detect: Callable[[], Device] = detect_device,
        find: Callable[[Device], InstalledVllmPython | None] = find_vllm,
    ) -> None:
        self._config = config
        self._detect_device = detect
        self._find_vllm = find
        self._api_key = secrets.token_urlsafe(24)
        self._device: Device = config.device or "cpu"
        self._launch: VllmLaunch | None = None
        self._supervisor = ChildServer(
            ChildSpec(
                argv=(),
                health_url="",
                ready_timeout_s=config.ready_timeout_s,
                restart_backoff_s=config.restart_backoff_s,
                name="vLLM server",
            ),
            diagnose_vllm,
            self._phase,
        )
        self._client: OpenAICompatEngine | None = None
        self._network = ""  # what the netns launcher said: isolated, or why not

    @property
    def info(self) -> EngineInfo:
        client = self._client.info if self._client is not None else None
        launch = self._launch
        return EngineInfo(
            engine="vllm",
            model=self._served_name(),
            model_path=self._config.model,
            context_tokens=(client.context_tokens if client else 0) or self._config.max_model_len,
            parallel_slots=launch.max_num_seqs if launch else self._max_num_seqs(),
            starts_slowly=True,
            metadata={
                **(client.metadata if client else {}),
                "device": self._device,
                "pid": str(self._supervisor.pid or ""),
                "restarts": str(self._supervisor.restarts),
                "ready": str(self._supervisor.ready.is_set()).lower(),
                "startup_phase": self._startup_phase(),
                "kv_cache_bytes": str(launch.kv_cache_bytes)
                if launch and launch.device == "cpu"
                else "",
                "network": self._network,
                "last_error": self._supervisor.last_error,
            },
        )

    @property
    def cancel_counters(self) -> CancelCounters:
        return self._client.cancel_counters if self._client is not None else CancelCounters()

    @property
    def supervisor(self) -> ChildServer:
        return self._supervisor

    def _served_name(self) -> str:
        return (
            self._config.served_model_name
            or Path(self._config.model.rstrip("/")).name
            or "nearcode"
        )

    def _max_num_seqs(self) -> int:
        return self._config.max_num_seqs or (8 if self._device == "cpu" else 16)

    def _phase(self, line: str) -> str | None:
        if line.startswith(NOT_ISOLATED):
            self._network = (
                NETWORK_SHARED + " (" + line.removeprefix(NOT_ISOLATED).strip(": ") + ")"
            )
            log.warning("vLLM runs without a network namespace: %s", line)
        elif line.startswith(ISOLATED):
            self._network = NETWORK_ISOLATED
        return startup_phase(line)

    def _startup_phase(self) -> str:
        supervisor = self._supervisor
        if supervisor.ready.is_set() or supervisor.launched_at is None:
            return ""
        return f"{supervisor.phase} ({time.monotonic() - supervisor.launched_at:.0f} s)"

    async def start(self) -> None:
        if self._config.command:
            spec, client = self._stand_in()
        else:
            spec, client = await asyncio.to_thread(self._plan)
        self._supervisor.spec = spec
        self._client = client
        await self._supervisor.start()
        # The client authenticates with the child's key: handed over in-process, never via env.
        client.set_api_key(self._api_key)
        await client.start()

    def _plan(self) -> tuple[ChildSpec, OpenAICompatEngine]:
        """What this machine needs: device, environment, KV-cache size, socket (blocking: run in a thread)."""
        cfg = self._config
        self._device = cfg.device or self._detect_device()
        python = cfg.python or installed_vllm_python(self._device, self._find_vllm(self._device))
        plan = plan_child(cfg, self._device, python, self._api_key, self._served_name(), self._max_num_seqs(),
                          self._supervisor.spec)
        self._launch = plan.launch
        return plan.spec, self._new_client("http://localhost", plan.socket_path, plan.special_token_ids)

    def _stand_in(self) -> tuple[ChildSpec, OpenAICompatEngine]:
        """The tests' stand-in child (vllm_child.plan_stand_in)."""
        plan = plan_stand_in(self._config, self._api_key, self._served_name(), self._supervisor.spec)
        self._network = plan.network
        return plan.spec, self._new_client(plan.base_url, plan.uds, self._config.special_token_ids)

    def _new_client(self, base_url: str, uds: str, token_ids: dict[str, int]) -> OpenAICompatEngine:
        return OpenAICompatEngine(
            OpenAICompatConfig(
                base_url=base_url,
                uds=uds,
                model=self._served_name(),
                api_key_env="",
                send_priority=self._config.priority_scheduling,
                parallel_slots=self._max_num_seqs(),
                retries=1,
                engine_name="vllm",
                special_token_ids=token_ids,
                max_stop_strings=4,
            )
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        await self._supervisor.close()

    async def count_tokens(self, text: str) -> int:
        assert self._client is not None, "engine not started"
        return await self._client.count_tokens(text)

    async def runtime_status(self) -> dict[str, object]:
        """vLLM's prefix-cache hit rate and queue, from its /metrics (empty while it is down)."""
        if self._client is None or not self._supervisor.ready.is_set():
            return {}
        try:
            return dict(vllm_load(await self._client.get_text("/metrics")).as_status())
        except (httpx.HTTPError, EngineError):
            return {}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        if not self._supervisor.ready.is_set():
            wait = _RESTART_WAIT_S
            if request.deadline is not None:
                wait = min(wait, request.deadline - time.monotonic())
            if wait <= 0 or not await self._supervisor.wait_ready(wait):
                raise EngineError(
                    "the vLLM server is restarting"
                    + (f" ({self._supervisor.last_error})" if self._supervisor.last_error else "")
                )
        assert self._client is not None
        # aclosing: closing this generator must close the client's at once (that aborts it in vLLM).
        async with contextlib.aclosing(self._client.generate(request)) as chunks:
            async for chunk in chunks:
                yield chunk
