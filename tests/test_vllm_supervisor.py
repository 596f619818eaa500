"""The vLLM engine's supervisor and client path, with a real child process standing in for `vllm serve`.

The child is tests/llama_child_server.py (llama.cpp's server, the same OpenAI-compatible protocol),
started through the engine's own supervisor code via the configurable command. What cannot run
here is vLLM itself (it needs a CUDA GPU): its command line is checked as data.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest

from nearcode.daemon.canary import EXPECTED, PROBE_PREFIX, PROBE_SUFFIX
from nearcode.daemon.engines.base import EngineError, GenerationRequest
from nearcode.daemon.engines.vllm import VllmConfig, VllmEngine, diagnose_vllm, serve_argv
from nearcode.daemon.prompting.fim import FimInput, PromptBudget, build_fim_prompt
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.shared.endpoint import pid_alive
from tests.llama_server import CHILD_SERVER, model_file

QWEN = fim_templates()["qwen2.5-coder"]


def child_command() -> tuple[str, ...]:
    return (sys.executable, str(CHILD_SERVER), "{model}", "--port", "{port}", "--parallel", "2",
            "--served-model-name", "{served_model_name}")


async def fib_answer(engine: VllmEngine) -> str:
    prompt = await build_fim_prompt(FimInput(prefix=PROBE_PREFIX, suffix=PROBE_SUFFIX), QWEN, PromptBudget(),
                                    engine.count_tokens)
    request = GenerationRequest(prompt=prompt.text, max_tokens=16, stop=(*QWEN.stop, "\n"))
    return "".join([c.text async for c in engine.generate(request)])


@pytest.mark.real
async def test_supervised_child_serves_and_is_restarted_after_it_dies() -> None:
    engine = VllmEngine(VllmConfig(model=model_file(), command=child_command(), check_gpu=False,
                                   restart_backoff_s=(0.5,), max_num_seqs=2, ready_timeout_s=120))
    await engine.start()
    try:
        assert engine.info.engine == "vllm" and engine.info.metadata["ready"] == "true"
        assert EXPECTED in await fib_answer(engine)  # priority field sent, and accepted
        first = engine.supervisor.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        for _ in range(100):  # the supervisor notices the death within moments
            if not engine.supervisor.ready.is_set():
                break
            await asyncio.sleep(0.05)
        assert not engine.supervisor.ready.is_set()
        # While it restarts, a request with a short deadline fails clearly instead of hanging.
        with pytest.raises(EngineError, match="restarting"):
            await fib_answer_with_deadline(engine, 0.2)
        assert await engine.supervisor.wait_ready(120), engine.supervisor.output
        assert engine.supervisor.restarts == 1 and engine.supervisor.pid not in (None, first)
        assert EXPECTED in await fib_answer(engine)  # serves again
    finally:
        last = engine.supervisor.pid
        await engine.close()
    assert last is not None and not pid_alive(last)


async def fib_answer_with_deadline(engine: VllmEngine, seconds: float) -> str:
    request = GenerationRequest(prompt="x", max_tokens=4, deadline=time.monotonic() + seconds)
    return "".join([c.text async for c in engine.generate(request)])


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("RuntimeError: No CUDA GPUs are available", "no usable CUDA GPU"),
        ("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
         "too little GPU memory"),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "too little GPU memory"),
        ("ValueError: Model architectures ['FooForCausalLM'] are not supported for now.", "cannot load this model"),
    ],
)
async def test_a_child_that_dies_at_start_is_explained(stderr: str, expected: str) -> None:
    script = f"import sys; print('INFO starting'); sys.stderr.write({stderr!r} + '\\n'); sys.exit(1)"
    engine = VllmEngine(VllmConfig(model="m", command=(sys.executable, "-c", script), check_gpu=False,
                                   ready_timeout_s=30))
    with pytest.raises(EngineError, match=expected):
        await engine.start()
    await engine.close()


async def test_no_gpu_is_refused_before_starting_anything() -> None:
    engine = VllmEngine(VllmConfig(model="Qwen/Qwen2.5-Coder-7B"))
    with pytest.raises(EngineError, match="needs a CUDA GPU"):
        await engine.start()
    assert engine.supervisor.pid is None


def test_vllm_serve_command_line() -> None:
    argv = serve_argv(VllmConfig(model="Qwen/Qwen2.5-Coder-7B"), 8123, executable="/opt/vllm/bin/vllm")
    line = " ".join(argv)
    assert argv[:3] == ("/opt/vllm/bin/vllm", "serve", "Qwen/Qwen2.5-Coder-7B")
    for flag in ("--host 127.0.0.1", "--port 8123", "--enable-prefix-caching", "--scheduling-policy priority",
                 "--max-model-len 8192", "--max-num-seqs 16", "--max-num-batched-tokens 4096",
                 "--gpu-memory-utilization 0.8", "--served-model-name nearcode"):
        assert flag in line
    assert "--api-key" not in line  # the key goes through the environment, not the process list
    with pytest.raises(EngineError, match="vllm is not installed"):
        serve_argv(VllmConfig(model="m"), 8123)  # nothing installed here
    assert diagnose_vllm("all fine") is None
