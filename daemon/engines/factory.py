"""Build the engine the daemon was asked for (or that `auto` chose), from the daemon's options."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nearcode.daemon.engines.base import Engine, EngineError
from nearcode.daemon.engines.engine_choice import (
    EngineChoice,
    Machine,
    choose_engine,
    detect_machine,
)
from nearcode.daemon.engines.speculation import (
    SpeculationConfig,
    SpeculationError,
    resolve_speculation,
)


@dataclass(frozen=True)
class EngineOptions:
    """Options of the engines beyond model and slots (`nearcode daemon --help` lists them)."""

    # llamacpp: speculative decoding, auto/none/ngram/draft (daemon/engines/speculation.py)
    speculation: str = "auto"
    # openai: any OpenAI-compatible server
    remote_url: str = ""
    remote_model: str = ""
    api_key_env: str = ""  # the NAME of the variable holding the key; the key is never stored
    ca_bundle: str = ""
    insecure: bool = False  # skip TLS verification (a test server with a self-signed cert)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    retries: int = 3
    remote_priority: bool = False  # send vLLM's `priority` field (server runs --scheduling-policy priority)
    # vllm: a supervised vLLM server from its own environment (`nearcode engine install vllm`)
    vllm_model: str = ""  # "": the daemon's GGUF, converted for vLLM by `nearcode engine install vllm`
    vllm_gpu_memory: float = 0.80
    vllm_max_model_len: int = 8192
    vllm_max_num_seqs: int = 0  # 0: 8 on a CPU, 16 on a GPU
    vllm_python: str = ""  # another vLLM environment's interpreter
    vllm_command: str = ""  # a stand-in server instead of vLLM; shell-style words with {port}, {model}


def decide_engine(
    requested: str, options: EngineOptions, gguf: Path | None = None, machine: Machine | None = None
) -> EngineChoice:
    """The engine to run; `gguf` is the daemon's model file, whose converted form vLLM would serve;
    `machine`: what this machine has (detected when not given)."""
    machine = machine or detect_machine(gguf)
    if requested != "auto":
        return choose_engine(requested, machine.gpu, machine.engines)
    return choose_engine(
        "auto", machine.gpu, machine.engines, vllm_model=options.vllm_model, remote_url=options.remote_url,
        available_memory_bytes=machine.available_memory_bytes,
    )


def vllm_model_for(gguf: Path | None) -> str:
    """The converted form of `gguf` that vLLM loads; EngineError saying how to make it."""
    from nearcode.daemon.vllm_setup.conversion import find_converted

    if gguf is None:
        raise EngineError("the vllm engine needs a model: --vllm-model (a local model folder or, on a GPU, a "
                          "Hugging Face id), or a GGUF converted by `nearcode engine install vllm`")
    converted = find_converted(gguf)
    if converted is None:
        model_flag = "" if gguf.parent.name == "models" else f" --model {gguf}"
        raise EngineError(f"{gguf.name} is not converted for vLLM yet. Fix: `nearcode engine install vllm{model_flag}` "
                          "(or `make install-vllm`): converts it once into a bf16 safetensors folder")
    return str(converted.folder)


def build_engine(
    engine: str, model_path: Path | None, options: EngineOptions, parallel_slots: int, threads: int
) -> Engine:
    if engine == "llamacpp":
        from nearcode.daemon.engines.llamacpp import LlamaCppConfig, LlamaCppEngine

        if model_path is None:
            raise EngineError("the llamacpp engine needs a model file (--model)")
        return LlamaCppEngine(LlamaCppConfig(model_path=model_path, parallel_slots=parallel_slots, threads=threads,
                                             speculation=speculation_for(options.speculation, model_path)))
    if engine == "openai":
        from nearcode.daemon.engines.openai_compat import OpenAICompatConfig, OpenAICompatEngine

        if not options.remote_url:
            raise EngineError("the openai engine needs --remote-url (e.g. https://llm.example.com/v1)")
        _check_privacy(options.remote_url)
        return OpenAICompatEngine(
            OpenAICompatConfig(
                base_url=options.remote_url, model=options.remote_model, api_key_env=options.api_key_env,
                verify_tls=not options.insecure, ca_bundle=options.ca_bundle,
                connect_timeout_s=options.connect_timeout_s, read_timeout_s=options.read_timeout_s,
                retries=options.retries, send_priority=options.remote_priority, parallel_slots=parallel_slots,
            )
        )
    if engine == "vllm":
        from nearcode.daemon.engines.vllm import VllmEngine
        from nearcode.daemon.engines.vllm_child import VllmConfig

        model = options.vllm_model or vllm_model_for(model_path)
        return VllmEngine(
            VllmConfig(
                model=model, python=options.vllm_python, gpu_memory_utilization=options.vllm_gpu_memory,
                max_model_len=options.vllm_max_model_len, max_num_seqs=options.vllm_max_num_seqs,
                command=tuple(shlex.split(options.vllm_command)),
            )
        )
    raise EngineError(f"unknown engine {engine!r}; use auto, llamacpp, vllm or openai")


def speculation_for(requested: str, model_path: Path) -> SpeculationConfig:
    """The embedded engine's speculation for `model_path`; the drafter is the fast preset's
    installed 0.5B. EngineError (saying how to fix it) when `draft` cannot run."""
    from nearcode.daemon.model_store import FAST_PRESET, PRESETS
    from nearcode.daemon.model_store import model_path as preset_path

    try:
        return resolve_speculation(requested, model_path, draft_model=preset_path(PRESETS[FAST_PRESET]))
    except (SpeculationError, ValueError) as exc:
        raise EngineError(str(exc)) from exc


def _check_privacy(url: str) -> None:
    """A remote server off this machine needs the daemon's explicit consent (nearcode/shared/privacy.py's guard
    would block it anyway; this says how to allow it before anything is tried)."""
    from nearcode.shared import privacy

    host = urlsplit(url).hostname or ""
    if privacy.is_loopback(host):
        return
    allowed = {h.strip().lower() for h in os.environ.get(privacy.ALLOWED_HOSTS_ENV, "").split(",")}
    if os.environ.get(privacy.PRIVACY_MODE_ENV) != privacy.CLOUD_ALLOWED or host.lower() not in allowed:
        raise EngineError(
            f"{host} is not on this machine and the daemon is local-only. Fix: start it with "
            f"{privacy.PRIVACY_MODE_ENV}={privacy.CLOUD_ALLOWED} {privacy.ALLOWED_HOSTS_ENV}={host}"
        )
