"""Generated tests are untrusted code: the runner's sandbox, driven with a hostile test file.

The file (tests/hostile.py) tries to write into the home folder, take cloud keys out of the
environment into a shared temporary folder, reach listeners on this machine, leave detached
processes running and print a gigabyte. Each sandbox (bubblewrap, and the unshare fallback) must
stop all of it; the copy of the project must not follow links; a project interpreter without
pytest is reported as such. Fast: no model, no daemon.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from nearcode.lsp.code_actions.project_copy import copy_project
from nearcode.lsp.code_actions.sandbox import Limits
from nearcode.lsp.code_actions.test_runner import run_python_tests
from nearcode.lsp.code_actions.unit_tests import project_root
from nearcode.shared.isolation import isolation_tools
from tests.hostile import SECRETS, trap

CALC = "def add(a, b):\n    return a + b\n"


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname='calc'\n")
    (root / "calc.py").write_text(CALC)
    (root / "tests").mkdir()
    return root / "tests" / "test_calc.py"


def test_a_sandbox_tool_works_here() -> None:
    tools = isolation_tools()
    assert tools.bwrap, f"bubblewrap does not work here: {tools.problem} (`make test` installs it as root: .ci/system-packages)"
    assert tools.unshare, "util-linux unshare does not work here (the fallback)"


@pytest.mark.parametrize("framework", ["pytest", "unittest"])
@pytest.mark.parametrize("sandbox", ["bubblewrap", "unshare"])
async def test_hostile_generated_tests_achieve_nothing(
    framework: str, sandbox: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    test_file = _project(tmp_path / "calc")
    with trap(tmp_path) as attack:
        started = time.monotonic()
        run = await run_python_tests(tmp_path / "calc", framework, {test_file: attack.tests(framework)}, test_file,
                                     prefer="unshare" if sandbox == "unshare" else "")  # fmt: skip
        elapsed = time.monotonic() - started
        assert run.sandbox == sandbox, run
        assert attack.traces() == [], run.output
        assert run.outcome in ("failed", "error"), run
        for value in SECRETS.values():
            assert value not in run.output, "a key reached the test's output"
        assert elapsed < 45, f"the gigabyte took {elapsed:.0f} s: the output cap did not stop it"
    assert not test_file.exists(), "the run must not touch the project"
    print(f"{sandbox}/{framework}: {run.outcome} ({run.summary}) in {elapsed:.2f} s")


LIMITS_PROBE = '''
import json, os, resource, subprocess, sys, unittest

class Limits(unittest.TestCase):
    def test_limits(self):
        names = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE")
        report = {name: resource.getrlimit(getattr(resource, name)) for name in names}
        started = []
        try:
            for _ in range(200):
                started.append(subprocess.Popen(["sleep", "5"]))
        except OSError as exc:
            report["fork_error"] = type(exc).__name__
        report["started"] = len(started)
        for process in started:
            process.kill()
            process.wait()
        try:
            with open("big.bin", "wb") as f:
                f.write(b"x" * (70 << 20))
            report["big_file"] = "written"
        except OSError as exc:
            report["big_file"] = type(exc).__name__
        report["env"] = sorted(os.environ)
        report["uid"] = os.getuid()
        report["caps"] = open("/proc/self/status").read().split("CapEff:")[1].split()[0]
        print("REPORT " + json.dumps(report), flush=True)
'''


@pytest.mark.parametrize("sandbox", ["bubblewrap", "unshare"])
async def test_limits_bind_and_the_environment_is_scrubbed(sandbox: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    test_file = _project(tmp_path / "calc")
    limits = Limits(cpu_seconds=30, processes=32, file_bytes=64 << 20)
    run = await run_python_tests(tmp_path / "calc", "unittest", {test_file: LIMITS_PROBE}, test_file, limits=limits,
                                 prefer="unshare" if sandbox == "unshare" else "")  # fmt: skip
    line = next((line for line in run.output.splitlines() if line.startswith("REPORT ")), None)
    assert line is not None, run.output
    report = json.loads(line[len("REPORT ") :])
    assert report["RLIMIT_CPU"] == [30, 30] and report["RLIMIT_NPROC"] == [32, 32]
    assert report["RLIMIT_AS"][0] == limits.memory_bytes and report["RLIMIT_FSIZE"][0] == 64 << 20
    assert report["started"] < 32 and report.get("fork_error"), report  # the process limit binds
    assert report["big_file"] == "OSError", report  # EFBIG: past the file-size limit
    assert report["caps"] == "0000000000000000", "no capabilities in the sandbox"
    leaked = [name for name in report["env"] if name in SECRETS or "KEY" in name or "TOKEN" in name or "SECRET" in name]
    assert not leaked, leaked
    assert set(report["env"]) <= {"PATH", "HOME", "TMPDIR", "TERM", "NO_COLOR", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                                  "NEARCODE_SANDBOX", "NEARCODE_SANDBOX_CWD", "LANG", "LANGUAGE", "TZ", "LC_ALL",
                                  "LC_CTYPE", "PWD", "SHLVL", "_"}, report["env"]  # fmt: skip


def test_the_copy_takes_regular_files_only(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "zeros").symlink_to("/dev/zero")  # followed, it would be copied forever
    (root / "ssh").symlink_to(Path.home())  # a link out of the project
    (root / "passwd").symlink_to("/etc/passwd")
    os.mkfifo(root / "pipe")  # opened blocking, it would hang the copy
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "big.bin").write_bytes(b"x" * 6_000_000)
    copy = tmp_path / "copy"
    started = time.monotonic()
    report = copy_project(root, copy)
    assert time.monotonic() - started < 5
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == ["pkg", "pkg/mod.py"]
    assert report.links_skipped == 3 and report.special_skipped == 1 and report.large_skipped == 1


def test_the_root_search_stops_at_the_workspace_folder_and_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    (home / ".git").mkdir(parents=True)  # a stray ~/.git must not make the home folder the project
    file = home / "scratch" / "calc.py"
    file.parent.mkdir()
    file.write_text(CALC)
    assert project_root(file) == file.parent
    workspace = tmp_path / "work" / "mono"
    (workspace / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "work" / "pyproject.toml").write_text("")  # above the workspace folder: never used
    inner = workspace / "pkg" / "sub" / "calc.py"
    inner.write_text(CALC)
    assert project_root(inner, stop_at=workspace) == inner.parent
    (workspace / "pyproject.toml").write_text("")
    assert project_root(inner, stop_at=workspace) == workspace


async def test_a_missing_pytest_is_reported_as_not_run(tmp_path: Path) -> None:
    test_file = _project(tmp_path / "calc")
    venv = tmp_path / "calc" / ".venv" / "bin"
    venv.mkdir(parents=True)
    # A project interpreter without pytest: the system's Python with no site-packages of ours.
    (venv / "python").write_text(f"#!/bin/sh\nexec {sys.base_prefix}/bin/python3 -S \"$@\"\n")
    (venv / "python").chmod(0o755)
    run = await run_python_tests(tmp_path / "calc", "pytest", {test_file: "def test_x():\n    pass\n"}, test_file)
    assert run.outcome == "not run", run
    assert run.summary == f"not run: pytest is not installed in {venv / 'python'}", run
