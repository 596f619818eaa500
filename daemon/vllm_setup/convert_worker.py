"""GGUF -> bf16 safetensors folder, run by the vLLM environment's Python (never imported by nearcode).

vLLM 0.32 cannot load GGUF, so the installed GGUF is converted once, offline, with transformers
5.x + gguf + accelerate (installed in the vLLM environment, beside vLLM's own torch):

1. load it with `GgufConfig(dequantize=True)`: a dense model, but one that remembers its GGUF
   quantization config and refuses `save_pretrained`;
2. build a plain model from the same config without `quantization_config` and load the dense state
   dict into it (strictly: a missing or extra tensor is an error, not a silently random weight);
3. save bf16 safetensors and the tokenizer;
4. check that every token the prompt family relies on (FIM markers, stop tokens) encodes to exactly
   one id, and report those ids (they become vLLM's `stop_token_ids`).

Progress goes to stdout as JSON lines ({"step", "done", "total"}), the result as a final
{"result": {...}} line; errors as {"error": "..."} with exit code 1. Usage:

  python convert_worker.py --gguf MODEL.gguf --out DIR --tokens '["<|fim_prefix|>", ...]'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STEPS = ("load tokenizer", "dequantize GGUF", "rebuild plain model", "save safetensors", "check tokens")


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def convert(gguf: Path, out: Path, tokens: list[str]) -> dict[str, Any]:
    os.environ["HF_HUB_OFFLINE"] = "1"  # a local file: never ask the Hub for anything
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    def step(index: int) -> None:
        report(step=STEPS[index], done=index, total=len(STEPS))

    started = time.monotonic()
    step(0)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    step(1)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=str(gguf), dequantize=True),
    )
    step(2)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    state = {name: tensor.to(torch.bfloat16) for name, tensor in loaded.state_dict().items()}
    del loaded
    plain.load_state_dict(state, strict=True)
    del state
    step(3)
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    step(4)
    token_ids: dict[str, int] = {}
    problems: list[str] = []
    for token in tokens:
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) == 1:
            token_ids[token] = int(ids[0])
        else:
            problems.append(f"{token!r} encodes to {len(ids)} ids {ids}")
    if problems:
        raise ValueError("tokens the prompt family needs are not single tokens: " + "; ".join(problems))
    report(step="done", done=len(STEPS), total=len(STEPS))
    return {
        "architecture": (plain.config.architectures or ["?"])[0],
        "tied_embeddings": bool(getattr(plain.config, "tie_word_embeddings", False)),
        "token_ids": token_ids,
        "seconds": round(time.monotonic() - started, 1),
        "versions": {"torch": torch.__version__, "transformers": _version("transformers"), "gguf": _version("gguf")},
    }


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tokens", default="[]", help="JSON list of tokens that must each be one id")
    args = parser.parse_args()
    try:
        result = convert(args.gguf, args.out, list(json.loads(args.tokens)))
    except Exception as exc:  # reported to the driver as one line; it shows it to the user
        report(error=f"{type(exc).__name__}: {exc}")
        return 1
    report(result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
