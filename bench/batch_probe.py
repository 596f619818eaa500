#!/usr/bin/env python3
"""What the prompt batch size costs and buys: llama.cpp (xllamacpp) directly, no daemon.

For each batch size: the reading speed of three cold prompts, the decoding speed of three 48-token
answers, and how long a short request in
another slot waits after a long read in progress is told to stop (its progress callback returns
True), at three moments into the read. llama.cpp reports, and so can be stopped, only between
prompt batches, and a stop asked for at one report takes effect after the next batch: that wait is
what a keystroke meets behind a stale or background read. daemon/engines/llamacpp.py's
LlamaCppConfig.batch_tokens comes from this (docs/benchmark.md, 2026-12-01 evening). The prompts
are cut from the standard library's pprint.py (never copied into the repository).

  .venv/bin/python bench/batch_probe.py [--model quality] [--batches 256,128,64]

It measures whichever xllamacpp the interpreter imports: the prebuilt wheel or the build for this
CPU (`nearcode engine install native`; PYTHONPATH=<an unpacked wheel> compares the other).
"""

from __future__ import annotations

import argparse
import inspect
import pprint
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from anchor import model_path

REPO = Path(__file__).resolve().parent.parent
SOURCE = Path(inspect.getsourcefile(pprint) or "").read_text()


def server_for(model: str, batch: int) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.n_parallel = 2
    params.n_ctx = 8192
    params.n_batch = params.n_ubatch = batch
    params.cache_prompt = True
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
    params.port = 0
    params.verbosity = -1  # its logs would print the prompts
    return xllamacpp.Server(params)


def reading_speeds(server: Any) -> list[float]:
    speeds = []
    for k in range(3):
        text = SOURCE[3000 + k * 2500 : 3000 + k * 2500 + 1800]
        timings = server.handle_completions({"prompt": text, "n_predict": 1, "cache_prompt": False, "id_slot": 1})["timings"]
        speeds.append(timings["prompt_n"] / timings["prompt_ms"] * 1000)
    return speeds


def decoding_speeds(server: Any) -> list[float]:
    """Tokens per second while generating (one stream, after a short prompt): what a line costs."""
    speeds = []
    for k in range(3):
        body = {"prompt": SOURCE[20000 + k * 900 : 20000 + k * 900 + 600], "n_predict": 48, "ignore_eos": True,
                "temperature": 0, "cache_prompt": False, "id_slot": 1}  # fmt: skip
        timings = server.handle_completions(body)["timings"]
        speeds.append(timings["predicted_n"] / timings["predicted_ms"] * 1000)
    return speeds


def wait_after_stop(server: Any, stop_after_s: float, k: int) -> float:
    """Seconds from asking a long read in slot 0 to stop until a short request in slot 1 answers."""
    stop = threading.Event()
    body = {"prompt": SOURCE[11000 + k * 4000 : 13600 + k * 4000], "n_predict": 4, "cache_prompt": True,
            "stream": True, "return_progress": True, "id_slot": 0}  # fmt: skip
    reader = threading.Thread(target=server.handle_completions, args=(body, lambda _chunk: stop.is_set()))
    reader.start()
    time.sleep(stop_after_s)
    stop.set()
    asked = time.monotonic()
    server.handle_completions({"prompt": f"x = {k}\ny = ", "n_predict": 2, "id_slot": 1})
    waited = time.monotonic() - asked
    reader.join()
    return waited


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fast", help="preset name or GGUF path")
    ap.add_argument("--batches", default="256,128,64")
    args = ap.parse_args()
    model = args.model if args.model.endswith(".gguf") else str(model_path(REPO / ".venv" / "bin" / "nearcode", args.model))
    print(f"model {Path(model).name}; 2 threads")
    for batch in (int(b) for b in args.batches.split(",")):
        server = server_for(model, batch)
        server.handle_completions({"prompt": "x = 1\n", "n_predict": 1, "id_slot": 1})  # warm
        speeds = reading_speeds(server)
        decoding = decoding_speeds(server)
        waits = [wait_after_stop(server, at, k) for k, at in enumerate((0.5, 2.0, 4.0))]
        print(f"batch {batch:4}: reads {statistics.median(speeds):5.1f} tokens/s "
              f"({', '.join(f'{s:.0f}' for s in speeds)}), decodes {statistics.median(decoding):4.1f} tokens/s "
              f"({', '.join(f'{s:.1f}' for s in decoding)}); a request waits "
              f"{', '.join(f'{w:.2f}' for w in waits)} s after a read is stopped at 0.5 / 2 / 4 s", flush=True)  # fmt: skip
        del server  # frees the model before the next one loads
    return 0


if __name__ == "__main__":
    sys.exit(main())
