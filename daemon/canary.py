"""A start-up canary: one tiny fill-in-the-middle probe with a known answer.

A wrong FIM template is the most common failure with a model a user brings: the model then writes
the template's tokens back, restarts the file, or answers something unrelated. The probe is the
loop body of a Fibonacci function; any code model given the right template answers
`a, b = b, a + b`. It runs in the background once the daemon serves (it never delays start) and
its verdict is shown by `/api/model` and `nearcode doctor`.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from nearcode.daemon.engines.base import Engine, EngineError, GenerationRequest, Priority
from nearcode.daemon.prompting.fim import FimInput, PromptBudget, build_fim_prompt
from nearcode.daemon.prompting.templates import FimTemplate

PROBE_PREFIX = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        "
PROBE_SUFFIX = "\n    return a\n"
EXPECTED = "a, b = b, a + b"
# Signs the model did not understand the prompt's format, rather than merely answering wrongly.
_RESTARTS_FILE = re.compile(r"^\s*(def fib|import |from |#!|```)")


@dataclass
class CanaryResult:
    status: str  # "pending", "ok", "ignored-template", "unexpected", "error"
    answer: str = ""
    detail: str = ""
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(answer: str, template: FimTemplate) -> CanaryResult:
    line = answer.split("\n", 1)[0]
    if _normalise(line) == _normalise(EXPECTED) or _normalise(EXPECTED) in _normalise(line):
        return CanaryResult("ok", answer)
    leaked = [t for t in (*template.special_tokens, *template.stop) if t.strip() and t in answer]
    if leaked:
        return CanaryResult("ignored-template", answer, f"the answer contains template tokens {leaked[:3]}")
    if _RESTARTS_FILE.match(answer):
        return CanaryResult("ignored-template", answer, "the answer restarts the file instead of filling the hole")
    return CanaryResult(
        "unexpected", answer,
        f"expected {EXPECTED!r}; the template may not fit this model (try --family)",
    )


async def run_canary(engine: Engine, template: FimTemplate, max_tokens: int = 16) -> CanaryResult:
    started = time.monotonic()
    try:
        prompt = await build_fim_prompt(
            FimInput(prefix=PROBE_PREFIX, suffix=PROBE_SUFFIX, path="fib.py", language="python"),
            template, PromptBudget(total_tokens=256), engine.count_tokens,
        )
        request = GenerationRequest(
            prompt=prompt.text, max_tokens=max_tokens, stop=(*template.stop, "\n"),
            priority=Priority.BACKGROUND, deadline=time.monotonic() + 120,
        )
        parts = []
        generation = engine.generate(request)
        try:
            async for chunk in generation:
                parts.append(chunk.text)
        finally:
            aclose = getattr(generation, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
    except (EngineError, OSError) as exc:
        return CanaryResult("error", detail=str(exc), elapsed_ms=_ms(started))
    result = judge("".join(parts), template)
    result.elapsed_ms = _ms(started)
    return result


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
