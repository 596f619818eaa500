"""The remote (OpenAI-compatible) engine against a real llama.cpp server speaking that protocol."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from nearcode.daemon.canary import EXPECTED, PROBE_PREFIX, PROBE_SUFFIX
from nearcode.daemon.engines.base import EngineError, FinishReason, GenerationRequest
from nearcode.daemon.engines.openai_compat import (
    OpenAICompatConfig,
    OpenAICompatEngine,
    _sse_events,
    estimate_tokens,
)
from nearcode.daemon.prompting.fim import FimInput, PromptBudget, build_fim_prompt
from nearcode.daemon.prompting.templates import fim_templates
from tests.llama_server import CHILD_SERVER, RunningServer, free_port, llama_server, model_file
from tests.support import daemon_http, env_for, new_runtime_dir, start_daemon, stop_daemon

pytestmark = pytest.mark.real  # a real llama.cpp server speaks the protocol

KEY = "test-key-123"
KEY_ENV = "NEARCODE_TEST_REMOTE_KEY"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with llama_server(KEY) as running:
        yield running


@pytest.fixture
async def engine(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenAICompatEngine]:
    monkeypatch.setenv(KEY_ENV, KEY)
    # ignore_eos: a generation runs to max_tokens, so a cancel test cannot pass by finishing early.
    remote = OpenAICompatEngine(OpenAICompatConfig(base_url=server.url + "/v1", api_key_env=KEY_ENV,
                                                   extra_body={"ignore_eos": True}))
    await remote.start()
    yield remote
    await remote.close()


def busy_slots(server: RunningServer) -> int:
    return sum(1 for slot in server.get("/slots").json() if slot.get("is_processing"))


def wait_idle(server: RunningServer, within_s: float) -> bool:
    give_up = time.monotonic() + within_s
    while busy_slots(server) and time.monotonic() < give_up:
        time.sleep(0.05)
    return busy_slots(server) == 0


async def test_fim_completion_and_real_token_counts(engine: OpenAICompatEngine, server: RunningServer) -> None:
    assert engine.info.engine == "openai" and engine.info.model and engine.info.metadata["tokenizer"] == "llamacpp"
    text = "def fib(n):\n" + " " * 64 + "return n"  # runs of spaces: far fewer tokens than chars/3.5
    response = await asyncio.to_thread(httpx.post, server.url + "/tokenize", json={"content": text},
                                       headers={"Authorization": f"Bearer {KEY}"}, trust_env=False)
    direct = response.json()["tokens"]
    assert await engine.count_tokens(text) == len(direct) != estimate_tokens(text)
    template = fim_templates()["qwen2.5-coder"]
    prompt = await build_fim_prompt(FimInput(prefix=PROBE_PREFIX, suffix=PROBE_SUFFIX), template,
                                    PromptBudget(), engine.count_tokens)
    chunks = [c async for c in engine.generate(
        GenerationRequest(prompt=prompt.text, max_tokens=16, stop=(*template.stop, "\n")))]
    answer = "".join(c.text for c in chunks)
    assert EXPECTED in answer and "\n" not in answer
    final = chunks[-1]
    assert final.finish_reason == FinishReason.STOP and final.stats is not None
    assert final.stats.prompt_tokens > 10 and final.stats.generated_tokens > 3


async def test_closing_the_stream_stops_the_server(engine: OpenAICompatEngine, server: RunningServer) -> None:
    generation = engine.generate(GenerationRequest(prompt="def long_function():\n", max_tokens=1500))
    received = [await anext(generation) for _ in range(3)]
    assert all(c.text for c in received)
    assert await asyncio.to_thread(busy_slots, server) == 1  # still generating: over a minute of work left
    await generation.aclose()  # type: ignore[attr-defined]
    # Generous under a loaded CPU; without the cancel the slot would stay busy for over a minute.
    assert await asyncio.to_thread(wait_idle, server, 10.0), "the server kept generating after the client hung up"
    assert engine.cancel_counters.cancelled == 1


async def test_deadline_ends_a_long_generation(engine: OpenAICompatEngine) -> None:
    started = time.monotonic()
    request = GenerationRequest(prompt="def f():\n", max_tokens=400, deadline=time.monotonic() + 1.0)
    chunks = [c async for c in engine.generate(request)]
    assert chunks[-1].finish_reason == FinishReason.DEADLINE and time.monotonic() - started < 3


async def test_api_key_problems_are_clear(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "wrong-key")
    wrong = OpenAICompatEngine(OpenAICompatConfig(base_url=server.url, api_key_env=KEY_ENV))
    with pytest.raises(EngineError, match=f"refused the API key.*{KEY_ENV}"):
        await wrong.start()
    await wrong.close()
    unset = OpenAICompatEngine(OpenAICompatConfig(base_url=server.url, api_key_env="NEARCODE_TEST_UNSET_VAR"))
    with pytest.raises(EngineError, match="NEARCODE_TEST_UNSET_VAR"):
        await unset.start()


async def test_connection_errors_are_retried_with_backoff_then_reported() -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"
    remote = OpenAICompatEngine(OpenAICompatConfig(base_url=nothing_there, retries=2, backoff_s=0.2, model="m"))
    started = time.monotonic()
    with pytest.raises(EngineError, match="cannot reach"):
        await remote.start()
    assert time.monotonic() - started >= 0.2 + 0.4  # two back-offs: the retries happened
    await remote.close()


async def test_retry_reaches_a_server_that_comes_up_while_waiting() -> None:
    # Connection refused at first; the server appears within the back-off window.
    port = free_port()
    remote = OpenAICompatEngine(OpenAICompatConfig(base_url=f"http://127.0.0.1:{port}", retries=6, backoff_s=0.5))
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD_SERVER), model_file(), "--port", str(port),
        "--parallel", "1", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await remote.start()  # retries until the model is loaded and /v1/models answers
        assert remote.info.model
    finally:
        await remote.close()
        process.terminate()
        await process.wait()


async def test_sse_parsing_handles_comments_and_multiline_data() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in [": keep-alive", "", "data: {\"a\":", "data: 1}", "", "event: x", "data: [DONE]", ""]:
            yield line

    assert [e async for e in _sse_events(lines())] == ['{"a":\n1}', "[DONE]"]


def test_daemon_with_the_openai_engine_serves_fim(server: RunningServer) -> None:
    # The whole path: CLI options -> engine factory -> remote engine -> the daemon's /api/fim.
    env = {**env_for(new_runtime_dir()), KEY_ENV: KEY}
    start_daemon(env, "--engine", "openai", "--remote-url", server.url + "/v1", "--api-key-env", KEY_ENV)
    try:
        with daemon_http(env) as client:
            model = client.get("/api/model").json()
            assert model["engine"] == "openai" and model["engine_reason"] == "--engine openai was asked for"
            assert model["family"] == "qwen2.5-coder"  # from the served id (the model file's name)
            body = {"prefix": PROBE_PREFIX, "suffix": PROBE_SUFFIX, "max_tokens": 16}
            lines = client.post("/api/fim", json=body).text.splitlines()
        events = [json.loads(line) for line in lines]
        assert EXPECTED in "".join(e.get("text", "") for e in events if e["type"] == "delta")
        assert events[-1]["type"] == "done" and events[-1]["generated_tokens"] > 0
    finally:
        stop_daemon(env)
