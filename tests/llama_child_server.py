"""A real OpenAI-compatible server for tests: llama.cpp's server (xllamacpp) on 127.0.0.1:PORT.

It stands in for `vllm serve` (which needs a GPU): the vLLM engine's supervisor starts it as its
child and its client talks to it, exactly as they would to vLLM. The API key comes from
VLLM_API_KEY, as vLLM takes it.

  python tests/llama_child_server.py MODEL.gguf --port PORT [--parallel 2] [--ctx 4096] [--served-model-name ID]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import xllamacpp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--served-model-name", default="", help="the id /v1/models lists (as vLLM's flag)")
    args = parser.parse_args()
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx * args.parallel
    params.cache_prompt = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.port = args.port
    params.endpoint_slots = True  # the tests read /slots to see that a cancelled request stopped
    params.verbosity = -1
    if args.served_model_name:
        params.model_alias = {args.served_model_name}
    key = os.environ.get("VLLM_API_KEY", "")
    if key:
        params.api_keys = [key]
    server = xllamacpp.Server(params)
    print("listening", server.listening_address, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
