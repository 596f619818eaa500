"""Speculative decoding without a model (fast tier): the option and its environment default, which
kind runs for which model, the llama.cpp parameters it sets, the draft counts read from llama.cpp's
events, and their way up to `/api/status` and `nearcode status`.

The real-model proof is test_speculation_real.py: the real daemon on the real 0.5B reports drafts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nearcode.cli.engine_args import add_engine_arguments, engine_options_from
from nearcode.cli.main import _print_status, _reading_line, _speculation_line
from nearcode.daemon.engines.base import (
    EngineError,
    FinishReason,
    GenerationRequest,
    GenerationStats,
)
from nearcode.daemon.engines.factory import EngineOptions, build_engine
from nearcode.daemon.engines.llamacpp import _DONE, LlamaCppConfig, LlamaCppEngine, _Completion
from nearcode.daemon.engines.results import read_usage
from nearcode.daemon.engines.speculation import (
    DRAFT_BY_DEFAULT,
    DRAFT_MODEL_FILE,
    QUALITY_MODEL_FILE,
    SPECULATION_ENV,
    DraftParams,
    NgramParams,
    SpeculationConfig,
    SpeculationError,
    apply_speculation,
    resolve_speculation,
)
from nearcode.daemon.prompting.templates import choose_family
from nearcode.daemon.server import Daemon, DaemonConfig
from nearcode.daemon.stats import DaemonStats
from nearcode.shared.protocol.daemon_api import DoneEvent, FimRequest
from tests.scripted_engine import ScriptedEngine
from tests.test_fim_service_logic import run, service


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    return parser.parse_args(argv)


# --- the option ---------------------------------------------------------------------------------


def test_the_option_defaults_to_auto_and_takes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPECULATION_ENV, raising=False)
    assert parse([]).speculation == "auto"
    assert engine_options_from(parse(["--speculation", "none"])).speculation == "none"
    monkeypatch.setenv(SPECULATION_ENV, "ngram")
    assert parse([]).speculation == "ngram"
    assert parse(["--speculation", "draft"]).speculation == "draft"  # the flag beats the environment


def test_an_unknown_mode_is_refused_from_the_flag_and_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(SPECULATION_ENV, raising=False)
    with pytest.raises(SystemExit):
        parse(["--speculation", "eagle"])
    monkeypatch.setenv(SPECULATION_ENV, "fast")
    with pytest.raises(SystemExit):
        parse([])
    assert f"{SPECULATION_ENV}='fast' is not a speculation mode" in capsys.readouterr().err


# --- which kind runs ------------------------------------------------------------------------------


def models(folder: Path, *names: str) -> list[Path]:
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"GGUF")
    return paths


def test_auto_is_ngram_as_long_as_the_drafter_measures_slower(tmp_path: Path) -> None:
    small, big = models(tmp_path, DRAFT_MODEL_FILE, QUALITY_MODEL_FILE)
    assert not DRAFT_BY_DEFAULT  # docs/models.md: on 2 cores the 0.5B drafter slowed the 1.5B down
    assert resolve_speculation("auto", small) == SpeculationConfig(kind="ngram")
    assert resolve_speculation("auto", big) == SpeculationConfig(kind="ngram")


def test_auto_with_drafting_by_default_drafts_for_the_quality_model_when_the_small_one_is_there(
    tmp_path: Path,
) -> None:
    small, big = models(tmp_path, DRAFT_MODEL_FILE, QUALITY_MODEL_FILE)
    assert resolve_speculation("auto", small, draft_by_default=True) == SpeculationConfig(kind="ngram")
    assert resolve_speculation("auto", big, draft_by_default=True) == SpeculationConfig(kind="draft", draft_model=small)
    other = models(tmp_path, "starcoder2-3b.gguf")[0]
    assert resolve_speculation("auto", other, draft_by_default=True).kind == "ngram"  # no drafter guessed
    small.unlink()
    assert resolve_speculation("auto", big, draft_by_default=True).kind == "ngram"


def test_explicit_modes(tmp_path: Path) -> None:
    small, big = models(tmp_path, DRAFT_MODEL_FILE, QUALITY_MODEL_FILE)
    assert resolve_speculation("none", big).kind == "none"
    assert resolve_speculation("ngram", big).kind == "ngram"
    # A drafter named explicitly is used for any model (the tokenizer is the user's responsibility).
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    drafter = models(elsewhere, "tiny.gguf")[0]
    config = resolve_speculation("draft", small, draft_model=drafter)
    assert config.kind == "draft" and config.draft_model == drafter and config.describe() == "draft (tiny)"


def test_draft_that_cannot_run_says_how_to_fix_it(tmp_path: Path) -> None:
    small, big = models(tmp_path, DRAFT_MODEL_FILE, QUALITY_MODEL_FILE)
    with pytest.raises(SpeculationError, match="cannot draft for itself"):
        resolve_speculation("draft", small)
    small.unlink()
    with pytest.raises(SpeculationError, match="nearcode model install"):
        resolve_speculation("draft", big)
    with pytest.raises(ValueError, match="not one of"):
        resolve_speculation("medusa", big)


def test_the_factory_turns_a_speculation_error_into_an_engine_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEARCODE_CACHE_DIR", str(tmp_path / "cache"))  # no preset installed there
    big = models(tmp_path, QUALITY_MODEL_FILE)[0]
    with pytest.raises(EngineError, match="draft model"):
        build_engine("llamacpp", big, EngineOptions(speculation="draft"), 1, 1)
    engine = build_engine("llamacpp", big, EngineOptions(), 1, 1)  # auto without a drafter: ngram
    assert engine.info.speculation == "ngram"
    (tmp_path / "cache" / "models").mkdir(parents=True)
    drafter = models(tmp_path / "cache" / "models", DRAFT_MODEL_FILE)[0]
    engine = build_engine("llamacpp", big, EngineOptions(speculation="draft"), 1, 1)  # the preset's 0.5B
    assert engine.info.speculation == f"draft ({drafter.stem})"
    assert build_engine("llamacpp", big, EngineOptions(speculation="none"), 1, 1).info.speculation == "none"


# --- what llama.cpp is told -------------------------------------------------------------------------


class FakeTypes(enum.IntEnum):
    COMMON_SPECULATIVE_TYPE_NONE = 0
    COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE = 1
    COMMON_SPECULATIVE_TYPE_NGRAM_MOD = 7


def fake_params() -> Any:
    """xllamacpp's CommonParams().speculative as far as apply_speculation touches it (its defaults)."""
    cpu = SimpleNamespace(n_threads=-1)
    draft = SimpleNamespace(mparams=SimpleNamespace(path=""), n_max=3, n_min=0, p_min=0.0, cpuparams=cpu,
                            cpuparams_batch=SimpleNamespace(n_threads=-1))
    speculative = SimpleNamespace(types=[FakeTypes.COMMON_SPECULATIVE_TYPE_NONE], draft=draft,
                                  ngram_mod=SimpleNamespace(n_match=24, n_min=48, n_max=64))
    return SimpleNamespace(speculative=speculative)


def test_ngram_sets_ngram_mod_with_the_measured_parameters() -> None:
    params = fake_params()
    apply_speculation(params, SpeculationConfig(kind="ngram"), FakeTypes, threads=2)
    spec = params.speculative
    assert spec.types == [FakeTypes.COMMON_SPECULATIVE_TYPE_NGRAM_MOD]
    assert (spec.ngram_mod.n_match, spec.ngram_mod.n_min, spec.ngram_mod.n_max) == (16, 8, 64)
    assert spec.draft.mparams.path == ""  # no drafter loaded


def test_none_turns_speculation_off() -> None:
    params = fake_params()
    params.speculative.types = [FakeTypes.COMMON_SPECULATIVE_TYPE_NGRAM_MOD]
    apply_speculation(params, SpeculationConfig(kind="none"), FakeTypes, threads=2)
    assert params.speculative.types == [FakeTypes.COMMON_SPECULATIVE_TYPE_NONE]


def test_draft_loads_the_drafter_on_the_engines_threads_beside_ngram(tmp_path: Path) -> None:
    params = fake_params()
    config = SpeculationConfig(kind="draft", draft_model=tmp_path / DRAFT_MODEL_FILE,
                               draft=DraftParams(max_draft=5, min_draft=1, min_probability=0.6),
                               ngram=NgramParams(match_tokens=12))
    apply_speculation(params, config, FakeTypes, threads=2)
    spec = params.speculative
    assert spec.types == [FakeTypes.COMMON_SPECULATIVE_TYPE_NGRAM_MOD, FakeTypes.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    assert spec.draft.mparams.path == str(tmp_path / DRAFT_MODEL_FILE)
    assert (spec.draft.n_max, spec.draft.n_min, spec.draft.p_min) == (5, 1, 0.6)
    assert spec.draft.cpuparams.n_threads == spec.draft.cpuparams_batch.n_threads == 2
    assert spec.ngram_mod.n_match == 12
    with pytest.raises(SpeculationError):
        apply_speculation(fake_params(), SpeculationConfig(kind="draft"), FakeTypes, threads=2)


# --- what llama.cpp reports -----------------------------------------------------------------------


def token_event(text: str, drafted: int | None = None, accepted: int = 0, finish: str | None = None) -> dict[str, Any]:
    """A streamed event of llama.cpp's server, as `timings_per_token` makes it (draft counts appear
    once something was drafted)."""
    timings: dict[str, Any] = {"cache_n": 3, "prompt_n": 10, "prompt_ms": 50.0, "predicted_n": 1}
    if drafted is not None:
        timings.update(draft_n=drafted, draft_n_accepted=accepted)
    return {"choices": [{"text": text, "index": 0, "finish_reason": finish}], "timings": timings}


def test_read_usage_takes_the_draft_counts_of_the_final_event() -> None:
    stats = GenerationStats()
    read_usage({"usage": {"completion_tokens": 24}, "timings": {"cache_n": 30, "draft_n": 16,
                                                               "draft_n_accepted": 12}}, stats)
    assert (stats.generated_tokens, stats.cached_tokens, stats.draft_tokens, stats.draft_accepted) == (24, 30, 16, 12)
    read_usage({"timings": {"cache_n": 30}}, stats)  # nothing drafted in this event: counts kept
    assert (stats.draft_tokens, stats.draft_accepted) == (16, 12)


async def completion(speculation: str) -> _Completion:
    engine = LlamaCppEngine(LlamaCppConfig(model_path=Path("m.gguf"), speculation=SpeculationConfig(kind=speculation)))
    return _Completion(engine, GenerationRequest(prompt="p", max_tokens=8), 0, asyncio.get_running_loop())


async def test_the_request_asks_for_per_token_timings_only_when_speculating() -> None:
    assert (await completion("ngram")).body["timings_per_token"] is True
    assert "timings_per_token" not in (await completion("none")).body


async def test_live_stats_carry_the_draft_counts_so_a_consumer_that_stops_early_has_them() -> None:
    run_ = await completion("ngram")
    for event in (token_event("a"), token_event("b", drafted=8, accepted=6), token_event("c", drafted=8, accepted=7)):
        run_.queue.put_nowait(event)
    chunks = run_.chunks()
    seen = [await anext(chunks) for _ in range(3)]
    assert seen[-1].stats is not None and (seen[-1].stats.draft_tokens, seen[-1].stats.draft_accepted) == (8, 7)
    run_.queue.put_nowait(token_event("", drafted=16, accepted=13, finish="stop"))
    run_.queue.put_nowait(_DONE)
    final = [chunk async for chunk in chunks][-1]
    assert final.finish_reason == FinishReason.STOP
    assert final.stats is not None and (final.stats.draft_tokens, final.stats.draft_accepted) == (16, 13)


# --- the daemon's account ---------------------------------------------------------------------------


def test_daemon_stats_add_up_drafts_and_give_the_rate() -> None:
    stats = DaemonStats()
    assert stats.speculation("ngram") == {"type": "ngram", "drafted": 0, "accepted": 0, "acceptance_rate": None}
    def ended(reason: str, drafted: int = 0, accepted: int = 0) -> None:
        with stats.request() as progress:
            progress.done = DoneEvent(finish_reason=reason, draft_tokens=drafted, draft_accepted=accepted)

    ended("stop", drafted=16, accepted=12)
    ended("newline")  # nothing drafted
    with stats.request() as progress:  # the client went away: the work done so far still counts
        progress.live = GenerationStats(prompt_tokens=50, generated_tokens=2, draft_tokens=4, draft_accepted=0)
    assert stats.speculation("ngram") == {"type": "ngram", "drafted": 20, "accepted": 12, "acceptance_rate": 0.6}


async def test_a_completion_stopped_at_the_end_of_its_line_records_its_drafts() -> None:
    engine = ScriptedEngine(script=lambda r: "a + b\nnext line\n", speculation="ngram", drafts_per_token=(3, 2))
    svc = service(engine)
    text, final = await run(svc, FimRequest(prefix="def add(a, b):\n    return ", suffix="\n", mode="single"))
    assert text == "a + b" and final.finish_reason == "newline"
    # The daemon stopped the engine at the newline, before its final event: the live counts count.
    assert svc.stats.draft_tokens > 0 and svc.stats.draft_tokens == 3 * svc.stats.generated_tokens
    assert svc.stats.draft_accepted == 2 * svc.stats.generated_tokens


async def test_status_and_the_status_command_show_speculation(capsys: pytest.CaptureFixture[str]) -> None:
    engine = ScriptedEngine(script=lambda r: "x = 1\n", speculation="ngram", drafts_per_token=(4, 3))
    daemon = Daemon(DaemonConfig(), engine, choose_family(["qwen2.5-coder"], None), "test",
                    {"transport": "tcp", "host": "127.0.0.1", "port": 9})
    try:
        events = [event async for event in daemon.services.fim.stream(FimRequest(prefix="def f():\n    ", mode="single"))]
        assert isinstance(events[-1], DoneEvent)
        status = await daemon.status()
    finally:
        daemon.workspaces.close()
        await daemon.scheduler.close()
    speculation = status["speculation"]
    assert speculation["type"] == "ngram" and speculation["drafted"] > speculation["accepted"] > 0
    assert speculation["acceptance_rate"] == 0.75
    _print_status(status)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("speculation:"))
    assert line == f"speculation: ngram, {speculation['accepted']} of {speculation['drafted']} drafted tokens accepted (75.0%)"


def test_the_status_line_before_any_draft_and_when_off() -> None:
    assert _speculation_line({"type": "none", "drafted": 0}) == "none"
    assert _speculation_line({"type": "ngram", "drafted": 0, "accepted": 0}) == "ngram, nothing drafted yet"
    line = _speculation_line({"type": "draft (qwen)", "drafted": 1200, "accepted": 900, "acceptance_rate": 0.75})
    assert line == "draft (qwen), 900 of 1,200 drafted tokens accepted (75.0%)"


def test_the_status_says_how_fast_prompts_are_read_and_what_a_cold_prompt_holds() -> None:
    assert _reading_line({"prompt_tokens_per_s": None, "cold_prompt_tokens": 1024}) == (
        "speed not measured yet; prompts get up to 1024 tokens")
    assert _reading_line({"prompt_tokens_per_s": 45.2, "cold_prompt_tokens": 256}) == (
        "45.2 prompt tokens/s measured; a cold prompt gets 256 tokens")


def test_engine_info_says_none_unless_an_engine_speculates() -> None:
    assert ScriptedEngine().info.speculation == "none"
    assert dataclasses.replace(ScriptedEngine().info, speculation="ngram").speculation == "ngram"


def test_doctor_says_which_speculation_would_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nearcode.cli.doctor import _speculation

    monkeypatch.setenv("NEARCODE_CACHE_DIR", str(tmp_path / "cache"))
    big = models(tmp_path, QUALITY_MODEL_FILE)[0]
    assert _speculation("auto", big) == "auto -> ngram"
    assert _speculation("draft", big).startswith("draft: error: --speculation draft needs the draft model")
