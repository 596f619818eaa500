#!/usr/bin/env python3
"""`make bench`: nearcode, then the llama.cpp anchor, on the validation cases; one table.

Never both at once (2 cores): each side runs in its own process after the CPUs have settled. The
cases are generated first when missing; their digest is checked against the published one.

  .venv/bin/python bench/side_by_side.py                 # 80 single-file validation cases
  .venv/bin/python bench/side_by_side.py --xfile         # cross-file cases: nearcode --workspace
  .venv/bin/python bench/side_by_side.py --results A.json B.json   # only the table
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cases as case_gen
from daemonctl import log
from hostload import wait_for_idle
from results import BENCH_HOME, file_sha256, side_by_side, stamp

HERE = Path(__file__).resolve().parent


def ensure_cases(xfile: bool, explicit: Path | None) -> tuple[Path, str]:
    """The cases file (generated when missing) and a note on its digest."""
    path = explicit or BENCH_HOME / ("xcases-val.jsonl" if xfile else "cases-val.jsonl")
    if not path.exists():
        if explicit:
            raise SystemExit(f"side_by_side: {path} does not exist")
        log(f"{path} missing: generating it")
        case_gen.generate(case_gen.parse_args(["--xfile", "--out", str(path)] if xfile else ["--out", str(path)]))
    digest, published = file_sha256(path), case_gen.PUBLISHED_SHA256.get(path.name, "")
    if published and digest != published:
        log(f"WARNING: {path} has sha256 {digest}, the published set {published}: other package versions? "
            "Scores do not compare with the README's")
        return path, f"sha256 `{digest}`, **not the published `{published}`**"
    return path, f"sha256 `{digest}`" + (" (the published set)" if published else "")


def run_side(script: str, args: list[str], out: Path, commands: list[str]) -> dict[str, Any] | None:
    command = [sys.executable, str(HERE / script), *args, "--out", str(out)]
    commands.append(shlex.join(command))
    log("$ " + commands[-1])
    if subprocess.run(command, check=False).returncode != 0:
        log(f"WARNING: {script} did not finish every case")
    return json.loads(out.read_text(encoding="utf-8")) if out.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=80, help="the first N cases (default 80)")
    ap.add_argument("--xfile", action="store_true", help="the cross-file cases; nearcode in --workspace mode")
    ap.add_argument("--cases", type=Path, help="another cases file")
    ap.add_argument("--only", choices=["nearcode", "anchor"])
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--wait-idle", type=float, default=60.0, metavar="S", help="wait up to S s for idle CPUs")
    ap.add_argument("--run-args", default="", help="more arguments for run.py, e.g. '--settings {...}'")
    ap.add_argument("--results", nargs="+", type=Path, metavar="JSON", help="only tabulate these results")
    args = ap.parse_args(argv)
    when = stamp()
    header = [f"## nearcode vs the llama.cpp anchor on held-out code ({time.strftime('%Y-%m-%d %H:%M')})", ""]
    commands = [shlex.join([sys.executable, "bench/side_by_side.py", *(sys.argv[1:] if argv is None else argv)])]
    docs: list[tuple[str, dict[str, Any]]] = []
    if args.results:
        docs = [(p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in args.results]
    else:
        cases, note = ensure_cases(args.xfile, args.cases)
        header.append(f"- cases: `{cases}` {note}, first {args.limit}")
        common = ["--cases", str(cases), "--limit", str(args.limit), "--timeout", str(args.timeout)]
        sides = [("nearcode", "run.py", [*common, *(["--workspace"] if args.xfile else []),
                                         *shlex.split(args.run_args)]),
                 ("llama.cpp anchor", "anchor.py", common)]
        for name, script, side_args in sides:
            if args.only and not name.startswith(args.only[:5]):
                continue
            busy = wait_for_idle(name, args.wait_idle)
            header.append(f"- CPUs {busy * 100:.0f}% busy just before the {name} run")
            out = BENCH_HOME / "results" / f"{Path(script).stem}-{'x' if args.xfile else ''}val-{when}.json"
            if (doc := run_side(script, side_args, out, commands)) is not None:
                docs.append((f"{name} ({doc['meta'].get('mode')})", doc))
    if not docs:
        log("no results")
        return 1
    for label, doc in docs:
        header += [f"- {label}: {note}" for note in doc["meta"].get("notes", [])]
    table = side_by_side(docs, [*header, "", "Commands:", "", "```", *commands, "```"])
    report = BENCH_HOME / "results" / f"side-by-side-{when}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(table + "\n", encoding="utf-8")
    print(f"\n{table}\n\n(written to {report})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
