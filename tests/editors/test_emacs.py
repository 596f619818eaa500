"""Emacs 28 + eglot 1.9 (Debian emacs-nox, elpa-eglot) in batch mode: eglot starts
`nearcode lsp --stdio` and gets the model's suggestion through standard textDocument/completion,
then completion-at-point inserts it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
FIB = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = \n    return a\n"
ELPA = Path("/usr/share/emacs/site-lisp/elpa")


@pytest.fixture(scope="module")
def emacs() -> str:
    path = shutil.which("emacs")
    if not path:
        pytest.skip("emacs is not installed (Debian: apt-get install emacs-nox elpa-eglot)")
    if not list(ELPA.glob("eglot-*")):
        pytest.skip("eglot is not installed (Debian: apt-get install elpa-eglot)")
    return path


def test_eglot_gets_completion(
    emacs: str,
    nearcode_bin: str,
    editor_env: dict[str, str],
    tmp_path: Path,
    run_editor: Callable[..., dict[str, Any]],
) -> None:
    source = tmp_path / "fib.py"
    source.write_text(FIB)
    out = tmp_path / "report.json"
    env = dict(
        editor_env, NC_NEARCODE=nearcode_bin, NC_FILE=str(source), NC_LINE="4", NC_OUT=str(out)
    )
    report = run_editor(
        [emacs, "-Q", "--batch", "-l", str(HERE / "emacs" / "eglot_complete.el")],
        env,
        tmp_path,
        out,
    )
    detail = report.pop("_detail")
    assert not report.get("elisp_error"), f"{report}\n{detail}"
    assert report["connected"], detail
    assert report["completion_provider"], "server does not advertise completionProvider"
    assert report["line_before"] == "        a, b = "
    candidates = report["candidates"]
    assert candidates and any(c.strip() for c in candidates), f"no completion: {report}\n{detail}"
    # The suggestion landed in the buffer, and the rest of the file is intact.
    line_after = report["line_after"]
    assert line_after.startswith("        a, b = ") and line_after.strip() != "a, b =", report
    # Greedy decoding on this snippet is known: the loop body's swap.
    assert line_after.startswith("        a, b = b, a + b"), f"unexpected completion {line_after!r}"
    assert report["buffer"].startswith("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n")
    assert report["buffer"].rstrip().endswith("return a")
