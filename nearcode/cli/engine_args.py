"""Command-line options for choosing and configuring an engine (shared by `daemon` and `doctor`)."""

from __future__ import annotations

import argparse
import os

from nearcode.daemon.engines.engine_choice import ENGINES
from nearcode.daemon.engines.factory import EngineOptions
from nearcode.daemon.engines.speculation import SPECULATION_ENV, SPECULATION_MODES

# The default of --engine, for daemons started by a language server or a benchmark (`auto` if unset).
ENGINE_ENV = "NEARCODE_ENGINE"


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    default = os.environ.get(ENGINE_ENV) or "auto"
    if default not in ENGINES:
        p.error(f"{ENGINE_ENV}={default!r} is not an engine; choose one of {', '.join(ENGINES)}")
    p.add_argument("--engine", default=default, choices=list(ENGINES),
                   help="auto: vLLM where it is installed and measured faster (GPU, or CPU per the benchmark), "
                        f"else embedded llama.cpp; `nearcode doctor` says why (default: ${ENGINE_ENV} or auto)")
    speculation = (os.environ.get(SPECULATION_ENV) or "auto").strip().lower()
    if speculation not in SPECULATION_MODES:
        p.error(f"{SPECULATION_ENV}={speculation!r} is not a speculation mode; choose one of "
                f"{', '.join(SPECULATION_MODES)}")
    g = p.add_argument_group("embedded engine (--engine llamacpp)")
    g.add_argument("--speculation", default=speculation, choices=list(SPECULATION_MODES),
                   help="speculative decoding in the embedded engine: ngram (n-gram drafts, no extra model), "
                        "draft (the 0.5B model drafts for the quality preset's 1.5B; slower on a small CPU), "
                        f"none; auto: ngram (default: ${SPECULATION_ENV} or auto)")
    g = p.add_argument_group("remote engine (--engine openai)")
    g.add_argument("--remote-url", default="", help="OpenAI-compatible server, e.g. https://llm.example.com/v1")
    g.add_argument("--remote-model", default="", help="served model id (default: the first the server lists)")
    g.add_argument("--api-key-env", default="", help="NAME of the environment variable holding the API key")
    g.add_argument("--ca-bundle", default="", help="PEM file of a private certificate authority")
    g.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    g.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to connect")
    g.add_argument("--read-timeout", type=float, default=60.0, help="longest wait between streamed tokens")
    g.add_argument("--retries", type=int, default=3, help="retries after connection errors (never mid-answer)")
    g.add_argument("--remote-priority", action="store_true",
                   help="send vLLM's priority field (server started with --scheduling-policy priority)")
    g = p.add_argument_group("vLLM engine (--engine vllm; set up with `nearcode engine install vllm`)")
    g.add_argument("--vllm-model", default="",
                   help="local model folder (or, on a GPU, a Hugging Face id); default: the --model GGUF converted")
    g.add_argument("--vllm-gpu-memory", type=float, default=0.80, help="share of GPU memory vLLM may use")
    g.add_argument("--vllm-max-model-len", type=int, default=8192, help="context length")
    g.add_argument("--vllm-max-num-seqs", type=int, default=0, help="sequences batched together (0: 8 CPU, 16 GPU)")
    g.add_argument("--vllm-python", default="", help="the interpreter of another vLLM environment")
    g.add_argument("--vllm-command", default="",
                   help="run this OpenAI-compatible server instead of vLLM (tests); {model} {port} {host}")


def engine_options_from(args: argparse.Namespace) -> EngineOptions:
    return EngineOptions(
        remote_url=args.remote_url, remote_model=args.remote_model, api_key_env=args.api_key_env,
        ca_bundle=args.ca_bundle, insecure=args.insecure, connect_timeout_s=args.connect_timeout,
        read_timeout_s=args.read_timeout, retries=args.retries, remote_priority=args.remote_priority,
        vllm_model=args.vllm_model, vllm_gpu_memory=args.vllm_gpu_memory,
        vllm_max_model_len=args.vllm_max_model_len, vllm_max_num_seqs=args.vllm_max_num_seqs,
        vllm_python=args.vllm_python, vllm_command=args.vllm_command, speculation=args.speculation,
    )
