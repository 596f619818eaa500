"""How the vLLM child is started: its command line, its environment, its KV-cache size.

Pure functions of what the machine has (free memory, CPUs, GPU) and the model's config.json, so
every decision is testable without vLLM. What each CPU setting is for (measured here, 2 cores,
0.5B bf16; see ../shared/ENVIRONMENT.md "vLLM on the CPU"):

- `VLLM_CPU_OMP_THREADS_BIND=<every allowed core>`: vLLM's default keeps one core for itself,
  which on 2 cores halves the compute (15.5 -> 20.4 tokens/s with both).
- `--enforce-eager`: torch.compile costs 78-112 s on every start (its cache never loads) for no
  speed gain on this CPU; eager mode is ready in ~31 s.
- `--kv-cache-memory-bytes`: without it vLLM sizes the KV cache from *total* RAM (~20 GB here),
  and two daemons or a build would push the machine into swap or the OOM killer.
- `--dtype bfloat16`: the converted weights are bf16; float32 would double memory and time.
- `python -m vllm.entrypoints.openai.api_server`: the `vllm` console script of vllm-cpu fails
  (`PackageNotFoundError: vllm`, its distribution is named vllm-cpu).

On a GPU vLLM's own defaults stand (CUDA graphs, --gpu-memory-utilization share of the device).
Either way it listens on a unix socket in the daemon's 0700 runtime directory (`--uds`, no TCP
listener): vLLM's key guards only /v1/*, and /metrics, /tokenize and /invocations answer anyone
who can connect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Device = Literal["cpu", "cuda"]

GIB = 1 << 30
MIB = 1 << 20
# Besides weights and KV cache, a vLLM CPU process holds torch, its kernels and activations:
# measured 4.3-5.4 GB resident for 1.26 GB of weights and a 0.75 GB KV cache.
CPU_RUNTIME_OVERHEAD_BYTES = int(2.5 * GIB)
# vLLM may take at most this share of the memory available when it starts: the editors, the
# language servers, builds and other daemons need the rest.
CPU_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class ModelShape:
    """What sizes the KV cache, from a Hugging Face config.json."""

    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2  # bf16
    weights_bytes: int = 0  # the safetensors files

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes  # keys and values


def read_model_shape(folder: Path) -> ModelShape:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config)  # multimodal wrappers keep the LM's config inside
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    return ModelShape(
        layers=int(config["num_hidden_layers"]),
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        weights_bytes=weights,
    )


def special_token_ids_of(folder: Path) -> dict[str, int]:
    """Special tokens -> ids of a model folder: the conversion's manifest, else tokenizer.json's
    added tokens marked special (never plain-text tokens: "\\n" hides inside other tokens)."""
    try:
        manifest = json.loads((folder / "nearcode-model.json").read_text(encoding="utf-8"))
        if manifest.get("token_ids"):
            return {str(k): int(v) for k, v in manifest["token_ids"].items()}
    except (OSError, ValueError, AttributeError):
        pass
    try:
        added = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("added_tokens", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(t["content"]): int(t["id"]) for t in added if isinstance(t, dict) and t.get("special")}


class NotEnoughMemory(RuntimeError):
    pass


def cpu_kv_cache_bytes(shape: ModelShape, available_bytes: int, max_model_len: int, max_num_seqs: int) -> int:
    """KV-cache size for a CPU vLLM: room for every sequence at full length, if memory allows.

    At least one sequence of `max_model_len` must fit in `CPU_MEMORY_SHARE` of the available memory
    beside the weights and the runtime; else NotEnoughMemory says how much is missing.
    """
    per_sequence = shape.kv_bytes_per_token * max_model_len
    wanted = per_sequence * max_num_seqs
    allowed = int(available_bytes * CPU_MEMORY_SHARE) - shape.weights_bytes - CPU_RUNTIME_OVERHEAD_BYTES
    if allowed < per_sequence:
        need = (shape.weights_bytes + CPU_RUNTIME_OVERHEAD_BYTES + per_sequence) / CPU_MEMORY_SHARE
        raise NotEnoughMemory(
            f"vLLM needs {need / GIB:.1f} GiB of available memory for this model "
            f"({shape.weights_bytes / GIB:.2f} GiB weights, {CPU_RUNTIME_OVERHEAD_BYTES / GIB:.1f} GiB runtime, "
            f"{per_sequence / MIB:.0f} MiB KV cache for one {max_model_len}-token sequence, at most "
            f"{CPU_MEMORY_SHARE:.0%} of what is free); {available_bytes / GIB:.1f} GiB is available"
        )
    return max(per_sequence, min(wanted, allowed)) // MIB * MIB


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no MemAvailable in {meminfo}")


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def cpu_list(cpus: Iterable[int]) -> str:
    """`[0, 1, 2, 5]` -> "0-2,5": the form VLLM_CPU_OMP_THREADS_BIND takes."""
    ranges: list[str] = []
    ordered = sorted(set(cpus))
    start = prev = ordered[0] if ordered else 0
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        ranges.append(f"{start}-{prev}" if prev > start else str(start))
        if cpu is not None:
            start = prev = cpu
    return ",".join(ranges) if ordered else ""


# Passed through from the daemon's environment; everything else (cloud keys, tokens, the user's
# shell settings) stays out of the child.
_KEPT_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
                         "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "HF_HOME", "XDG_CACHE_HOME"})
_KEPT_PREFIXES = ("LC_", "OPENBLAS_", "NVIDIA_", "VLLM_")
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")


def child_environment(parent: Mapping[str, str], device: Device, cpus: Iterable[int], api_key: str) -> dict[str, str]:
    env = {
        name: value for name, value in parent.items()
        if (name in _KEPT_NAMES or name.startswith(_KEPT_PREFIXES))
        and not any(marker in name.upper() for marker in _SECRET_MARKERS)
    }
    env.update({
        "HF_HUB_OFFLINE": "1",  # the model is a local folder: never reach the Hub
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_DO_NOT_TRACK": "1",
        "DO_NOT_TRACK": "1",
        "PYTHONNOUSERSITE": "1",
        "VLLM_API_KEY": api_key,  # in the environment, not the argv: `ps` shows argv to everyone
    })
    if device == "cpu":
        env["VLLM_CPU_OMP_THREADS_BIND"] = cpu_list(cpus)
    return env


@dataclass(frozen=True)
class VllmLaunch:
    """Everything the child's command line is made of."""

    python: str  # the vLLM environment's interpreter
    model: str  # a local model folder (or, on a GPU, a Hugging Face id the user named)
    socket_path: str
    device: Device
    served_model_name: str
    max_model_len: int = 8192
    max_num_seqs: int = 16
    max_num_batched_tokens: int = 4096
    priority_scheduling: bool = True
    gpu_memory_utilization: float = 0.80
    kv_cache_bytes: int = 0  # CPU: the explicit KV-cache size (see cpu_kv_cache_bytes)
    extra_args: tuple[str, ...] = ()


def serve_argv(launch: VllmLaunch) -> tuple[str, ...]:
    argv = [
        launch.python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", launch.model,
        "--uds", launch.socket_path,
        "--served-model-name", launch.served_model_name,
        "--max-model-len", str(launch.max_model_len),
        "--max-num-seqs", str(launch.max_num_seqs),
        "--max-num-batched-tokens", str(launch.max_num_batched_tokens),
        "--enable-prefix-caching",
        "--enable-prompt-tokens-details",  # usage reports cached prompt tokens per request
        "--generation-config", "vllm",  # sampling is what nearcode sends, not a model folder's defaults
        "--disable-uvicorn-access-log",
    ]
    if launch.priority_scheduling:
        argv += ["--scheduling-policy", "priority"]
    if launch.device == "cpu":
        argv += ["--dtype", "bfloat16", "--enforce-eager", "--kv-cache-memory-bytes", str(launch.kv_cache_bytes)]
    else:
        argv += ["--gpu-memory-utilization", str(launch.gpu_memory_utilization)]
    return (*argv, *launch.extra_args)


# vLLM's start-up log lines, in order, and what `nearcode status` says while it is in each phase.
_PHASES: tuple[tuple[str, str], ...] = (
    ("non-default args", "importing torch"),
    ("Resolved architecture", "reading the model's configuration"),
    ("Initializing a V1 LLM engine", "starting the engine"),
    ("Starting to load model", "loading the weights"),
    ("Loading weights took", "weights loaded"),
    ("Model loading took", "weights loaded"),
    ("KV cache", "allocating the KV cache"),
    ("Warming up", "warming up"),
    ("init engine", "engine ready, starting the API server"),
    ("Starting vLLM API server", "starting the API server"),
    ("Application startup complete", "ready"),
)


def startup_phase(line: str) -> str | None:
    """The start-up phase a line of vLLM's output announces, if it announces one."""
    for marker, phase in _PHASES:
        if marker in line:
            return phase
    return None
