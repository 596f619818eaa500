#!/usr/bin/env python3
"""Does the prompt's context block hold the definition the answer needs? Per cross-file case, with
no model: the daemon's own workspace index and prompt builder on the case's masked workspace.

  .venv/bin/python bench/cases.py --xfile             # $BENCH_HOME/xcases-val.jsonl (default /tmp/bench)
  .venv/bin/python bench/context_reach.py --cases /tmp/bench/xcases-val.jsonl [--budget 256] [--show ID,ID]

A cross-file case's truth uses a name only another module defines (`foreign_names`); the case
counts as reached when one of those names is in the context block the prompt would carry at this
cold budget, as a whole identifier (a few cases are reached by coincidence: a local variable of
the same name). This is what a change to retrieval or fitting can move before the model has a
say, and it is deterministic, where an end-to-end run moves by a case or two with the host's
speed (docs/benchmark.md). Token counts are estimated (3.2 characters per token: no model is loaded), so
the fit is close to, not exactly, the daemon's. Prints one line per case and the total.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import build_workspace  # noqa: E402
from nearcode.daemon.context.assembler import ContextAssembler  # noqa: E402
from nearcode.daemon.context.document_prompts import DocumentPrompts, PromptRequest  # noqa: E402
from nearcode.daemon.prompting.fim import PromptBudget  # noqa: E402
from nearcode.daemon.prompting.templates import fim_templates  # noqa: E402
from nearcode.daemon.workspace.index import WorkspaceIndex  # noqa: E402

CHARS_PER_TOKEN = 3.2


def names_word(name: str) -> re.Pattern[str]:
    """`name` as a whole identifier: `_complete` is not in `__pydantic_complete__`, nor `structure`
    in `unstructure` (both counted as reached before)."""
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")


async def estimated_tokens(text: str) -> int:
    return max(1, int(len(text) / CHARS_PER_TOKEN))


async def reach(case: dict[str, Any], budget: int, show: bool) -> tuple[bool, str]:
    folder = Path(tempfile.mkdtemp(prefix="reach-"))
    try:
        build_workspace(case, folder)
        index = WorkspaceIndex(folder)
        while index.scan_step(1.0) or index.scanning():
            pass
        index.process_changes(100_000)
        assembler = ContextAssembler(lambda path: index, deadline_s=1.0)
        prompts = DocumentPrompts(fim_templates()["qwen2.5-coder"], estimated_tokens, assembler)
        lines = case["text"].split("\n")
        line, character = case["cursor"]["line"], case["cursor"]["character"]
        prefix = "\n".join([*lines[:line], lines[line][:character]])
        suffix = lines[line][character:] + "\n" + "\n".join(lines[line + 1:])
        request = PromptRequest("reach", "doc", "doc", str(folder / case["path"]), "python", prefix, suffix,
                                "workspace", single_line=case["kind"] != "block")
        built = await prompts.build(request, PromptBudget(total_tokens=budget), 0)
        context = built.prompt.context
        text = context.text if context else ""
        reached = any(names_word(name).search(text) for name in case["foreign_names"])
        kept = [f"{r.name or r.path}:{r.tokens}" for r in (context.reports if context else ()) if r.status != "dropped"]
        return reached, " ".join(kept) + (("\n" + text) if show else "")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", required=True, help="cross-file cases (bench/cases.py --xfile, or make_xfile_cases.py)")
    parser.add_argument("--budget", type=int, default=256, help="the cold prompt's tokens (`nearcode status` says it)")
    parser.add_argument("--show", default="", help="case ids whose context block to print")
    args = parser.parse_args()
    shown = set(filter(None, args.show.split(",")))
    cases = [json.loads(line) for line in Path(args.cases).read_text().splitlines() if line.strip()]
    reached = 0
    for case in cases:
        ok, detail = await reach(case, args.budget, case["id"] in shown)
        reached += ok
        print(f"{case['id']:<14} {case['kind']:<10} {'reached' if ok else '-':<8} {detail}", flush=True)
    print(json.dumps({"cases": len(cases), "reached": reached, "budget": args.budget}))


if __name__ == "__main__":
    asyncio.run(main())
