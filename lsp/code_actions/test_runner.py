"""Run generated Python tests before they are offered: a temporary copy, a subprocess, a time limit.

The copy holds the project (without VCS, virtualenvs and caches) plus the editor's unsaved text of
the file under test and the new test file, so nothing in the user's tree is touched. The subprocess
loads nearcode/shared/privacy.py first, so the tests it runs cannot reach the network either (local-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nearcode.shared import privacy
from nearcode.shared.protocol.editor import TestOutcome

RUN_TIMEOUT_S = 60.0
MAX_COPY_BYTES = 50_000_000
_SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", ".mypy_cache",
              ".pytest_cache", ".ruff_cache", ".tox", "build", "dist", "target"}  # fmt: skip

# Runs inside the project's interpreter: install the network guard, then the test framework.
_BOOT = """
import runpy, sys
guard_file, mode, framework, target = sys.argv[1:5]
runpy.run_path(guard_file)["install_network_guard"]("generated-tests", mode)
if framework == "pytest":
    import pytest
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", target]))
import unittest
unittest.main(module=None, argv=["unittest", "-v", target])
"""


@dataclass(frozen=True)
class TestRun:
    outcome: TestOutcome  # "passed", "failed", "error" (could not run, or timed out)
    summary: str  # pytest's last line, or what went wrong
    output: str  # the tail of the output
    elapsed_s: float


def interpreter(root: Path) -> str:
    """The project's own virtualenv when it has one (its dependencies), else ours."""
    for candidate in (root / ".venv" / "bin" / "python", root / "venv" / "bin" / "python"):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _copy_project(root: Path, destination: Path) -> None:
    budget = MAX_COPY_BYTES
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        relative = Path(folder).relative_to(root)
        (destination / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            source = Path(folder) / name
            with contextlib.suppress(OSError):
                size = source.stat().st_size
                if size > 5_000_000 or size > budget:
                    continue
                budget -= size
                shutil.copy2(source, destination / relative / name)


async def run_python_tests(
    root: Path,
    framework: str,
    files: dict[Path, str],
    test_path: Path,
    mode: str = privacy.LOCAL_ONLY,
    timeout_s: float = RUN_TIMEOUT_S,
) -> TestRun:
    """Run `test_path` in a copy of `root` where `files` (absolute paths under root) have the given text."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nearcode-tests-") as temp:
        copy = Path(temp) / "project"
        await asyncio.to_thread(_copy_project, root, copy)
        for path, text in files.items():
            target = copy / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        relative = str(test_path.relative_to(root))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        src = [str(copy / "src")] if (copy / "src").is_dir() else []
        env["PYTHONPATH"] = os.pathsep.join([str(copy), *src])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        process = await asyncio.create_subprocess_exec(
            interpreter(root), "-c", _BOOT, privacy.__file__, mode, framework, relative,
            cwd=copy, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # the time limit kills the whole group, forks included
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return TestRun("error", f"timed out after {timeout_s:.0f}s", "", time.monotonic() - started)
        output = out.decode(errors="replace").replace(str(copy) + os.sep, "")
        code = process.returncode
    elapsed = time.monotonic() - started
    return TestRun(_outcome(framework, code, output), _summary(output, code), "\n".join(output.splitlines()[-25:]), elapsed)


def _outcome(framework: str, code: int | None, output: str) -> TestOutcome:
    if framework == "pytest":
        if code is None or code not in (0, 1):
            return "error"
        return "passed" if code == 0 else "failed"
    if code == 0:
        return "passed"
    return "failed" if re.search(r"^FAILED \(.*failures=", output, re.M) else "error"


def _summary(output: str, code: int | None) -> str:
    for line in reversed(output.strip().splitlines()):
        line = line.strip().strip("=").strip()
        if re.search(r"\b(passed|failed|error|errors|no tests ran)\b|^OK\b|^FAILED\b|^Ran \d+", line):
            return line
    return f"exit code {code}"
