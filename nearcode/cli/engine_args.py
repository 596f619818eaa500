"""Command-line options for choosing and configuring an engine (shared by `daemon` and `doctor`)."""

from __future__ import annotations

import argparse

from nearcode.daemon.engines.engine_choice import ENGINES
from nearcode.daemon.engines.factory import EngineOptions


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="auto", choices=list(ENGINES),
                   help="auto: vLLM with a CUDA GPU, vllm and --vllm-model, else embedded llama.cpp")
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
    g = p.add_argument_group("vLLM engine (--engine vllm)")
    g.add_argument("--vllm-model", default="", help="Hugging Face id or local model folder to serve")
    g.add_argument("--vllm-gpu-memory", type=float, default=0.80, help="share of GPU memory vLLM may use")
    g.add_argument("--vllm-max-model-len", type=int, default=8192, help="context length")
    g.add_argument("--vllm-max-num-seqs", type=int, default=16, help="sequences batched together")
    g.add_argument("--vllm-port", type=int, default=0, help="loopback port of the child server (0: free)")
    g.add_argument("--vllm-command", default="",
                   help="replaces `vllm serve {model}` (e.g. a vllm in another venv); {model} {port} {host}")


def engine_options_from(args: argparse.Namespace) -> EngineOptions:
    return EngineOptions(
        remote_url=args.remote_url, remote_model=args.remote_model, api_key_env=args.api_key_env,
        ca_bundle=args.ca_bundle, insecure=args.insecure, connect_timeout_s=args.connect_timeout,
        read_timeout_s=args.read_timeout, retries=args.retries, remote_priority=args.remote_priority,
        vllm_model=args.vllm_model, vllm_gpu_memory=args.vllm_gpu_memory,
        vllm_max_model_len=args.vllm_max_model_len, vllm_max_num_seqs=args.vllm_max_num_seqs,
        vllm_port=args.vllm_port, vllm_command=args.vllm_command,
    )
