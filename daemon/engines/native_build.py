"""The embedded engine built for this CPU: `nearcode engine install native`.

Why: PyPI's xllamacpp wheel is built to run on any x86-64 with AVX2 (its `get_system_info()` names
AVX2 and nothing wider). On a CPU with AVX512 and VNNI, the same pinned version built from its
source with llama.cpp's native optimisation reads prompts 1.6-1.85 times as fast (the 1.5B on
this 2-core machine: 71.5 -> 132 and 81 -> 128 tokens/s, `bench/batch_probe.py`), and reading is what a
completion waits for (docs/benchmark.md, stop 32).

What the install does:

1. compares the CPU's features (/proc/cpuinfo) with the installed build's; when the build already
   has every feature llama.cpp can use here, it does nothing;
2. builds the version pinned in requirements/embedded-*.txt from its source distribution, checked
   by the hash in requirements/xllamacpp-source.txt, with `GGML_NATIVE` on and without the two
   parts that fetch from outside the package index at build time (llguidance's Rust crates and a
   BoringSSL clone: nearcode uses neither), into `<cache>/engines/llamacpp-native-<version>-<cpu>/`
   (about 7 minutes on 2 cores, once per CPU signature);
3. installs that wheel into nearcode's environment and checks, in a fresh interpreter, that the
   build now imported has the features.

A second run finds the wheel in the cache and only installs it (seconds), or does nothing. The
generic build comes back with `pip install --force-reinstall --require-hashes --no-deps -r
requirements/embedded-0.5b.txt`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nearcode.daemon.model_install import pip_argv
from nearcode.shared.paths import cache_dir

# /proc/cpuinfo flag -> the name llama.cpp's get_system_info() gives the feature when built with it.
CPU_FLAG_FEATURES = {
    "avx": "AVX", "avx2": "AVX2", "avx_vnni": "AVX_VNNI", "f16c": "F16C", "fma": "FMA", "bmi2": "BMI2",
    "avx512f": "AVX512", "avx512vbmi": "AVX512_VBMI", "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16", "amx_int8": "AMX_INT8",
}
KNOWN_FEATURES = frozenset(CPU_FLAG_FEATURES.values())
# Both fetch at configure time from hosts other than the package index (crates.io, a git clone);
# nearcode uses neither grammar-constrained sampling nor llama.cpp's HTTPS client.
OFFLINE_CMAKE_ARGS = ("-DLLAMA_LLGUIDANCE=OFF", "-DLLAMA_BUILD_BORINGSSL=OFF", "-DLLAMA_OPENSSL=OFF")
SOURCE_PIN = "xllamacpp-source.txt"
PROBE = "import xllamacpp; print(xllamacpp.get_system_info())"


class NativeBuildError(Exception):
    """The build or its install failed; the generic build stays in use."""


def cpu_features(cpuinfo: str) -> frozenset[str]:
    """The llama.cpp feature names of the flags of the first processor in `cpuinfo`."""
    match = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    return frozenset(feature for flag, feature in CPU_FLAG_FEATURES.items() if flag in flags)


def build_features(system_info: str) -> frozenset[str]:
    """The features a build says it was compiled with: `AVX2 = 1 | ...` in get_system_info()."""
    return frozenset(name for name, on in re.findall(r"([A-Z][A-Z0-9_]*) = (\d)", system_info) if on == "1")


@dataclass(frozen=True)
class NativePlan:
    version: str  # the pinned xllamacpp version
    source_hash: str  # sha256 of its source distribution
    cpu: frozenset[str]  # what this CPU offers that llama.cpp can use
    built: frozenset[str]  # what the installed build uses

    @property
    def missed(self) -> frozenset[str]:
        return self.cpu - self.built

    @property
    def signature(self) -> str:
        """Names the cached wheel: one per version and CPU feature set."""
        digest = hashlib.sha256(",".join(sorted(self.cpu)).encode()).hexdigest()[:12]
        return f"llamacpp-native-{self.version}-{digest}"

    def describe(self) -> str:
        if not self.cpu:
            return "this CPU's features are unknown (no /proc/cpuinfo flags)"
        if not self.missed:
            return f"the installed llama.cpp build uses every feature llama.cpp can use on this CPU ({_names(self.cpu)})"
        return f"the installed llama.cpp build leaves {_names(self.missed)} unused (it has {_names(self.built & KNOWN_FEATURES)})"


def _names(features: frozenset[str]) -> str:
    return ", ".join(sorted(features)) or "none"


def source_requirement(requirements_dir: Path) -> tuple[str, str]:
    """(version, sha256) of the pinned source distribution."""
    text = (requirements_dir / SOURCE_PIN).read_text()
    match = re.search(r"^xllamacpp==(\S+) --hash=sha256:([0-9a-f]{64})", text, re.MULTILINE)
    if match is None:
        raise NativeBuildError(f"{requirements_dir / SOURCE_PIN} pins no xllamacpp source")
    return match.group(1), match.group(2)


def installed_system_info(python: str = sys.executable) -> str:
    """get_system_info() of the build `python` imports, asked in a fresh interpreter (this process
    may hold the build that is being replaced)."""
    try:
        result = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeBuildError(f"could not ask {python} which xllamacpp it imports: {exc}") from exc
    if result.returncode != 0:
        raise NativeBuildError(f"xllamacpp does not import: {result.stderr.strip()[-300:]}")
    return result.stdout


def this_cpu(cpuinfo: str | None = None) -> frozenset[str]:
    """The features of `cpuinfo`, by default this machine's /proc/cpuinfo (none where it is absent)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    return cpu_features(cpuinfo)


def plan(requirements_dir: Path, cpuinfo: str | None = None, system_info: str | None = None) -> NativePlan:
    version, source_hash = source_requirement(requirements_dir)
    return NativePlan(version, source_hash, this_cpu(cpuinfo),
                      build_features(installed_system_info() if system_info is None else system_info))


def unused_cpu_features(system_info: str, cpuinfo: str | None = None) -> tuple[str, ...]:
    """Features of this CPU that llama.cpp could use and the build in `system_info` does not."""
    return tuple(sorted(this_cpu(cpuinfo) - build_features(system_info)))


def missing_toolchain() -> list[str]:
    """What the build needs and PATH lacks."""
    missing = [tool for tool in ("cmake",) if shutil.which(tool) is None]
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        missing.append("a C++ compiler (c++, g++ or clang++)")
    return missing


def build_command(native: NativePlan, requirement_file: Path, out: Path) -> tuple[list[str], dict[str, str]]:
    """pip builds the wheel from the hash-checked source (`--no-binary` refuses the generic wheel)."""
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join([env.get("CMAKE_ARGS", ""), *OFFLINE_CMAKE_ARGS]).strip()
    env["NPROC"] = str(os.cpu_count() or 2)
    env.pop("XLLAMACPP_RELEASE", None)  # it turns GGML_NATIVE off
    command = pip_argv("wheel", "--no-deps", "--require-hashes", "--no-binary", "xllamacpp",
                       "-r", str(requirement_file), "-w", str(out))
    return command, env


def _wheel_folder(native: NativePlan, root: Path | None) -> Path:
    return (root or cache_dir() / "engines") / native.signature


def cached_wheel(native: NativePlan, root: Path | None = None) -> Path | None:
    folder = _wheel_folder(native, root)
    wheels = sorted(folder.glob("xllamacpp-*.whl")) if folder.is_dir() else []
    return wheels[0] if wheels else None


def build_wheel(native: NativePlan, requirements_dir: Path, root: Path | None = None) -> Path:
    """The wheel for this CPU, built once into the cache (a half-built one never lands there)."""
    folder = _wheel_folder(native, root)
    wheel = cached_wheel(native, root)
    if wheel is not None:
        return wheel
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".building-") as scratch:
        command, env = build_command(native, requirements_dir / SOURCE_PIN, Path(scratch))
        print(f"nearcode: building xllamacpp {native.version} for this CPU (~7 min on 2 cores): "
              f"{' '.join(command)}", file=sys.stderr)
        result = subprocess.run(command, env=env, check=False)
        built = sorted(Path(scratch).glob("xllamacpp-*.whl"))
        if result.returncode != 0 or not built:
            raise NativeBuildError(f"the build failed (pip exit {result.returncode}); the generic build stays")
        folder.mkdir(exist_ok=True)
        os.replace(built[0], folder / built[0].name)
    return folder / built[0].name


def install_wheel(wheel: Path) -> frozenset[str]:
    """Install `wheel` over the generic build; returns the features the imported build now has."""
    result = subprocess.run(pip_argv("install", "-q", "--no-deps", "--force-reinstall", str(wheel)), check=False)
    if result.returncode != 0:
        raise NativeBuildError(f"pip could not install {wheel} (exit {result.returncode})")
    return build_features(installed_system_info())
