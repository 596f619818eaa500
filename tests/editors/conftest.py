"""Shared fixtures for the real-editor tests (Neovim, Emacs).

The editors start `nearcode lsp --stdio` themselves; its environment comes from the session's
`daemon_env` fixture (tests/conftest.py), so the language server finds the test daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

VENV_BIN = Path(sys.executable).parent


def find_tool(name: str, env: dict[str, str] | None = None) -> str | None:
    """`name` from the virtual environment running pytest, else from PATH."""
    return shutil.which(name, path=str(VENV_BIN)) or shutil.which(
        name, path=(env or os.environ).get("PATH")
    )


@pytest.fixture
def editor_env(daemon_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The daemon's environment with private XDG folders and the venv's bin first on PATH."""
    env = dict(daemon_env)
    # The editors' own state and config are private; the model cache (XDG_CACHE_HOME) is not
    # touched, in case the language server has to start a daemon itself.
    for var in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        folder = tmp_path / "xdg" / var.lower()
        folder.mkdir(parents=True)
        env[var] = str(folder)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    # The language servers the editor starts record insight here, not in the user's own file.
    env["NEARCODE_INSIGHT_DIR"] = str(tmp_path / "insight")
    return env


@pytest.fixture
def nearcode_bin(editor_env: dict[str, str]) -> str:
    path = find_tool("nearcode", editor_env)
    if not path:
        pytest.fail("`nearcode` is not installed in this environment (run `make dev`)")
    return path


@pytest.fixture(scope="session")
def find_editor() -> Callable[[str], str | None]:
    """Finds a program in the venv running pytest, else on PATH."""
    return find_tool


@pytest.fixture(scope="session")
def run_editor() -> Callable[..., dict[str, Any]]:
    """Runs an editor in batch mode; it writes a JSON report to `out`, which is returned."""
    return _run_editor


def _run_editor(
    argv: list[str], env: dict[str, str], cwd: Path, out: Path, timeout: float = 90
) -> dict[str, Any]:
    proc = subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    detail = (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    if not out.exists():
        pytest.fail(f"{argv[0]} wrote no report\n{detail}")
    report: dict[str, Any] = json.loads(out.read_text())
    report["_detail"] = detail
    return report
