"""The embedded engine built for this CPU (daemon/engines/native_build.py, `nearcode engine install
native`): which features a CPU offers and a build uses, the pinned source, the build command, the
cache, and the command's answers when nothing can or need be built. The build itself (7 minutes)
is not run here; docs/models.md says how it was measured."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nearcode.cli import native_install
from nearcode.daemon.engines import native_build
from nearcode.daemon.engines.native_build import (
    NativeBuildError,
    NativePlan,
    build_command,
    build_features,
    build_wheel,
    cached_wheel,
    cpu_features,
    source_requirement,
    unused_cpu_features,
)
from nearcode.daemon.model_install import requirements_dir

# The flags line of this machine's CPU (AMD EPYC, Zen: AVX512 with VNNI and BF16), cut.
ZEN_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse sse2 ht syscall pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16 avx_vnni vaes
"""
HASWELL_CPUINFO = "flags\t\t: fpu sse sse2 pni ssse3 fma sse4_2 avx f16c bmi1 avx2 bmi2\n"
# get_system_info() of PyPI's xllamacpp 2026.10.11549 wheel, and of the build for this CPU.
GENERIC_INFO = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
NATIVE_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
               "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")


def zen_plan(built: str = GENERIC_INFO) -> NativePlan:
    return NativePlan("2026.10.11549", "0" * 64, cpu_features(ZEN_CPUINFO), build_features(built))


def test_the_generic_wheel_leaves_avx512_unused_on_a_zen_cpu_and_a_native_build_nothing() -> None:
    assert cpu_features(ZEN_CPUINFO) == {"AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX512", "AVX512_VBMI",
                                         "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI"}
    assert zen_plan().missed == {"AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI"}
    assert "leaves AVX512, AVX512_BF16, AVX512_VBMI, AVX512_VNNI, AVX_VNNI unused" in zen_plan().describe()
    assert zen_plan(NATIVE_INFO).missed == frozenset()
    assert unused_cpu_features(NATIVE_INFO, ZEN_CPUINFO) == ()
    assert unused_cpu_features(GENERIC_INFO, HASWELL_CPUINFO) == ()  # an AVX2 CPU gains nothing


def test_a_cpu_whose_flags_cannot_be_read_is_never_built_for() -> None:
    unknown = NativePlan("v", "0" * 64, cpu_features("no flags here"), build_features(GENERIC_INFO))
    assert unknown.cpu == frozenset() and unknown.missed == frozenset()
    assert "unknown" in unknown.describe()
    assert build_features("AVX512 = 0 | AVX2 = 1") == {"AVX2"}  # a feature built off is not one it has


def test_the_cached_wheel_is_named_by_the_version_and_the_cpu() -> None:
    haswell = NativePlan("2026.10.11549", "0" * 64, cpu_features(HASWELL_CPUINFO), frozenset())
    assert zen_plan().signature == zen_plan(NATIVE_INFO).signature  # what is installed does not matter
    assert zen_plan().signature != haswell.signature
    assert re.fullmatch(r"llamacpp-native-2026\.10\.11549-[0-9a-f]{12}", zen_plan().signature)


def test_the_source_pin_is_the_version_of_the_wheel_every_preset_installs() -> None:
    version, source_hash = source_requirement(requirements_dir())
    assert len(source_hash) == 64
    for preset_file in ("embedded-0.5b.txt", "embedded-1.5b.txt"):
        pinned = re.search(r"^xllamacpp==(\S+) ", (requirements_dir() / preset_file).read_text(), re.MULTILINE)
        assert pinned is not None and pinned.group(1) == version, preset_file


def test_the_build_checks_the_source_hash_refuses_the_wheel_and_fetches_nothing_else(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CCACHE=OFF")
    monkeypatch.setenv("XLLAMACPP_RELEASE", "1")  # would turn GGML_NATIVE off
    command, env = build_command(zen_plan(), tmp_path / "pin.txt", tmp_path)
    assert command[:4] == [sys.executable, "-m", "pip", "wheel"]
    assert "--require-hashes" in command and command[command.index("--no-binary") + 1] == "xllamacpp"
    assert env["CMAKE_ARGS"].split() == ["-DGGML_CCACHE=OFF", "-DLLAMA_LLGUIDANCE=OFF", "-DLLAMA_BUILD_BORINGSSL=OFF",
                                         "-DLLAMA_OPENSSL=OFF"]
    assert "XLLAMACPP_RELEASE" not in env


def test_a_cached_wheel_is_installed_without_building_and_a_failed_build_leaves_no_wheel(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = zen_plan()
    assert cached_wheel(plan, tmp_path) is None
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    monkeypatch.setattr(native_build, "build_command", lambda *a: (failing, {}))
    with pytest.raises(NativeBuildError, match="exit 3"):
        build_wheel(plan, requirements_dir(), tmp_path)
    assert cached_wheel(plan, tmp_path) is None and not list(tmp_path.glob(f"{plan.signature}*"))
    folder = tmp_path / plan.signature
    folder.mkdir()
    wheel = folder / "xllamacpp-2026.10.11549-cp310-abi3-linux_x86_64.whl"
    wheel.write_bytes(b"built earlier")
    assert build_wheel(plan, requirements_dir(), tmp_path) == wheel  # the failing command never ran


def _args(**flags: bool) -> argparse.Namespace:
    return argparse.Namespace(name="native", dry_run=flags.get("dry_run", False), if_useful=flags.get("if_useful", False))


def test_without_a_compiler_make_run_goes_on_with_the_generic_build(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(native_install, "plan", lambda _: zen_plan())
    monkeypatch.setenv("NEARCODE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no c++
    assert native_install.run_native_install(_args(if_useful=True)) == 0
    assert native_install.run_native_install(_args()) == 1
    out = capsys.readouterr().out
    assert "cannot build here: cmake, a C++ compiler (c++, g++ or clang++) not found; the generic build stays" in out


def test_a_build_that_already_uses_the_cpu_is_left_alone(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(native_install, "plan", lambda _: zen_plan(NATIVE_INFO))
    monkeypatch.setattr(native_build, "build_wheel", lambda *a: pytest.fail("nothing should be built"))
    assert native_install.run_native_install(_args()) == 0
    assert "uses every feature" in capsys.readouterr().out


@pytest.mark.real  # it imports the embedded engine
def test_the_command_reports_this_machine_from_the_build_it_imports() -> None:
    """The real command on the real install: it asks a fresh interpreter which build it imports."""
    result = subprocess.run([sys.executable, "-m", "nearcode", "engine", "install", "native", "--dry-run"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    said = re.search(r"^native: (the installed llama.cpp build (uses every feature|leaves [A-Z0-9_, ]+ unused).*)$",
                     result.stdout, re.MULTILINE)
    assert said, result.stdout
    doctor = subprocess.run([sys.executable, "-m", "nearcode", "doctor"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert f"build:     {said.group(1)}" in doctor.stdout, doctor.stdout  # doctor says the same of this machine
