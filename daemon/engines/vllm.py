"""The vLLM engine: nearcode supervises `vllm serve` as a child process and talks to it over HTTP.

Why a child process and not vLLM's in-process `AsyncLLM`:

- **Dependencies.** vllm 0.33 pins torch 2.14 and `fastapi[standard]<0.137`; the daemon is built
  on starlette/uvicorn and must stay installable (and fast to start) without a 2 GB torch. As a
  child, vLLM can even live in a venv of its own (`--vllm-command /opt/vllm/bin/vllm serve`).
- **Crash isolation.** CUDA out-of-memory, NCCL and driver faults kill the process that hit them.
  In a child they cost a restart (supervised here, with back-off); in process they would take the
  daemon, its socket and every editor's session down with them.
- **Start-up.** Importing torch and capturing CUDA graphs takes 30-120 s; the daemon answers
  health and status meanwhile, and a readiness check gates the first request.
- **One client path.** The child is driven by the same OpenAI-compatible client as a team's shared
  vLLM deployment (daemon/engines/openai_compat.py), so the code that matters is tested against a
  real server (llama.cpp's, which speaks the same protocol) on machines without a GPU.

What in-process `AsyncLLM` would have given, and how the child keeps it: priority scheduling
(`--scheduling-policy priority` plus the request's `priority` field: inline completions 0,
speculative 1, docstrings/tests 2); abort on cancel (`vllm serve` aborts a request when its HTTP
client disconnects, which is what closing the stream does); prefix caching (`--enable-prefix-caching`,
16-token blocks). The cost is one loopback HTTP hop per request and per tokenize call (~1 ms).

The child listens on 127.0.0.1 only, with a random API key passed through its environment
(`VLLM_API_KEY`, so it does not show in `ps`). That environment is scrubbed (no cloud keys or
tokens: nearcode/shared/isolation.py), and in local-only mode it also says offline
(HF_HUB_OFFLINE, VLLM_NO_USAGE_STATS, DO_NOT_TRACK) and the child runs in a network namespace with
only loopback, reached through a unix socket; where no namespace can be made, it runs with the
offline environment alone and its engine metadata says so (`network`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nearcode.daemon.engines.base import (
    CancelCounters,
    EngineError,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
)
from nearcode.daemon.engines.engine_choice import detect_gpu, vllm_executable
from nearcode.daemon.engines.openai_compat import OpenAICompatConfig, OpenAICompatEngine
from nearcode.daemon.engines.supervisor import ChildServer, ChildSpec
from nearcode.shared import paths, privacy
from nearcode.shared.isolation import (
    OFFLINE_ENVIRONMENT,
    network_isolated_argv,
    scrubbed_environment,
)

log = logging.getLogger("nearcode.engine.vllm")

# How long a request waits for a restarting server before it fails (its own deadline may be less).
_RESTART_WAIT_S = 30.0


@dataclass(frozen=True)
class VllmConfig:
    model: str  # a Hugging Face id or a local directory (or GGUF file) the user chose
    served_model_name: str = "nearcode"
    port: int = 0  # 0: a free loopback port
    gpu_memory_utilization: float = 0.80  # share of the GPU's memory vLLM may take (weights + KV)
    max_model_len: int = 8192  # context length; bounds KV cache per sequence
    max_num_seqs: int = 16  # batching limit: sequences decoded together
    max_num_batched_tokens: int = 4096  # batching limit: tokens per scheduler step (chunked prefill)
    priority_scheduling: bool = True
    extra_args: tuple[str, ...] = ()  # passed to `vllm serve` as they are
    # Replaces `<vllm> serve {model}`: argv with {model}, {port}, {host}, {served_model_name}.
    command: tuple[str, ...] = ()
    check_gpu: bool = True  # fail early and clearly when there is no CUDA device
    ready_timeout_s: float = 900.0
    restart_backoff_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)


# Patterns from vLLM's stderr (vllm-project/vllm issues #4858, #34296, #14992, #9624, #3463),
# mapped to what the user should do.
_DIAGNOSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver initialization failed"
                   r"|Failed to infer device type|libcuda\.so.*cannot open|no CUDA-capable device", re.I),
        "no usable CUDA GPU (vLLM needs an NVIDIA GPU and driver). Fix: use --engine llamacpp on this machine, "
        "or --engine openai pointing at a GPU server",
    ),
    (
        re.compile(r"CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks"
                   r"|larger than the maximum number of tokens that can be stored in KV cache"
                   r"|less than desired GPU memory utilization|Insufficient memory", re.I),
        "too little GPU memory for this model. Fix: lower --vllm-max-model-len or --vllm-max-num-seqs, raise "
        "--vllm-gpu-memory (share of the GPU), close other GPU programs, or pick a smaller/quantized model",
    ),
    (
        re.compile(r"are not supported for now|Cannot find model module|is not a valid model identifier"
                   r"|does not appear to have a file named config\.json|Unrecognized model|No supported config format"
                   r"|Repository Not Found|not a local folder", re.I),
        "vLLM cannot load this model (unknown id, missing files, or an architecture it does not support). "
        "Fix: check --vllm-model (a Hugging Face id or a local model folder) and vLLM's supported-models list",
    ),
    (re.compile(r"Address already in use", re.I), "the port is already in use. Fix: --vllm-port 0 picks a free one"),
)


def diagnose_vllm(output: str) -> str | None:
    for pattern, advice in _DIAGNOSES:
        if pattern.search(output):
            return advice
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_argv(config: VllmConfig, port: int, executable: str | None = None) -> tuple[str, ...]:
    """The child's command line: `vllm serve` with nearcode's settings, or the configured command."""
    values = {"model": config.model, "port": str(port), "host": "127.0.0.1",
              "served_model_name": config.served_model_name}
    if config.command:
        return tuple(arg.format(**values) for arg in config.command)
    executable = executable if executable is not None else vllm_executable()
    if not executable:
        raise EngineError(
            "vllm is not installed. Fix: pip install 'nearcode[vllm]' (CUDA machines only), or give "
            "--vllm-command pointing at a vllm in another venv"
        )
    argv = [
        executable, "serve", config.model,
        "--host", "127.0.0.1", "--port", str(port),
        "--served-model-name", config.served_model_name,
        "--gpu-memory-utilization", str(config.gpu_memory_utilization),
        "--max-model-len", str(config.max_model_len),
        "--max-num-seqs", str(config.max_num_seqs),
        "--max-num-batched-tokens", str(config.max_num_batched_tokens),
        "--enable-prefix-caching",
    ]
    if config.priority_scheduling:
        argv += ["--scheduling-policy", "priority"]
    return (*argv, *config.extra_args)


class VllmEngine:
    def __init__(self, config: VllmConfig) -> None:
        self._config = config
        self._api_key = secrets.token_urlsafe(24)
        self._port = config.port or free_port()
        self._network = "not started"  # how the child is kept off the network (engine metadata)
        self._supervisor = ChildServer(
            ChildSpec(
                argv=(),  # set in start(): building it may raise a clear EngineError
                health_url=f"http://127.0.0.1:{self._port}/health",
                env={"VLLM_API_KEY": self._api_key},
                ready_timeout_s=config.ready_timeout_s,
                restart_backoff_s=config.restart_backoff_s,
                name="vLLM server",
            ),
            diagnose_vllm,
        )
        self._client_config = OpenAICompatConfig(
            base_url=f"http://127.0.0.1:{self._port}",
            model=config.served_model_name,
            api_key_env="",
            send_priority=config.priority_scheduling,
            parallel_slots=config.max_num_seqs,
            retries=1,
            engine_name="vllm",
        )
        self._client = OpenAICompatEngine(self._client_config)

    @property
    def info(self) -> EngineInfo:
        client = self._client.info
        return EngineInfo(
            engine="vllm",
            model=self._config.model,
            model_path=self._config.model,
            context_tokens=client.context_tokens or self._config.max_model_len,
            parallel_slots=self._config.max_num_seqs,
            metadata={
                **client.metadata,
                "pid": str(self._supervisor.pid or ""),
                "restarts": str(self._supervisor.restarts),
                "ready": str(self._supervisor.ready.is_set()).lower(),
                "last_error": self._supervisor.last_error,
                "network": self._network,
            },
        )

    @property
    def cancel_counters(self) -> CancelCounters:
        return self._client.cancel_counters

    @property
    def supervisor(self) -> ChildServer:
        return self._supervisor

    async def start(self) -> None:
        if self._config.check_gpu and not self._config.command:
            gpu = await asyncio.to_thread(detect_gpu)
            if not gpu.available:
                raise EngineError(f"vLLM needs a CUDA GPU and this machine has {gpu.describe()}. "
                                  "Fix: --engine llamacpp, or --engine openai with a GPU server's URL")
        # The namespace tools are probed once, by running them: not on the event loop.
        argv, env, socket_path = await asyncio.to_thread(self._child_launch, serve_argv(self._config, self._port))
        self._supervisor.spec = dataclasses.replace(self._supervisor.spec, argv=argv, env=env, inherit_env=False,
                                                    uds=socket_path)  # fmt: skip
        if socket_path:
            self._client = OpenAICompatEngine(dataclasses.replace(self._client_config, uds=socket_path))
        await self._supervisor.start()
        # The client authenticates with the child's key: handed over in-process, never via env.
        self._client.set_api_key(self._api_key)
        await self._client.start()

    def _child_launch(self, argv: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str], str]:
        """The child's argv, environment and socket: no secrets in its environment ever; in
        local-only mode also the offline switches and a network namespace with only loopback."""
        local_only = os.environ.get(privacy.PRIVACY_MODE_ENV, privacy.LOCAL_ONLY) != privacy.CLOUD_ALLOWED
        extra = {"VLLM_API_KEY": self._api_key, **(OFFLINE_ENVIRONMENT if local_only else {})}
        env = scrubbed_environment(os.environ, extra)
        if not local_only:
            self._network = "host network (cloud-allowed mode)"
            return argv, env, ""
        socket_path = str(paths.runtime_dir() / f"vllm-{self._port}.sock")
        isolated = network_isolated_argv(argv, socket_path, self._port)
        if isolated is None:
            self._network = "offline environment only: no network namespace could be created here"
            log.warning("the vLLM child runs without a network namespace: %s", self._network)
            return argv, env, ""
        self._network = "network namespace with only loopback"
        return isolated, env, socket_path

    async def close(self) -> None:
        await self._client.close()
        await self._supervisor.close()

    async def count_tokens(self, text: str) -> int:
        return await self._client.count_tokens(text)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        if not self._supervisor.ready.is_set():
            wait = _RESTART_WAIT_S
            if request.deadline is not None:
                wait = min(wait, request.deadline - time.monotonic())
            if wait <= 0 or not await self._supervisor.wait_ready(wait):
                raise EngineError("the vLLM server is restarting" + (
                    f" ({self._supervisor.last_error})" if self._supervisor.last_error else ""))
        # aclosing: closing this generator must close the client's at once (that cancels in vLLM).
        async with contextlib.aclosing(self._client.generate(request)) as chunks:
            async for chunk in chunks:
                yield chunk
