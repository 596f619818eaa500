"""The vLLM child process: its configuration, the vLLM environment it runs from, the plan of its
launch on this machine (or of the tests' stand-in), and what its output means when it fails.

The child listens only on a unix socket in the daemon's 0700 runtime directory (`--uds`, no TCP
listener), runs in a network namespace of its own (torch's gloo backend opens TCP listeners on
127.0.0.1 inside vLLM; there they are out of everyone's reach, daemon/engines/netns.py), keeps its
IPC sockets and temporary files in a 0700 folder, and gets a scrubbed environment (no cloud keys)
with a random API key for /v1 (VLLM_API_KEY, never argv). The tests' stand-in child (a TCP-only
llama.cpp server) gets the same namespace through nearcode/shared/isolation.py's socket bridge.

Its command line, environment and KV-cache size are pure functions in daemon/engines/vllm_launch.py;
daemon/engines/supervisor.py starts, watches and restarts it; daemon/engines/vllm.py is the engine.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nearcode.daemon.engines.base import EngineError
from nearcode.daemon.engines.supervisor import ChildSpec
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
)
from nearcode.shared import paths, privacy
from nearcode.shared.isolation import (
    OFFLINE_ENVIRONMENT,
    network_isolated_argv,
    scrubbed_environment,
)

# What engine metadata's `network` says (status, and the local-only system test).
NETWORK_ISOLATED = "network namespace with only loopback"
NETWORK_SHARED = "shared with the machine"


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


@dataclass(frozen=True)
class ChildPlan:
    """vLLM's launch on this machine: what the supervisor runs, and how the client reaches it."""

    launch: VllmLaunch
    spec: ChildSpec
    socket_path: str
    special_token_ids: dict[str, int]


def plan_child(
    cfg: VllmConfig, device: Device, python: str, api_key: str, served_name: str, max_num_seqs: int,
    spec: ChildSpec,
) -> ChildPlan:
    """KV-cache size, private folder, socket, command line and environment for `device`, over the
    supervisor's `spec` (blocking: files and /proc; the engine runs it in a thread)."""
    folder = Path(cfg.model)
    kv_bytes = cfg.kv_cache_bytes
    if device == "cpu" and not kv_bytes:
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
                max_num_seqs,
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
    launch = VllmLaunch(
        python=python,
        model=cfg.model,
        socket_path=socket_path,
        device=device,
        served_model_name=served_name,
        max_model_len=cfg.max_model_len,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        priority_scheduling=cfg.priority_scheduling,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
        kv_cache_bytes=kv_bytes,
        extra_args=cfg.extra_args,
    )
    env = child_environment(os.environ, device, allowed_cpus(), api_key)
    # vLLM's IPC sockets and torch's rendezvous file: in the private folder, not world-readable /tmp.
    env.update({"VLLM_RPC_BASE_PATH": str(private), "TMPDIR": str(private)})
    argv = serve_argv(launch)
    if cfg.isolate_network:
        argv = (sys.executable, "-P", "-m", "nearcode.daemon.engines.netns", "--", *argv)
    spec = dataclasses.replace(
        spec,
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
    return ChildPlan(launch, spec, socket_path, token_ids)


@dataclass(frozen=True)
class StandInPlan:
    """The tests' stand-in child: what the supervisor runs, where the client reaches it, and what
    its network is."""

    spec: ChildSpec
    base_url: str
    uds: str
    network: str


def plan_stand_in(cfg: VllmConfig, api_key: str, served_name: str, spec: ChildSpec) -> StandInPlan:
    """A command named by the caller (the tests' llama.cpp server, TCP only): the same scrubbed
    environment, and in local-only mode a loopback-only namespace reached through a socket bridge."""
    port = cfg.port or free_loopback_port()
    values = {
        "model": cfg.model,
        "port": str(port),
        "host": "127.0.0.1",
        "served_model_name": served_name,
    }
    argv = tuple(arg.format(**values) for arg in cfg.command)
    local_only = (
        os.environ.get(privacy.PRIVACY_MODE_ENV, privacy.LOCAL_ONLY) != privacy.CLOUD_ALLOWED
    )
    env = scrubbed_environment(
        os.environ, {"VLLM_API_KEY": api_key, **OFFLINE_ENVIRONMENT}
    )
    socket_path = str(paths.ensure_private_dir(paths.runtime_dir()) / f"vllm-{port}.sock")
    isolated = network_isolated_argv(argv, socket_path, port) if local_only else None
    if isolated is None:
        network = NETWORK_SHARED + (
            " (cloud-allowed mode)" if not local_only else " (no network namespace can be created here)"
        )
    else:
        network = NETWORK_ISOLATED
    # Isolated: reached through the bridge's unix socket; else on its loopback port.
    base_url, uds = ("http://localhost", socket_path) if isolated else (f"http://127.0.0.1:{port}", "")
    spec = dataclasses.replace(spec, argv=isolated or argv, env=env, inherit_env=False,
                               uds=uds, health_url=f"{base_url}/health")
    return StandInPlan(spec, base_url, uds, network)
