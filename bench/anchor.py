#!/usr/bin/env python3
"""The llama.cpp anchor: llama.cpp's own server (in process, through xllamacpp) on the same GGUF
file as nearcode, asked the way the llama.vscode extension asks it, scored like bench/run.py.

  .venv/bin/python bench/anchor.py --limit 80

The request policy, read from ggml-org/llama.vscode (src/completion.ts getCompletionItems,
src/llama-server.ts createRequestPayload, src/utils.ts getPrefixLines/getSuffixLines, package.json
defaults); the code here is our own:
* no request on an automatic trigger when the text after the cursor is over `max_line_suffix` (8);
* `input_prefix` = the 256 lines before the cursor's line, joined and ended by "\\n";
  `input_suffix` = the cursor line's rest + "\\n" + the 64 following lines joined + "\\n";
  `prompt` = the cursor line's text before the cursor, or "" when that is only blanks (those
  blanks are then taken off the suggestion's start again, as removeLeadingSpaces does);
* POST /infill {id_slot 0, input_prefix, input_suffix, input_extra [], prompt, n_predict 128,
  n_cmpl 3 (max_parallel_completions), top_k 40, top_p 0.99, stream false, samplers
  [top_k, top_p, infill], cache_prompt true, n_indent (when non-zero), t_max_prompt_ms 500,
  t_max_predict_ms 500};
* each answer: split into lines, trailing blank lines dropped, discarded when it repeats the text
  that follows (shouldDiscardSuggestion), cut at a non-blank line suffix (updateSuggestion); the
  first answer that survives is the one shown.
Not mirrored: the result cache and speculative follow-up requests (they serve typing, not single
requests) and the ring of extra context chunks (none on a first visit).
The server: 2 threads, 4 parallel slots, context 16384, batch/ubatch 1024, cache reuse 256
(llama.vscode's FIM presets), port 0 on loopback with a random API key.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import secrets
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daemonctl import log
from hostload import OthersMeter
from results import BENCH_HOME, file_sha256, load_cases, stamp, write_results
from scoring import CaseResult, offset_of, summary_line

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
WARMUP_LINES = ["import json", "", "", "def load_settings(path):", '    with open(path, encoding="utf-8") as f:',
                "        return "]


@dataclass(frozen=True)
class Policy:
    """llama.vscode's settings for a completion request (its package.json defaults)."""

    n_prefix: int = 256
    n_suffix: int = 64
    n_predict: int = 128
    n_cmpl: int = 3  # max_parallel_completions; 0 leaves the field out (older extension versions)
    top_k: int = 40
    top_p: float = 0.99
    t_max_prompt_ms: int = 500
    t_max_predict_ms: int = 500
    max_line_suffix: int = 8


def infill_request(lines: list[str], line: int, column: int, policy: Policy) -> tuple[dict[str, Any] | None, int]:
    """The /infill body the extension sends for a cursor at (line, column), or None when it sends
    none; and how many leading blanks to take off the answer."""
    text = lines[line]
    before, after = text[:column], text[column:]
    if len(after) > policy.max_line_suffix:
        return None, 0
    only_blanks = before.strip(" \t") == ""
    indent = len(text) - len(text.lstrip())
    body: dict[str, Any] = {
        "id_slot": 0,
        "input_prefix": "\n".join(lines[max(0, line - policy.n_prefix):line]) + "\n",
        "input_suffix": after + "\n" + "\n".join(lines[line + 1:line + 1 + policy.n_suffix]) + "\n",
        "input_extra": [], "prompt": "" if only_blanks else before, "n_predict": policy.n_predict,
        "n_cmpl": policy.n_cmpl, "top_k": policy.top_k, "top_p": policy.top_p, "stream": False,
        "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
        "t_max_prompt_ms": policy.t_max_prompt_ms, "t_max_predict_ms": policy.t_max_predict_ms}
    if indent:
        body["n_indent"] = indent
    if policy.n_cmpl <= 0:
        del body["n_cmpl"]
    return body, len(before) if only_blanks else 0


def repeats_following_text(suggestion: list[str], lines: list[str], line: int, before: str, after: str) -> bool:
    """The extension's shouldDiscardSuggestion: empty, or only what the document has already."""
    if not suggestion or (len(suggestion) == 1 and not suggestion[0].strip()):
        return True
    if line == len(lines) - 1:
        return False

    def same_as_document(rest: list[str], start: int) -> bool:
        return all(start + i < len(lines) and lines[start + i] == s for i, s in enumerate(rest))

    if (len(suggestion) > 1 and suggestion[0].strip() in ("", after.strip())
            and same_as_document(suggestion[1:], line + 1)):
        return True
    if len(suggestion) == 1 and suggestion[0] == after:
        return True
    following = next((k for k in range(line + 1, len(lines)) if lines[k].strip()), None)
    if following is None or before + suggestion[0] != lines[following]:
        return False
    if len(suggestion) == 1:
        return True
    if len(suggestion) == 2:
        return following + 1 < len(lines) and lines[following + 1].startswith(suggestion[1])
    return same_as_document(suggestion[1:], following + 1)


def shown_text(answer: Any, lines: list[str], line: int, column: int, blanks: int) -> str:
    """What the editor would show: the first answer that survives the extension's checks."""
    answers = answer if isinstance(answer, list) else [answer]
    contents = list(dict.fromkeys(str((a or {}).get("content") or "") for a in answers if isinstance(a, dict)))
    before, after = lines[line][:column], lines[line][column:]
    for content in contents:
        suggestion = content.replace("\r\n", "\n").split("\n")
        while suggestion and not suggestion[-1].strip():
            suggestion.pop()
        if repeats_following_text(suggestion, lines, line, before, after):
            continue
        text = "\n".join(suggestion)
        if after.strip():  # updateSuggestion: text after the cursor keeps one line, minus that text
            text = suggestion[0][: -len(after)] if suggestion[0].endswith(after) else suggestion[0]
        start = 0  # removeLeadingSpaces, its operator precedence included: tabs go regardless
        while start < len(text) and ((start < blanks and text[start] == " ") or text[start] == "\t"):
            start += 1
        return text[start:]
    return ""


class AnchorServer:
    """llama.cpp's server in this process, on a free loopback port, guarded by a random key."""

    def __init__(self, model: Path, threads: int, parallel: int, ctx: int) -> None:
        import xllamacpp  # the project venv has it (requirements/embedded-0.5b.txt)

        params = xllamacpp.CommonParams()
        params.model.path = str(model)
        params.n_ctx, params.n_parallel = ctx, parallel
        params.n_batch = params.n_ubatch = 1024
        params.n_cache_reuse, params.cache_prompt = 256, True
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        params.port, self.key = 0, secrets.token_hex(16)
        params.api_keys = [self.key]
        params.verbosity = -1  # its logs would carry the cases' text
        self.server = xllamacpp.Server(params)
        self.url = str(self.server.listening_address).rstrip("/")

    def infill(self, body: dict[str, Any], timeout: float) -> tuple[Any, float]:
        request = urllib.request.Request(self.url + "/infill", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.key}"})
        started = time.perf_counter()
        with NO_PROXY.open(request, timeout=timeout) as response:
            data = response.read()
        return json.loads(data), round((time.perf_counter() - started) * 1000, 2)


def run_case(server: AnchorServer, case: dict[str, Any], policy: Policy, timeout: float) -> CaseResult:
    doc = case["text"]
    lines, line = doc.split("\n"), case["cursor"]["line"]
    column = offset_of(doc, line, case["cursor"]["character"]) - sum(len(x) + 1 for x in lines[:line])
    body, blanks = infill_request(lines, line, column, policy)
    if body is None:
        return CaseResult.finished(case, "empty", note="line_suffix_too_long")
    try:
        answer, ms = server.infill(body, timeout)
    except urllib.error.HTTPError as exc:
        return CaseResult.finished(case, "error", error_kind="http", error=f"HTTP {exc.code}")
    except (TimeoutError, OSError, ValueError) as exc:
        kind = "timeout" if isinstance(exc, TimeoutError) or "timed out" in str(exc) else "transport"
        return CaseResult.finished(case, "error", error_kind=kind, error=repr(exc))
    text = shown_text(answer, lines, line, column, blanks)
    first = answer[0] if isinstance(answer, list) and answer else answer
    timings = (first or {}).get("timings", {}) if isinstance(first, dict) else {}
    return CaseResult.finished(case, "ok" if text.strip() else "empty", text, latency_ms=ms,
                               detail={k: timings[k] for k in ("prompt_n", "prompt_ms", "predicted_n") if k in timings})


def model_path(nearcode: Path, preset: str = "default") -> Path:
    """The GGUF of `preset` (default: what nearcode runs without --model; `nearcode model path`)."""
    proc = subprocess.run([str(nearcode), "model", "path", "--preset", preset], capture_output=True, text=True,
                          check=True, timeout=600)  # fmt: skip
    return Path(proc.stdout.strip().splitlines()[-1]).resolve()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=Path, default=BENCH_HOME / "cases-val.jsonl")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--kinds")
    ap.add_argument("--model", type=Path, help="GGUF file (default: `nearcode model path`)")
    ap.add_argument("--label", default="llamacpp-anchor")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=1, help="requests at once (the extension: one)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=16384)
    ap.add_argument("--n-cmpl", type=int, default=Policy.n_cmpl, help="0 leaves n_cmpl out")
    ap.add_argument("--t-max-predict-ms", type=int, default=Policy.t_max_predict_ms)
    args = ap.parse_args(argv)
    policy = Policy(n_cmpl=args.n_cmpl, t_max_predict_ms=args.t_max_predict_ms)
    cases = load_cases(args.cases, args.limit, args.kinds)
    model = args.model or model_path(Path(sys.executable).parent / "nearcode")
    out = args.out or BENCH_HOME / "results" / f"anchor-{args.label}-{stamp()}.json"
    meter, started = OthersMeter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    server = AnchorServer(model, args.threads, args.parallel, args.ctx)
    warm_body, _ = infill_request(WARMUP_LINES, 5, len(WARMUP_LINES[5]), policy)
    warmup_ms = [server.infill(warm_body or {}, 120)[1] for _ in range(args.warmup)]
    results: list[CaseResult] = []
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        for result in pool.map(lambda case: run_case(server, case, policy, args.timeout), cases):
            results.append(result)
            log(f"{len(results)} {result.id} {result.status} {result.latency_ms} ms {result.suggestion[:50]!r}")
    host = meter.report()
    meta = {"tool": "bench/anchor.py", "label": args.label, "mode": "single" if args.concurrency == 1
            else f"single, concurrency {args.concurrency}", "model": str(model), "model_bytes": model.stat().st_size,
            "server": {"threads": args.threads, "parallel": args.parallel, "ctx": args.ctx},
            "policy": asdict(policy), "cases_file": str(args.cases), "cases_sha256": file_sha256(args.cases),
            "started": started, "wall_s": host.wall_s, "timeout_s": args.timeout, "warmup_ms": warmup_ms,
            "host": vars(host), "notes": [host.note()],
            "command": shlex.join([sys.executable, *(sys.argv if argv is None else ["bench/anchor.py", *argv])])}
    doc = write_results(out, meta, results)
    log(host.note())
    print(f"results: {out} (and .md)")
    print(summary_line(doc["summary"]) + " anchor=llama.vscode-policy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
