"""Workspace context through the FIM service, on a scripted engine and an in-memory index (fast tier).

What the engine receives is asserted exactly (the scripted engine records every prompt): the context
block and its place, that "file" mode sends none, that typing along a line keeps the block byte for
byte (and the engine re-reads only the end), that the shown context is that prompt, that a slow
index costs context and not time, and that a prefill leaves the next request only the near part to
read. The real-model versions are in tests/test_context_real.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from nearcode.daemon.context.assembler import ContextAssembler
from nearcode.daemon.context.document_prompts import PromptRequest
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.daemon.streams import ServiceEvent
from nearcode.shared.protocol.daemon_api import ContextQuery, DoneEvent, FimRequest, PrefillRequest
from tests.memory_index import MemoryIndex
from tests.scripted_engine import ScriptedEngine, tokens
from tests.test_context import CURRENT, project

QWEN = fim_templates()["qwen2.5-coder"]
ROOT = "/ws"
PATH = "/ws/pkg/deprecated/class_validators.py"
URI = "file://" + PATH
FILLER = "".join(f"    value_{i} = compute(alpha, beta, {i})\n" for i in range(120))


def service(engine: ScriptedEngine, index: MemoryIndex | None = None, deadline_s: float = 5.0) -> FimService:
    index = index or project()
    assembler = ContextAssembler(lambda path: index if path.startswith(ROOT) else None, deadline_s)
    svc = FimService(Scheduler(engine), QWEN, PromptBudget(total_tokens=768), DaemonStats(), assembler)
    svc.reading.assume_speed(150.0)  # the budget of an idle 2-core machine: 768 cold, 120 warm
    return svc


def request(prefix: str, mode: str = "workspace", suffix: str = "\n    return mode\n") -> FimRequest:
    return FimRequest(prefix=prefix, suffix=suffix, path=PATH, language="python", document=URI, affinity=URI,
                      client="editor", context_mode=mode)  # type: ignore[arg-type]


async def run(svc: FimService, req: FimRequest) -> DoneEvent:
    events: list[ServiceEvent] = [event async for event in svc.stream(req)]
    final = events[-1]
    assert isinstance(final, DoneEvent)
    return final


def block_of(prompt: str) -> str:
    return prompt[: prompt.index("<|fim_prefix|>")]


async def test_workspace_mode_puts_definitions_from_other_files_before_the_current_file() -> None:
    engine = ScriptedEngine(script=lambda r: "x\n")
    await run(service(engine), request(CURRENT))
    prompt = engine.requests[-1].prompt
    assert prompt.startswith("<|repo_name|>ws\n")
    assert "<|file_sep|>pkg/models.py\nclass Model:" in prompt  # imported and used near the cursor
    assert block_of(prompt).endswith("<|file_sep|>pkg/deprecated/class_validators.py\n")  # then this file


async def test_file_mode_sends_no_context() -> None:
    engine = ScriptedEngine(script=lambda r: "x\n")
    await run(service(engine), request(CURRENT, mode="file"))
    prompt = engine.requests[-1].prompt
    assert prompt.startswith("<|fim_prefix|>") and "<|file_sep|>" not in prompt and "class Model" not in prompt


async def test_the_shown_context_is_the_prompt_the_engine_received() -> None:
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    done = await run(svc, request(CURRENT))
    report = svc.context_report(ContextQuery(client="editor", document=URI))
    sent = engine.requests[-1].prompt
    assert report.available and report.prompt == sent
    assert report.prompt_tokens == done.prompt_tokens == len(tokens(sent))
    kept = [p for p in report.parts if p.status != "dropped"]
    assert {p.kind for p in kept} >= {"definition", "prefix", "suffix"}
    for part in kept:
        assert part.tokens > 0 and part.reason
        if part.kind == "definition":
            assert f"<|file_sep|>{part.path}\n" in sent
    assert report.budget is not None and report.budget.used["context"] + report.budget.used["prefix"] <= 768
    model = next(p for p in kept if p.name == "Model")
    assert (model.path, model.start_line, "imported as Model" in model.reason) == ("pkg/models.py", 0, True)
    assert "Model: imported as Model" in report.text and "budget: 768 tokens" in report.text
    other = svc.context_report(ContextQuery(client="someone-else", document=URI))
    assert not other.available and other.reason


async def test_typing_along_a_line_keeps_the_block_and_rereads_only_the_end() -> None:
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    prefix = CURRENT + FILLER + "    "
    typed = "result = model.validate(value_1, strict=True)"
    blocks, reads = set(), []
    for n in range(len(typed) + 1):
        done = await run(svc, request(prefix + typed[:n]))
        blocks.add(block_of(engine.requests[-1].prompt))
        reads.append(done.prompt_tokens - done.cached_tokens)
    assert len(blocks) == 1, "the context block changed while typing along one line"
    assert "class Model" in blocks.pop()
    # After the first request only the typed end, the FIM markers and the suffix are read again.
    assert max(reads[1:]) <= 24, reads


async def test_a_slow_index_costs_context_not_time() -> None:
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine, project(delay_s=0.2), deadline_s=0.02)
    started = time.monotonic()
    await run(svc, request(CURRENT))
    assert time.monotonic() - started < 0.15, "the request waited for the index"
    report = svc.context_report(ContextQuery(client="editor", document=URI))
    assert report.deadline_missed and not any(p.kind == "definition" for p in report.parts)
    assert "missed" in report.text


async def test_a_prefill_leaves_the_first_request_only_the_near_part_to_read() -> None:
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    text = CURRENT + FILLER + "    \n" + FILLER
    answer = await svc.read_ahead.prefill(PrefillRequest(document=URI, client="editor", path=PATH, language="python", head=text[:8000],
                                              affinity=URI))
    assert answer.started, answer.reason
    await asyncio.gather(*svc.read_ahead.tasks)  # it reads in the background
    read_ahead = engine.requests[-1]
    assert read_ahead.max_tokens == 1 and read_ahead.prompt.endswith("<|fim_prefix|>")
    assert "from .. import _decorators" in read_ahead.prompt  # the file's own head, cursor unknown
    cursor = len(CURRENT + FILLER) + 4
    done = await run(svc, request(text[:cursor], suffix=text[cursor:]))
    sent = engine.requests[-1].prompt
    assert sent.startswith(read_ahead.prompt[: -len("<|fim_prefix|>")])
    assert done.prompt_tokens - done.cached_tokens <= 150, "more than the near part was read"
    again = await svc.read_ahead.prefill(PrefillRequest(document=URI, client="editor", path=PATH, language="python", head=text[:8000],
                                             affinity=URI))
    assert not again.started  # what it would read is in the cache already


async def test_a_prefill_overtaken_by_a_completion_never_reads_after_it() -> None:
    """A read-ahead still being built when the document's completion starts is dropped: run after
    the completion, it would push the completion's prompt out of the engine slot."""
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    text = CURRENT + FILLER + "    \n" + FILLER
    cursor = len(CURRENT + FILLER) + 4
    prefill = asyncio.ensure_future(svc.read_ahead.prefill(PrefillRequest(
        document=URI, client="editor", path=PATH, language="python", head=text[:8000], affinity=URI)))
    await asyncio.sleep(0)  # the prefill is building its prompt when the completion arrives
    await run(svc, request(text[:cursor], suffix=text[cursor:]))
    answer = await prefill
    await asyncio.gather(*svc.read_ahead.tasks)
    assert not answer.started and "came first" in answer.reason
    assert engine.requests[-1].max_tokens != 1, "the read-ahead ran after the completion"


async def test_a_read_ahead_teaches_the_reading_speed_the_first_completion_is_budgeted_by() -> None:
    """A fresh daemon knows no reading speed and budgets its first prompt at the configured maximum,
    which a slow model cannot read in time; the read-ahead on open measures it first."""
    engine = ScriptedEngine(script=lambda r: "x\n", prompt_delay_s=0.4)
    index = project()
    assembler = ContextAssembler(lambda path: index if path.startswith(ROOT) else None, 5.0)
    svc = FimService(Scheduler(engine), QWEN, PromptBudget(total_tokens=768), DaemonStats(), assembler)
    assert svc.reading.tokens_per_s is None
    text = CURRENT + FILLER + "    \n" + FILLER
    answer = await svc.read_ahead.prefill(PrefillRequest(document=URI, client="editor", path=PATH, language="python",
                                                         head=text[:8000], affinity=URI))  # fmt: skip
    assert answer.started, answer.reason
    await asyncio.gather(*svc.read_ahead.tasks)
    read = engine.requests[-1]
    assert svc.reading.tokens_per_s is not None
    # The scripted engine "reads" any prompt in 0.4 s: the speed is its tokens over that time.
    expected = len(tokens(read.prompt)) / 0.4
    assert 0.5 * expected <= svc.reading.tokens_per_s <= 1.1 * expected


async def test_a_slow_engine_still_reads_the_files_head_ahead_and_keeps_that_block() -> None:
    """On a slow engine (the 1.5B on two slow cores) a cold request's block is too small to hold
    even a cut of the file's head; the read-ahead on open, which has time, reads a larger block, and
    the first completion keeps it (cached) instead of building a smaller one of its own."""
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    svc.reading.assume_speed(40.0)  # cold: 6 s of reading, 256 tokens; the block's share ~100
    text = CURRENT + FILLER + "    \n" + FILLER
    cursor = len(CURRENT + FILLER) + 4
    cold = await svc.prompts.build(
        svc_source(text, cursor), svc.reading.budget_for("editor"), warm_tokens=0)
    assert "from .. import _decorators" not in block_of(cold.prompt.text), "a cold block has no room for the head"
    answer = await svc.read_ahead.prefill(PrefillRequest(document=URI, client="editor", path=PATH, language="python",
                                                         head=text[:8000], affinity=URI))  # fmt: skip
    assert answer.started, answer.reason
    await asyncio.gather(*svc.read_ahead.tasks)
    read_ahead = engine.requests[-1].prompt
    assert "from .. import _decorators" in block_of(read_ahead), "the read-ahead's block holds the file's head"
    done = await run(svc, request(text[:cursor], suffix=text[cursor:]))
    sent = engine.requests[-1].prompt
    assert block_of(sent) == block_of(read_ahead), "the completion kept the block the engine holds"
    assert done.prompt_tokens - done.cached_tokens <= 150, "more than the near part was read"


IMPORTS = "from .. import _decorators\nfrom ..models import Model\n"
CONSTANTS = "".join(f"LIMIT_{i} = {i} * 1024  # bytes\n" for i in range(30))  # a head cut to fit its share


@pytest.mark.parametrize("head", ["", CONSTANTS], ids=["whole view", "view cut to its share"])
async def test_a_cursor_near_the_files_start_keeps_the_view_read_ahead_on_open(head: str) -> None:
    """Read ahead on open (cursor unknown), the block starts with the file's view; a completion
    whose prefix reaches back to the file's start would leave the view out (the head would be there
    twice), so its block no longer matched the cache and the whole prompt was read again: 2-3 s on
    the 1.5B for 1 first completion in 8 opened 5 s before. It keeps the view the slot holds."""
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    current = IMPORTS + head + CURRENT[len(IMPORTS):]
    text = current + "    \n" + FILLER[:600]
    answer = await svc.read_ahead.prefill(PrefillRequest(document=URI, client="editor", path=PATH, language="python",
                                                         head=text, affinity=URI))  # fmt: skip
    assert answer.started, answer.reason
    await asyncio.gather(*svc.read_ahead.tasks)
    read_ahead = engine.requests[-1].prompt
    assert "from .. import _decorators" in block_of(read_ahead)
    cursor = len(current) + 4
    done = await run(svc, request(text[:cursor], suffix=text[cursor:]))
    sent = engine.requests[-1].prompt
    if head:
        assert "LIMIT_0 " in read_ahead and "LIMIT_29" not in read_ahead, "the long head is cut in the block"
    view = read_ahead[: read_ahead.index("<|file_sep|>pkg/models.py")]  # the block's first part
    assert "from .. import _decorators" in view
    assert sent.startswith(view), "the completion dropped the view the engine holds"
    assert done.cached_tokens >= len(tokens(view)), "the cached view was read again"
    # Without a read-ahead, the same completion leaves the view out: its prefix shows the head.
    fresh = service(ScriptedEngine(script=lambda r: "x\n"))
    cold = await fresh.prompts.build(svc_source(text, cursor), fresh.reading.budget_for("editor"), warm_tokens=0)
    assert "from .. import _decorators" not in block_of(cold.prompt.text)


async def test_a_cursor_inside_the_head_the_view_shows_leaves_the_view_out() -> None:
    """Shown twice, the line being written (an import, a constant) reads as written already: the
    model answered nothing on two validation cases. There the view is left out, cached or not."""
    engine = ScriptedEngine(script=lambda r: "x\n")
    svc = service(engine)
    text = IMPORTS + CONSTANTS + CURRENT[len(IMPORTS):] + "    \n" + FILLER[:600]
    await svc.read_ahead.prefill(PrefillRequest(document=URI, client="editor", path=PATH, language="python",
                                                head=text, affinity=URI))  # fmt: skip
    await asyncio.gather(*svc.read_ahead.tasks)
    assert "LIMIT_0 " in block_of(engine.requests[-1].prompt)
    cursor = text.index("LIMIT_20 ") + len("LIMIT_20 ")  # inside the head, 200 characters on
    await run(svc, request(text[:cursor], suffix=text[cursor:]))
    inside = engine.requests[-1].prompt
    assert "LIMIT_0 " not in block_of(inside)
    # Then below the head: the slot now holds a prompt without the view (its prefix shows the same
    # head), so the view stays out and that prompt's start is what the engine has cached.
    below = len(IMPORTS + CONSTANTS + CURRENT[len(IMPORTS):]) + 4
    done = await run(svc, request(text[:below], suffix=text[below:]))
    assert block_of(engine.requests[-1].prompt) == block_of(inside)
    assert done.cached_tokens >= len(tokens(block_of(inside)))


def svc_source(text: str, cursor: int) -> PromptRequest:
    return PromptRequest(client="editor", document=URI, affinity=URI, path=PATH, language="python",
                         prefix=text[:cursor], suffix=text[cursor:], context_mode="workspace")
