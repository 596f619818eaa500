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

The child listens only on a unix socket in the daemon's 0700 runtime directory (`--uds`, no TCP
listener), runs in a network namespace of its own (torch's gloo backend opens TCP listeners on
127.0.0.1 inside vLLM; there they are out of everyone's reach, daemon/engines/netns.py), keeps its
IPC sockets and temporary files in a 0700 folder, and gets a scrubbed environment (no cloud keys)
with a random API key for /v1 (VLLM_API_KEY, never argv). The tests' stand-in child (a TCP-only
llama.cpp server) gets the same namespace through nearcode/shared/isolation.py's socket bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
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
from nearcode.daemon.engines.vllm_launch import (
    Device,
    NotEnoughMemory,
    VllmLaunch,
    allowed_cpus,
    available_memory_bytes,
    child_environment,
    cpu_kv_cache_bytes,
    read_model_shape,
    serve_argv,
    special_token_ids_of,
    startup_phase,
)
from nearcode.daemon.engines.vllm_metrics import vllm_load
from nearcode.shared import paths, privacy
from nearcode.shared.isolation import (
    OFFLINE_ENVIRONMENT,
    network_isolated_argv,
    scrubbed_environment,
)

log = logging.getLogger("nearcode.engine.vllm")
# What engine metadata's `network` says (status, and the local-only system test).
NETWORK_ISOLATED = "network namespace with only loopback"
NETWORK_SHARED = "shared with the machine"

# How long a request waits for a restarting server before it fails (its own deadline may be less).
_RESTART_WAIT_S = 30.0


@dataclass(frozen=True)
class VllmConfig:
    model: (
        str  # a local model folder (by default the converted GGUF), or on a GPU a Hugging Face id
    )
    python: str = (
        ""  # the vLLM environment's interpreter; "": the one `nearcode engine install vllm` made
    )
    device: Device | None = None  # None: CUDA when a GPU is seen, else the CPU
    served_model_name: str = ""  # "": the model folder's name (the prompt family is matched on it)
    runtime_dir: str = ""  # private folder for the socket and vLLM's IPC files; "": the daemon's
    max_model_len: int = 8192  # context length; bounds KV cache per sequence
    max_num_seqs: int = 0  # sequences decoded together; 0: 8 on a CPU, 16 on a GPU
    max_num_batched_tokens: int = 4096  # tokens per scheduler step (chunked prefill)
    gpu_memory_utilization: float = 0.80  # GPU: share of its memory vLLM may take (weights + KV)
    kv_cache_bytes: int = 0  # CPU: 0 sizes it from the memory available at start
    priority_scheduling: bool = True
    # Run vLLM in a network namespace of its own (daemon/engines/netns.py): its internal gloo
    # listeners on 127.0.0.1 out of reach, and no network for it at all.
    isolate_network: bool = True
    special_token_ids: dict[str, int] = field(
        default_factory=dict
    )  # {}: read from the model folder
    extra_args: tuple[str, ...] = ()  # passed to vLLM as they are
    # A stand-in server for tests: argv with {model}, {port}, {host}, {served_model_name}, which
    # listens on loopback TCP (llama.cpp's server cannot use a unix socket).
    command: tuple[str, ...] = ()
    port: int = 0  # the stand-in's port; 0: a free one
    ready_timeout_s: float = 900.0
    restart_backoff_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)


# Patterns from vLLM's output (vllm-project/vllm issues #4858, #34296, #14992, #9624, #3463, and
# what was seen here), mapped to what the user should do.
_DIAGNOSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver initialization failed"
            r"|libcuda\.so.*cannot open|no CUDA-capable device",
            re.I,
        ),
        "no usable CUDA GPU for this CUDA build of vLLM. Fix: `nearcode engine install vllm --flavor cpu` "
        "(vLLM on the CPU), --engine llamacpp, or --engine openai pointing at a GPU server",
    ),
    (
        re.compile(
            r"CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks"
            r"|larger than the maximum number of tokens that can be stored in KV cache"
            r"|less than desired GPU memory utilization|Insufficient memory|Cannot allocate memory",
            re.I,
        ),
        "too little memory for this model and KV cache. Fix: lower --vllm-max-model-len or --vllm-max-num-seqs, "
        "(GPU) raise --vllm-gpu-memory, close other programs, or pick a smaller model",
    ),
    (
        re.compile(
            r"are not supported for now|Cannot find model module|is not a valid model identifier"
            r"|does not appear to have a file named config\.json|Unrecognized model|No supported config format"
            r"|Repository Not Found|not a local folder",
            re.I,
        ),
        "vLLM cannot load this model (unknown id, missing files, or an architecture it does not support). "
        "Fix: check --vllm-model (a local model folder, or a Hugging Face id) and vLLM's supported-models list",
    ),
    (
        re.compile(r"PackageNotFoundError|No module named 'vllm'", re.I),
        "the vLLM environment is broken. Fix: remove it and run `nearcode engine install vllm` again",
    ),
    (re.compile(r"Address already in use", re.I), "the socket or port is already in use"),
)


def _clear(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def diagnose_vllm(output: str) -> str | None:
    for pattern, advice in _DIAGNOSES:
        if pattern.search(output):
            return advice
    return None


def detect_device() -> Device:
    from nearcode.daemon.engines.engine_choice import detect_gpu

    return "cuda" if detect_gpu().available else "cpu"


@dataclass(frozen=True)
class InstalledVllmPython:
    """An installed vLLM environment, as the engine needs it."""

    python: str
    flavor: Device
    description: str


def find_vllm(device: Device) -> InstalledVllmPython | None:
    """The installed vLLM environment to run on `device` (its flavor first, else any), from the cache."""
    from nearcode.daemon.vllm_setup.environment import find_installed_vllm

    found = find_installed_vllm(prefer=device)
    if found is None:
        return None
    environment, record = found
    return InstalledVllmPython(str(environment.python), record.flavor, record.describe())


def installed_vllm_python(device: Device, found: InstalledVllmPython | None) -> str:
    """The interpreter of the installed vLLM environment `found` for `device`; EngineError saying
    how to get one."""
    if found is None:
        raise EngineError(
            "vLLM is not installed. Fix: `make install-vllm` (or `nearcode engine install vllm`): "
            "its own environment in the cache, and the model converted for it"
        )
    if found.flavor == "cuda" and device == "cpu":
        raise EngineError(
            f"the installed vLLM ({found.description}) needs a CUDA GPU and this machine has none. "
            "Fix: `nearcode engine install vllm --flavor cpu`"
        )
    return found.python


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
        folder = Path(cfg.model)
        kv_bytes = cfg.kv_cache_bytes
        if self._device == "cpu" and not kv_bytes:
            if not (folder / "config.json").is_file():
                raise EngineError(
                    f"{folder} is not a model folder (no config.json). Fix: `nearcode engine install "
                    "vllm` converts the installed GGUF, or give --vllm-model a Hugging Face model folder"
                )
            try:
                kv_bytes = cpu_kv_cache_bytes(
                    read_model_shape(folder),
                    available_memory_bytes(),
                    cfg.max_model_len,
                    self._max_num_seqs(),
                )
            except NotEnoughMemory as exc:
                raise EngineError(
                    f"{exc}. Fix: close other programs, lower --vllm-max-model-len, or use "
                    "--engine llamacpp (0.9 GB)"
                ) from exc
        private = paths.ensure_private_dir(Path(cfg.runtime_dir or paths.runtime_dir()) / "vllm")
        _clear(
            private
        )  # a previous run's IPC sockets and files (the daemon's lock says it is ours)
        socket_path = str(private / "api.sock")
        self._launch = VllmLaunch(
            python=python,
            model=cfg.model,
            socket_path=socket_path,
            device=self._device,
            served_model_name=self._served_name(),
            max_model_len=cfg.max_model_len,
            max_num_seqs=self._max_num_seqs(),
            max_num_batched_tokens=cfg.max_num_batched_tokens,
            priority_scheduling=cfg.priority_scheduling,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            kv_cache_bytes=kv_bytes,
            extra_args=cfg.extra_args,
        )
        env = child_environment(os.environ, self._device, allowed_cpus(), self._api_key)
        # vLLM's IPC sockets and torch's rendezvous file: in the private folder, not world-readable /tmp.
        env.update({"VLLM_RPC_BASE_PATH": str(private), "TMPDIR": str(private)})
        argv = serve_argv(self._launch)
        if cfg.isolate_network:
            argv = (sys.executable, "-P", "-m", "nearcode.daemon.engines.netns", "--", *argv)
        spec = dataclasses.replace(
            self._supervisor.spec,
            argv=argv,
            env=env,
            inherit_env=False,
            uds=socket_path,
            health_url="http://localhost/health",
            log_path=str(private.parent / "vllm.log"),
        )
        token_ids = cfg.special_token_ids or (
            special_token_ids_of(folder) if folder.is_dir() else {}
        )
        return spec, self._new_client("http://localhost", socket_path, token_ids)

    def _stand_in(self) -> tuple[ChildSpec, OpenAICompatEngine]:
        """A command named by the caller (the tests' llama.cpp server, TCP only): the same scrubbed
        environment, and in local-only mode a loopback-only namespace reached through a socket bridge."""
        port = self._config.port or free_loopback_port()
        values = {
            "model": self._config.model,
            "port": str(port),
            "host": "127.0.0.1",
            "served_model_name": self._served_name(),
        }
        argv = tuple(arg.format(**values) for arg in self._config.command)
        local_only = (
            os.environ.get(privacy.PRIVACY_MODE_ENV, privacy.LOCAL_ONLY) != privacy.CLOUD_ALLOWED
        )
        env = scrubbed_environment(
            os.environ, {"VLLM_API_KEY": self._api_key, **OFFLINE_ENVIRONMENT}
        )
        socket_path = str(paths.ensure_private_dir(paths.runtime_dir()) / f"vllm-{port}.sock")
        isolated = network_isolated_argv(argv, socket_path, port) if local_only else None
        if isolated is None:
            self._network = NETWORK_SHARED + (
                " (cloud-allowed mode)" if not local_only else " (no network namespace can be created here)"
            )
        else:
            self._network = NETWORK_ISOLATED
        # Isolated: reached through the bridge's unix socket; else on its loopback port.
        base_url, uds = ("http://localhost", socket_path) if isolated else (f"http://127.0.0.1:{port}", "")
        spec = dataclasses.replace(self._supervisor.spec, argv=isolated or argv, env=env, inherit_env=False,
                                   uds=uds, health_url=f"{base_url}/health")
        return spec, self._new_client(base_url, uds, self._config.special_token_ids)

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
