#!/usr/bin/env python3
"""The project bench's validation cases: held-out code from 17 Python packages (never the stdlib,
attrs or pydantic, which the public cases use), pinned by hash in bench/validation-packages.txt and
installed once, --no-deps, into $BENCH_HOME/val-packages, where they are only read, never imported.

Deterministic for a fixed seed: the versions are the pinned ones whatever nearcode's own
dependencies resolve to (the cases were drawn from the project venv until 2026-12-02, when
`uvicorn>=0.30` resolved to 0.55.0 and changed them); each version is recorded and checked against
the one the published digest was made with. One case per file, kinds mixed
40/30/30 (mid_line / line_start / block) under the shared bench's rules (casekit.py).

  .venv/bin/python bench/cases.py            # -> $BENCH_HOME/cases-val.jsonl  (200 cases)
  .venv/bin/python bench/cases.py --xfile    # -> $BENCH_HOME/xcases-val.jsonl (cross-file cases)

Cross-file cases: the first line of the truth uses a specific name (an underscore, a capital or 8+
letters; not a dunder, not a builtin method) that the masked file never mentions but another module
of the same package defines; `workspace` = {root, package} tells the runner what folder to copy.

The cases hold third-party source text: they go to $BENCH_HOME (default /tmp/bench), never into
this repository. The sha256 of the file is printed and written to <out>.meta.json.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import hashlib
import importlib.metadata
import json
import keyword
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casekit import KINDS, FileFacts, cut_case, places, read_facts

DEFAULT_HOME = Path(os.environ.get("BENCH_HOME", "/tmp/bench"))
PINNED = Path(__file__).resolve().parent / "validation-packages.txt"
SEED = "20261201"
SET_NAME, XSET_NAME = "val", "xfile-val"
KEYS = ["id", "set", "source", "component", "path", "language", "kind", "cursor", "ground_truth",
        "foreign_names", "orig_lines", "src_sha256", "workspace", "text"]


@dataclass(frozen=True)
class Package:
    dist: str  # distribution name, for importlib.metadata
    top: str  # the import directory cases come from
    version: str  # the version the README's digest was made with


# The packages of validation-packages.txt (versions of 2026-12-01): a pin file with other versions
# gives other cases, and the run warns, as digests then differ from the README's.
PACKAGES = (
    Package("httpx", "httpx", "0.28.1"), Package("httpcore", "httpcore", "1.0.9"),
    Package("h11", "h11", "0.16.0"), Package("anyio", "anyio", "4.16.0"),
    Package("starlette", "starlette", "1.10.0"), Package("uvicorn", "uvicorn", "0.54.0"),
    Package("click", "click", "8.5.1"), Package("pygls", "pygls", "2.1.1"),
    Package("lsprotocol", "lsprotocol", "2025.0.0"), Package("cattrs", "cattrs", "26.2.1"),
    Package("tqdm", "tqdm", "4.70.1"), Package("pytest", "_pytest", "9.2.0"),
    Package("pluggy", "pluggy", "1.7.0"), Package("packaging", "packaging", "26.4"),
    Package("pathspec", "pathspec", "1.1.1"), Package("Pygments", "pygments", "2.21.0"),
    Package("mypy", "mypy", "2.4.1"),
)
# The digests of the default files made with the versions above on Python 3.11.7 (README.md). A
# cross-file case names the folder its workspace is copied from: that digest holds for the default
# $BENCH_HOME (/tmp/bench) only.
PUBLISHED_SHA256 = {
    "cases-val.jsonl": "b9d00d6a4967ae237ef9df8971e7ea961b4498b8483c4794437dde504a01c463",
    "xcases-val.jsonl": "168035c291578e16d1306a7ead1209ca3774b09c9fac02cf9a09d4539ee6a1bb",
}
_NOT_SOURCE_DIRS = {"tests", "test", "testing", "__pycache__", "typeshed", "_vendor", "vendor"}


@dataclass(frozen=True)
class SourceFile:
    package: Package
    root: Path  # site-packages: relpath is relative to it
    relpath: str  # e.g. "httpx/_client.py"

    @property
    def path(self) -> Path:
        return self.root / self.relpath


def install_pinned(target: Path, pinned: Path = PINNED) -> Path:
    """The pinned packages in `target` (installed there once per version of the pin file)."""
    stamp = target / ".pinned-sha256"
    wanted = hashlib.sha256(pinned.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == wanted:
        return target
    print(f"cases: installing the pinned validation packages into {target}", file=sys.stderr)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--upgrade",
               "--target", str(target), "-r", str(pinned)]
    if subprocess.run(command, check=False).returncode != 0:
        raise SystemExit(f"cases: could not install {pinned} into {target}")
    stamp.write_text(wanted + "\n", encoding="utf-8")
    return target


def package_files(package: Package, where: Path) -> tuple[str, list[SourceFile]]:
    """The package's version and its source files (tests and vendored copies left out), from the
    folder `where` (the pinned install), never from this interpreter's packages."""
    found = list(importlib.metadata.distributions(name=package.dist, path=[str(where)]))
    if not found:
        raise SystemExit(f"cases: {package.dist} is not in {where}")
    dist = found[0]
    root = Path(str(dist.locate_file("")))
    files = []
    for entry in sorted(str(f) for f in dist.files or []):
        parts = entry.split("/")
        if (parts[0] == package.top and entry.endswith(".py") and not _NOT_SOURCE_DIRS & set(parts[:-1])
                and not parts[-1].startswith("test_") and parts[-1] != "conftest.py"):
            files.append(SourceFile(package, root, entry))
    return dist.version, files


def water_fill(total: int, caps: dict[str, int]) -> dict[str, int]:
    """Equal shares of `total`, each capped by what its package offers; the rest goes to the others."""
    given = dict.fromkeys(caps, 0)
    while total > 0:
        open_ = [name for name in caps if given[name] < caps[name]]
        if not open_:
            break
        share, extra = divmod(total, len(open_))
        for index, name in enumerate(open_):
            take = min(share + (index < extra), caps[name] - given[name])
            given[name] += take
            total -= take
    return given


def kind_targets(n: int, mix: dict[str, float]) -> dict[str, int]:
    """How many cases of each kind: floors, then the largest remainders get one more."""
    exact = {kind: n * mix[kind] for kind in KINDS}
    targets = {kind: int(value) for kind, value in exact.items()}
    for kind in sorted(KINDS, key=lambda k: targets[k] - exact[k])[: n - sum(targets.values())]:
        targets[kind] += 1
    return targets


def case_record(source: SourceFile, version: str, cut: dict[str, Any]) -> dict[str, Any]:
    return {"source": source.package.dist.lower(), "component": f"{source.package.dist}=={version}",
            "path": source.relpath, "language": "python", **cut}


def single_file_cases(found: dict[Package, list[tuple[SourceFile, FileFacts]]], versions: dict[str, str],
                      n: int, seed: str, mix: dict[str, float]) -> list[dict[str, Any]]:
    """N cases, one per file, spread evenly over the packages, kinds as `mix` asks."""
    quota = water_fill(n, {p.dist: len(found[p]) for p in found})
    picked: list[list[tuple[SourceFile, FileFacts]]] = []
    for package, eligible in found.items():
        order = list(eligible)
        random.Random(f"{seed}|{package.top}").shuffle(order)
        picked.append(order[: quota[package.dist]])
    # interleave the packages so that kinds, assigned in this order, spread over all of them
    queue = [item for rank in range(max(map(len, picked), default=0)) for group in picked
             if rank < len(group) for item in [group[rank]]]
    need, cases = kind_targets(len(queue), mix), []
    for source, facts in queue:
        offered = [k for k in sorted(KINDS, key=lambda k: (-need[k], KINDS.index(k))) if facts.offers(k)]
        kind = next((k for k in offered if need[k] > 0), offered[0])
        need[kind] -= 1
        rng = random.Random(f"{seed}|{source.relpath}|{kind}")
        cases.append(case_record(source, versions[source.package.dist], cut_case(facts, kind, rng)))
    return cases


# ---- cross-file cases --------------------------------------------------------------------------

_COMMON = set(dir(builtins)) | set(keyword.kwlist) | {"self", "cls", "args", "kwargs", "typing", "Optional",
                                                      "Union", "List", "Dict", "Tuple", "Any", "Callable"}
_BUILTIN_METHODS = {name for kind in (str, bytes, list, dict, set, int, float, tuple, object) for name in dir(kind)}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_specific(name: str) -> bool:
    """A name that points at one definition: coined-looking, not a dunder, builtin or builtin method."""
    if len(name) < 4 or name in _COMMON or name in _BUILTIN_METHODS or (name[:2] == "__" == name[-2:]):
        return False
    return "_" in name.strip("_") or any(ch.isupper() for ch in name) or len(name) >= 8


def defined_names(text: str) -> set[str]:
    """Functions, classes, assigned names and `self.x` attributes a module defines."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
                    elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
                        names.add(sub.attr)
    return {name for name in names if len(name) >= 4 and name not in _COMMON}


def cross_file_candidates(package: Package, files: list[SourceFile], eligible: list[tuple[SourceFile, FileFacts]],
                          version: str, seed: str, mix: dict[str, float], tries: int) -> list[dict[str, Any]]:
    """At most one case per file of `package` whose truth needs a name another module defines."""
    defined: dict[str, set[str]] = {}
    for source in files:
        try:
            defined[source.relpath] = defined_names(source.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    rng = random.Random(f"{seed}|xfile|{package.top}")
    order = list(eligible)
    rng.shuffle(order)
    found = []
    for source, facts in order:
        elsewhere = set().union(*(names for rel, names in defined.items() if rel != source.relpath))
        first_kind = rng.choices(KINDS, weights=[mix[k] for k in KINDS])[0]
        spots = [(k, line) for k in [first_kind, *(k for k in KINDS if k != first_kind)] for line in places(facts, k)]
        rng.shuffle(spots)
        spots.sort(key=lambda spot: spot[0] != first_kind)  # the drawn kind first, then the others
        for kind, line in spots[:tries]:
            cut = cut_case(facts, kind, rng, line)
            mentioned = set(_IDENTIFIER.findall(cut["text"]))
            first_line = cut["ground_truth"].split("\n", 1)[0]
            foreign = sorted(n for n in set(_IDENTIFIER.findall(first_line)) - mentioned
                             if n in elsewhere and is_specific(n))
            if foreign:
                record = case_record(source, version, cut)
                record.update(foreign_names=foreign, workspace={"root": str(source.root), "package": package.top})
                found.append(record)
                break
    return found


# ---- the command ---------------------------------------------------------------------------------


def write_cases(cases: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps({k: c[k] for k in KEYS if k in c}, ensure_ascii=False) + "\n" for c in cases)
    out.write_text(body, encoding="utf-8")
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    counts: dict[str, dict[str, int]] = {"kind": {}, "source": {}}
    for case in cases:
        for key, tally in counts.items():
            tally[case[key]] = tally.get(case[key], 0) + 1
    meta.update(cases=len(cases), counts=counts, cases_sha256=digest)
    Path(f"{out}.meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return digest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xfile", action="store_true", help="cross-file cases instead of single-file ones")
    ap.add_argument("-n", "--num-cases", type=int, help="cases wanted (default 200; --xfile: 60)")
    ap.add_argument("--seed", default=SEED)
    ap.add_argument("--mix", default="mid_line=0.4,line_start=0.3,block=0.3")
    ap.add_argument("--tries", type=int, default=60, help="--xfile: places tried per file")
    ap.add_argument("--packages", help="comma list of distributions (default: all of PACKAGES)")
    ap.add_argument("--out", type=Path, help="default $BENCH_HOME/cases-val.jsonl (--xfile: xcases-val.jsonl)")
    ap.add_argument("--packages-dir", type=Path, default=DEFAULT_HOME / "val-packages",
                    help="where the pinned packages are installed (once) and read from")
    return ap.parse_args(argv)


def build_cases(files: dict[Package, list[SourceFile]], versions: dict[str, str], xfile: bool, n: int, seed: str,
                mix: dict[str, float], tries: int = 60) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The cases (ids and set assigned, in their final order) and the eligible files per package."""
    found = {p: [(s, f) for s in sources if (f := read_facts(s.path)) is not None] for p, sources in files.items()}
    if xfile:
        per_package = {p: cross_file_candidates(p, files[p], found[p], versions[p.dist], seed, mix, tries)
                       for p in files}
        quota = water_fill(n, {p.dist: len(c) for p, c in per_package.items()})
        cases = [c for p, candidates in per_package.items() for c in candidates[: quota[p.dist]]]
    else:
        cases = single_file_cases(found, versions, n, seed, mix)
    random.Random(f"{seed}|{xfile}|order").shuffle(cases)
    for index, case in enumerate(cases):
        case.update(id=f"{'xval' if xfile else 'val'}-{index:04d}", set=XSET_NAME if xfile else SET_NAME)
    return cases, {p.dist: len(eligible) for p, eligible in found.items()}


def generate(args: argparse.Namespace, packages: tuple[Package, ...] = PACKAGES) -> tuple[Path, str]:
    """Write the cases file `args` asks for; its path and sha256."""
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    mix = {k: mix.get(k, 0.0) / sum(mix.values()) for k in KINDS}
    if args.packages:
        wanted = {name.strip().lower() for name in args.packages.split(",")}
        packages = tuple(p for p in packages if p.dist.lower() in wanted)
    where = install_pinned(args.packages_dir)
    versions, files = {}, {}
    for package in packages:
        versions[package.dist], files[package] = package_files(package, where)
        if versions[package.dist] != package.version:
            print(f"cases: warning: {package.dist} {versions[package.dist]} installed, the published cases "
                  f"used {package.version}: other cases, other digest", file=sys.stderr)
    n = args.num_cases or (60 if args.xfile else 200)
    cases, eligible = build_cases(files, versions, args.xfile, n, args.seed, mix, args.tries)
    out = args.out or DEFAULT_HOME / ("xcases-val.jsonl" if args.xfile else "cases-val.jsonl")
    meta = {"set": XSET_NAME if args.xfile else SET_NAME, "seed": args.seed, "requested": n, "mix": mix,
            "python": sys.version.split()[0], "versions": versions,
            "expected_versions": {p.dist: p.version for p in packages}, "eligible_files": eligible}
    return out, write_cases(cases, out, meta)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, digest = generate(args)
    meta = json.loads(Path(f"{out}.meta.json").read_text(encoding="utf-8"))
    print(f"wrote {meta['cases']} cases to {out}")
    print("  sources: " + ", ".join(f"{k}={v}" for k, v in sorted(meta["counts"]["source"].items())))
    print("  kinds: " + ", ".join(f"{k}={v}" for k, v in sorted(meta["counts"]["kind"].items())))
    print(f"  sha256: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
