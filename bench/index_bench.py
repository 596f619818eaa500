#!/usr/bin/env python3
"""How long the workspace index takes to scan a tree, what memory it holds, and what it costs the
event loop while it works (issue 9: "bounded memory and CPU").

  .venv/bin/python bench/index_bench.py --tree /tmp/bench/venv/lib/python3.11/site-packages/pydantic
  .venv/bin/python bench/index_bench.py --generate 20000    # a generated tree of 20,000 source files

Indexes in this process with the daemon's own parts (WorkspaceRegistry: the watchdog observer and
the worker thread with its normal priority and pacing; nothing is waiting for completions, so the
scan never yields), while an asyncio loop on the main thread measures how late its 10 ms timers
fire: that lag is what indexing costs the daemon's event loop. Then times the lookups the context
assembly makes under its ~20 ms deadline. Prints one JSON object (and a readable summary).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nearcode.daemon.workspace import IndexLimits, WorkspaceRegistry  # noqa: E402

PYTHON = '''"""Module {n}: orders and their totals."""
from __future__ import annotations

from {package}.{sibling} import Helper{sibling_n}, compute_{sibling_n}

LIMIT_{n} = {n}


class Order{n}:
    """An order of module {n}."""

    currency: str = "EUR"

    def __init__(self, items: list[int], discount: float = 0.0) -> None:
        self.items = items
        self.discount = discount

    def total(self, tax: float = 0.2) -> float:
        """Sum with tax."""
        return sum(self.items) * (1 + tax) - self.discount


def compute_{n}(order: Order{n}, helper: Helper{sibling_n} | None = None) -> float:
    """Compute the total of an order."""
    return order.total() + compute_{sibling_n}(order)


class Helper{n}:
    pass
'''
TYPESCRIPT = '''import {{ Helper{sibling_n} }} from "./{sibling}";

/** Options of module {n}. */
export interface Options{n} {{
  retries: number;
  label?: string;
}}

export const DEFAULT_{n}: Options{n} = {{ retries: 3 }};

/** A client of module {n}. */
export class Client{n} {{
  private base: string;
  constructor(base: string) {{ this.base = base; }}
  /** Fetch one thing. */
  async fetch(path: string, options: Options{n} = DEFAULT_{n}): Promise<string> {{ return this.base + path; }}
}}

export class Helper{n} {{}}
export function make{n}(base: string): Client{n} {{ return new Client{n}(base); }}
'''
GO = '''package {package}

import "fmt"

// Store{n} keeps things.
type Store{n} struct {{
	Name  string
	Count int
}}

// Add adds one.
func (s *Store{n}) Add(n int) error {{ s.Count += n; return nil }}

// New{n} makes a store.
func New{n}(name string) *Store{n} {{ fmt.Println(name); return &Store{n}{{Name: name}} }}
'''
RUST = '''use std::collections::HashMap;

/// A cache of module {n}.
pub struct Cache{n} {{
    pub entries: HashMap<String, u64>,
}}

impl Cache{n} {{
    /// Make an empty cache.
    pub fn new() -> Self {{ Cache{n} {{ entries: HashMap::new() }} }}
    pub fn get(&self, key: &str) -> Option<u64> {{ self.entries.get(key).copied() }}
}}

pub const CAPACITY_{n}: usize = {n};
'''
JAVA = '''package {package};

import java.util.List;

/** Inventory of module {n}. */
public class Inventory{n} {{
    public static final int MAX_{n} = {n};
    private List<String> items;

    /** Add an item. */
    public boolean add(String item, int count) {{ return items.add(item); }}
}}
'''
KINDS = [("py", PYTHON, 70), ("ts", TYPESCRIPT, 15), ("go", GO, 5), ("rs", RUST, 5), ("java", JAVA, 5)]


def generate_tree(root: Path, files: int, seed: int = 7) -> None:
    """A deterministic tree of exactly `files` source files: packages of 20 modules in groups of 10
    packages, 70% Python and the rest TypeScript, Go, Rust and Java, importing their neighbours,
    with the folders a real project has (node_modules, .git, build) holding files that must be
    skipped, plus a .gitignore."""
    rng = random.Random(seed)
    weights = [w for _, _, w in KINDS]
    root.mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("build/\n*.generated.py\n")
    for skipped in ("node_modules/lib", ".git/objects", "build"):
        (root / skipped).mkdir(parents=True, exist_ok=True)
        for i in range(50):
            (root / skipped / f"skip{i}.js").write_text("export const skipped = 1;\n")
    made, n = 0, 0
    while made < files:
        suffix, template, _ = rng.choices(KINDS, weights)[0]
        group, package_n = n // 200, (n // 20) % 10
        package = f"pkg{package_n}"
        folder = root / f"group{group:03}" / package
        folder.mkdir(parents=True, exist_ok=True)
        if suffix == "py" and not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("")  # a source file too: it counts
            made += 1
            if made == files:
                break
        sibling_n = n - 1 if n % 20 else n + 1
        name = f"Inventory{n}.java" if suffix == "java" else f"mod_{n}.{suffix}"
        (folder / name).write_text(template.format(n=n, package=package, sibling=f"mod_{sibling_n}", sibling_n=sibling_n))
        made, n = made + 1, n + 1


def memory_kb() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


async def measure(root: Path, limits: IndexLimits) -> dict[str, object]:
    before = memory_kb()
    registry = WorkspaceRegistry(limits)
    started = time.perf_counter()
    registry.set_folders("bench", os.getpid(), [str(root)])
    index = registry.index_at(root)
    assert index is not None
    lags: list[float] = []
    while index.status.state == "scanning":
        tick = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - tick - 0.01) * 1000)
    seconds = time.perf_counter() - started
    status = index.status
    after = memory_kb()
    sample = [d for stem in ("mod_1", "mod_2", "main", "fields") for p in index.files_with_stem(stem)
              for d in index.file_definitions(p)][:50]
    by_name, through_imports = [], []
    for found in sample:  # common names (`__init__`, `total`) as well as unique ones
        tick = time.perf_counter()
        index.definitions(found.name)
        by_name.append((time.perf_counter() - tick) * 1000)
        tick = time.perf_counter()
        for ref in index.file_imports(found.path):
            index.resolve(found.path, ref)
        index.lookup(found.path, found.name)
        through_imports.append((time.perf_counter() - tick) * 1000)
    registry.close()
    lags.sort()
    return {
        "root": str(root),
        "state": status.state,
        "message": status.message,
        "files": status.files,
        "definitions": status.definitions,
        "skipped": status.skipped,
        "index_seconds": round(seconds, 2),
        "files_per_second": round(status.files / seconds) if seconds else None,
        "rss_mb_before": round(before["VmRSS"] / 1024, 1),
        "rss_mb_after": round(after["VmRSS"] / 1024, 1),
        "rss_mb_index": round((after["VmRSS"] - before["VmRSS"]) / 1024, 1),
        "peak_rss_mb": round(after["VmHWM"] / 1024, 1),
        "event_loop_lag_ms": {
            "p50": round(statistics.median(lags), 2) if lags else None,
            "p99": round(lags[int(len(lags) * 0.99)], 2) if lags else None,
            "max": round(lags[-1], 2) if lags else None,
        },
        "definitions_by_name_ms": _spread(by_name),
        "resolve_imports_and_lookup_ms": _spread(through_imports),
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    return {"p50": round(statistics.median(values), 3), "max": round(max(values), 3)} if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tree", type=Path, help="index this folder")
    source.add_argument("--generate", type=int, metavar="FILES", help="generate a tree of this many source files")
    parser.add_argument("--max-files", type=int, default=IndexLimits().max_files)
    args = parser.parse_args()
    limits = IndexLimits(max_files=args.max_files)
    if args.tree:
        result = asyncio.run(measure(args.tree.resolve(), limits))
    else:
        with tempfile.TemporaryDirectory(prefix="nc-index-bench-") as folder:
            root = Path(folder) / "tree"
            tick = time.perf_counter()
            generate_tree(root, args.generate)
            print(f"generated {args.generate:,} files in {time.perf_counter() - tick:.1f} s", file=sys.stderr)
            result = asyncio.run(measure(root, limits))
    print(json.dumps(result, indent=2))
    print(
        f"\n{result['files']:,} files, {result['definitions']:,} definitions: {result['state']} in "
        f"{result['index_seconds']} s; RSS {result['rss_mb_before']} -> {result['rss_mb_after']} MB "
        f"(+{result['rss_mb_index']} MB, peak {result['peak_rss_mb']} MB); event-loop lag "
        f"{result['event_loop_lag_ms']}", file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
