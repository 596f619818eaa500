"""The wheel holds one import root, `nearcode`, ships prompts/, and the installed package finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.real  # builds a wheel with pip


def test_wheel_ships_and_finds_the_templates(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("nearcode-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "nearcode/prompts/families/qwen2.5-coder.toml" in names
        assert "nearcode/daemon/scheduler.py" in names and "nearcode/lsp/server.py" in names
        # `nearcode model install` from the wheel installs these, hash-pinned (.ci/wheel-check).
        assert "nearcode/requirements/embedded-0.5b.txt" in names
        # Nothing at the top level but nearcode: `daemon` is python-daemon's name too.
        assert {name.split("/")[0] for name in names if not name.startswith("nearcode-")} == {"nearcode"}
        archive.extractall(tmp_path / "site")
    # Import from the unpacked wheel only (-P: not from the working directory or the checkout).
    probe = (
        "from nearcode.daemon.prompting.templates import prompts_dir, fim_templates;"
        "from nearcode.daemon.model_install import requirements_file; from nearcode.daemon.model_store import PRESETS;"
        "assert requirements_file(PRESETS['fast']).is_file();"
        "print(prompts_dir()); print(len(fim_templates()))"
    )
    run = subprocess.run(
        [sys.executable, "-P", "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    location, count = run.stdout.split()
    assert location.startswith(str(tmp_path / "site")) and int(count) >= 8
