"""The layout rule (docs/architecture.md): one import root, and dependencies that run one way.

    nearcode.cli  ->  nearcode.daemon, nearcode.lsp  ->  nearcode.shared

The daemon and the language server never import each other; shared imports neither; nothing but
the CLI imports the CLI. Checked on the source (every import statement, also inside functions), and
on the running code: a checkout, the editable install and a wheel each import one way only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

PARTS = {"daemon": REPO / "daemon", "lsp": REPO / "lsp", "shared": REPO / "nearcode" / "shared", "cli": REPO / "nearcode" / "cli"}
# What each part may import of nearcode (besides itself and the package root's __version__).
ALLOWED = {
    "shared": set(),
    "daemon": {"shared"},
    "lsp": {"shared"},
    "cli": {"shared", "daemon", "lsp"},
}


def _nearcode_imports(path: Path) -> list[tuple[int, str]]:
    """(line, part) for every import of a nearcode part in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "nearcode" else [f"nearcode.{a.name}" for a in node.names]
        for name in names:
            top, _, rest = name.partition(".")
            if top in ("daemon", "lsp"):
                found.append((node.lineno, f"bare {top}"))
            elif top == "nearcode" and rest:
                part = rest.split(".")[0]
                if part != "__version__":
                    found.append((node.lineno, part))
    return found


@pytest.mark.parametrize("part", sorted(PARTS))
def test_imports_run_one_way(part: str) -> None:
    wrong = []
    for path in sorted(PARTS[part].rglob("*.py")):
        for line, target in _nearcode_imports(path):
            if target != part and target not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert not wrong, f"{part} may import only {sorted(ALLOWED[part]) or 'itself'}:\n" + "\n".join(wrong)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from nearcode.lsp import server\n    import daemon.scheduler\n")
    assert _nearcode_imports(bad) == [(2, "lsp"), (3, "bare daemon")]


def _python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


def test_a_checkout_imports_one_way_only() -> None:
    # From the checkout's root the folders are on sys.path, yet only their nearcode names work.
    ok = _python("import nearcode.daemon.scheduler, nearcode.lsp.server; print('ok')", REPO, {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert ok.stdout.strip() == "ok", ok.stderr
    for bare in ("daemon", "lsp"):
        refused = _python(f"import {bare}", REPO, {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert refused.returncode != 0 and f"imported as nearcode.{bare}" in refused.stderr


def test_a_project_with_its_own_daemon_and_lsp_packages_changes_nothing(tmp_path: Path) -> None:
    """python-daemon installs a top-level `daemon`, and users' projects have `daemon/` and `lsp/`
    folders: with both on the path, the installed nearcode still imports only its own code."""
    for name in ("daemon", "lsp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise SystemExit('the wrong package was imported')\n")
    # The editable install of this environment, run from the project's folder with it on PYTHONPATH.
    run = subprocess.run(
        [sys.executable, "-c", "import nearcode.daemon.scheduler, nearcode.lsp.server, nearcode.cli.main; print(nearcode.daemon.scheduler.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).resolve().is_relative_to(REPO)
    # And the `nearcode` command works there (the language server spawns the daemon with -P too).
    version = subprocess.run(
        [sys.executable, "-m", "nearcode", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert version.returncode == 0 and version.stdout.startswith("nearcode "), version.stderr
