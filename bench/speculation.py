#!/usr/bin/env python3
"""Speculative decoding in the embedded engine, measured on FIM prompts cut from this repository.

  .venv/bin/python bench/speculation.py                          # none vs ngram, 20 cases, 0.5B
  .venv/bin/python bench/speculation.py --model ~/.cache/nearcode/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
      --modes none,ngram,draft,draft-only                        # the quality preset

Each mode gets a fresh llama.cpp server (xllamacpp, in process) with the daemon's own speculation
settings (daemon/engines/speculation.py, imported from this clone), which answers every case twice:
*cold* (a prompt it has never seen) and *cached* (the same request again: the prompt is in the
slot's KV cache, and NGRAM_MOD's pool holds the first answer, as when a user types through a
suggestion or asks again). Decode speed is llama.cpp's own (`predicted_n / predicted_ms`, prompt
reading excluded); latency is the whole request, as this process sees it.

Cases: `--cases` (20) Python files of this repository (daemon/, lsp/, nearcode/, bench/), one case
per file, kinds mid_line / line_start / block 40/30/30, cut by casekit.py (the project bench's
rules). Prompts: Qwen2.5-Coder FIM, ~`--prefix-chars` before the cursor and ~`--suffix-chars` after
it; greedy; mid_line and line_start stop at the end of the line (the daemon's single-line mode),
block at `--max-tokens`. Standard library + xllamacpp only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casekit import KINDS, cut_case, read_facts
from hostload import OthersMeter, load_average

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the daemon's speculation settings, from this clone

from nearcode.daemon.engines import speculation as spec  # noqa: E402

SOURCE_FOLDERS = ("daemon", "lsp", "nearcode/cli", "nearcode/shared", "bench")
KIND_SHARES = {"mid_line": 0.4, "line_start": 0.3, "block": 0.3}
FIM_STOPS = ["<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>", "<|fim_prefix|>",
             "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>"]
# Measured modes: the daemon's three, and a drafter without NGRAM_MOD (what the combination adds).
MODES = ("none", "ngram", "draft", "draft-only")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    path: str
    prompt: str
    truth: str


@dataclass(frozen=True)
class Sample:
    """One request's figures."""

    case: str
    kind: str
    phase: str  # cold or cached
    wall_ms: float
    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float
    drafted: int
    accepted: int
    text: str

    @property
    def decode_tps(self) -> float | None:
        return self.predicted_n / self.predicted_ms * 1000 if self.predicted_n >= 2 and self.predicted_ms > 0 else None


def source_files(root: Path) -> list[Path]:
    files = {p for folder in SOURCE_FOLDERS for p in (root / folder).rglob("*.py")}
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def kind_targets(n: int) -> dict[str, int]:
    targets = {kind: int(n * share) for kind, share in KIND_SHARES.items()}
    targets["mid_line"] += n - sum(targets.values())
    return targets


def fim_prompt(text: str, cursor: int, prefix_chars: int, suffix_chars: int) -> str:
    """The FIM prompt around `cursor`: whole lines up to ~prefix_chars before, ~suffix_chars after."""
    before, after = text[:cursor], text[cursor:]
    if len(before) > prefix_chars:
        cut = before.find("\n", len(before) - prefix_chars)
        before = before[cut + 1:] if cut >= 0 else before[-prefix_chars:]
    if len(after) > suffix_chars:
        cut = after.rfind("\n", 0, suffix_chars)
        after = after[:cut + 1] if cut > 0 else after[:suffix_chars]
    return f"<|fim_prefix|>{before}<|fim_suffix|>{after}<|fim_middle|>"


def build_cases(root: Path, n: int, seed: int, prefix_chars: int, suffix_chars: int) -> list[Case]:
    rng = random.Random(seed)
    files = source_files(root)
    rng.shuffle(files)
    wanted, cases = kind_targets(n), list[Case]()
    for path in files:
        facts = read_facts(path)
        if facts is None:
            continue
        kind = next((k for k in KINDS if wanted[k] and facts.offers(k)), None)
        if kind is None:
            continue
        cut = cut_case(facts, kind, rng)
        cursor = _cursor_offset(cut)
        wanted[kind] -= 1
        cases.append(Case(f"spec-{len(cases):02d}", kind, path.relative_to(root).as_posix(),
                          fim_prompt(cut["text"], cursor, prefix_chars, suffix_chars), cut["ground_truth"]))
        if len(cases) == n:
            break
    return cases


def _cursor_offset(cut: dict[str, Any]) -> int:
    """The cursor as an offset in the masked text (it ends its line: the line's length)."""
    lines = cut["text"].split("\n")
    line = cut["cursor"]["line"]
    return sum(len(x) + 1 for x in lines[:line]) + len(lines[line])


class Server:
    """llama.cpp's server in this process with one mode's speculation."""

    def __init__(self, model: Path, mode: str, draft_model: Path | None, threads: int, ctx: int) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(model)
        params.n_ctx, params.n_parallel = ctx, 1
        params.n_batch = params.n_ubatch = 256  # the daemon's (daemon/engines/llamacpp.py)
        params.cache_prompt = True
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        params.port = 0
        params.api_keys = [os.urandom(16).hex()]
        params.verbosity = -1
        config = spec.SpeculationConfig(kind=mode.removesuffix("-only"), draft_model=draft_model)
        spec.apply_speculation(params, config, xllamacpp.common_speculative_type, threads)
        if mode == "draft-only":
            params.speculative.types = [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        self.server = xllamacpp.Server(params)

    def complete(self, case: Case, phase: str, max_tokens: int) -> Sample:
        stops = FIM_STOPS + (["\n"] if case.kind != "block" else [])
        body = {"prompt": case.prompt, "n_predict": max_tokens, "temperature": 0.0, "stream": True,
                "cache_prompt": True, "id_slot": 0, "stop": stops}
        chunks: list[dict[str, Any]] = []

        def collect(chunk: dict[str, Any]) -> bool:
            chunks.append(chunk)
            return False  # never stop early: the whole answer is measured

        started = time.perf_counter()
        self.server.handle_completions(body, collect)
        wall_ms = (time.perf_counter() - started) * 1000
        errors = [c for c in chunks if "error" in c]
        if errors:
            raise RuntimeError(f"{case.id}: {errors[0]['error']}")
        timings = chunks[-1].get("timings", {}) if chunks else {}
        text = "".join(str((c.get("choices") or [{}])[0].get("text") or "") for c in chunks)
        return Sample(case.id, case.kind, phase, round(wall_ms, 1), int(timings.get("prompt_n", 0)),
                      float(timings.get("prompt_ms", 0.0)), int(timings.get("predicted_n", 0)),
                      float(timings.get("predicted_ms", 0.0)), int(timings.get("draft_n", 0)),
                      int(timings.get("draft_n_accepted", 0)), text)


def run_mode(mode: str, cases: list[Case], args: argparse.Namespace) -> list[Sample]:
    server = Server(args.model, mode, args.draft_model, args.threads, args.ctx)
    server.complete(Case("warmup", "block", "", "<|fim_prefix|>def f():\n    return<|fim_suffix|><|fim_middle|>", ""),
                    "warmup", 4)
    samples = []
    for case in cases:
        for phase in ("cold", "cached"):
            sample = server.complete(case, phase, args.max_tokens)
            samples.append(sample)
            print(f"bench: {mode:10} {case.id} {case.kind:10} {phase:6} {sample.wall_ms:7.0f} ms "
                  f"{sample.predicted_n:3} tokens drafted {sample.drafted:3} accepted {sample.accepted:3}",
                  file=sys.stderr)
    del server
    return samples


@dataclass
class Row:
    mode: str
    phase: str
    kind: str
    n: int
    decode_tps: float | None
    speedup: float | None
    drafted: int
    accepted: int
    latency_p50_ms: float
    exact_first_line: int
    same_as_none: int | None

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None


def summarize(results: dict[str, list[Sample]], cases: list[Case]) -> list[Row]:
    truth = {c.id: c.truth.split("\n")[0].strip() for c in cases}
    plain = {(s.case, s.phase): s.text for s in results.get("none", [])}
    rows = []
    for mode, samples in results.items():
        for phase in ("cold", "cached"):
            for kind in (*KINDS, "all"):
                chosen = [s for s in samples if s.phase == phase and kind in (s.kind, "all")]
                if not chosen:
                    continue
                speeds = [t for s in chosen if (t := s.decode_tps) is not None]
                rows.append(Row(
                    mode, phase, kind, len(chosen), statistics.median(speeds) if speeds else None, None,
                    sum(s.drafted for s in chosen), sum(s.accepted for s in chosen),
                    statistics.median(s.wall_ms for s in chosen),
                    sum(s.text.split("\n")[0].strip() == truth[s.case] for s in chosen),
                    sum(plain.get((s.case, s.phase)) == s.text for s in chosen) if plain else None,
                ))
    base = {(r.phase, r.kind): r.decode_tps for r in rows if r.mode == "none"}
    for row in rows:
        reference = base.get((row.phase, row.kind))
        if reference and row.decode_tps:
            row.speedup = row.decode_tps / reference
    return rows


def markdown(rows: list[Row]) -> str:
    def num(value: float | None, pattern: str) -> str:
        return "-" if value is None else format(value, pattern)

    lines = ["| mode | prompt | kind | n | decode tok/s | vs none | drafted | accepted | acceptance "
             "| p50 latency | exact 1st line | same text as none |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.mode} | {r.phase} | {r.kind} | {r.n} | {num(r.decode_tps, '.1f')} | "
                     f"{num(r.speedup, '.2f')}x | {r.drafted} | {r.accepted} | {num(r.acceptance, '.2f')} | "
                     f"{r.latency_p50_ms / 1000:.2f} s | {r.exact_first_line}/{r.n} | "
                     f"{'-' if r.same_as_none is None else f'{r.same_as_none}/{r.n}'} |")
    return "\n".join(lines)


def default_model() -> Path:
    """The default preset's 0.5B where `nearcode model install` puts it."""
    cache = Path(os.environ.get("NEARCODE_CACHE_DIR") or Path.home() / ".cache" / "nearcode")
    name: str = spec.DRAFT_MODEL_FILE
    return cache / "models" / name


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=default_model(), help="GGUF file (default: the 0.5B preset)")
    ap.add_argument("--draft-model", type=Path, help="drafter for draft modes (default: the 0.5B beside --model)")
    ap.add_argument("--modes", default="none,ngram", help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prefix-chars", type=int, default=2400, help="~600 tokens")
    ap.add_argument("--suffix-chars", type=int, default=400, help="~100 tokens")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--samples", type=Path, help="also write every request's figures and text here (JSON lines)")
    args = ap.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := [m for m in args.modes if m not in MODES]:
        ap.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    args.model = args.model.expanduser()
    args.draft_model = (args.draft_model or args.model.with_name(spec.DRAFT_MODEL_FILE)).expanduser()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = build_cases(REPO, args.cases, args.seed, args.prefix_chars, args.suffix_chars)
    meter, load_start = OthersMeter(), load_average()
    results = {mode: run_mode(mode, cases, args) for mode in args.modes}
    host = meter.report()
    if args.samples:
        truths = {c.id: c.truth for c in cases}
        with args.samples.open("w", encoding="utf-8") as out:
            for mode, samples in results.items():
                for sample in samples:
                    out.write(json.dumps({"mode": mode, **dataclasses.asdict(sample), "truth": truths[sample.case]}) + "\n")
    kinds = {k: sum(c.kind == k for c in cases) for k in KINDS}
    print(f"## Speculative decoding: {args.model.name}, {len(cases)} cases {kinds}, "
          f"{args.max_tokens} tokens max, {args.threads} threads\n")
    print(markdown(summarize(results, cases)))
    print(f"\nhost: {host.note()}; load average at the start {load_start}")
    print(f"command: {shlex.join([sys.executable, 'bench/speculation.py', *(sys.argv[1:] if argv is None else argv)])}")
    settings = {k: dataclasses.asdict(v) for k, v in (("ngram", spec.NgramParams()), ("draft", spec.DraftParams()))}
    print(f"settings: {settings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
