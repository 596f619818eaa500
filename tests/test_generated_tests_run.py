"""Generated tests through the real "Generate unit tests" command: the user is asked first, and what
runs is sandboxed. The "model" is a stand-in that answers with the test's text (a hostile one, or a
plain one); the language server, daemon, sandbox and editor protocol are the real ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pytest_lsp import LanguageClient

from tests.hostile import SECRETS, trap
from tests.lsp_actions import (
    EditorState,
    open_document,
    progress_of,
    run_command,
    start_editor_client,
)
from tests.standin import StandIn, standin_daemon

# The real daemon and language server (the model's answers are a stand-in's): the real tier.
pytestmark = pytest.mark.real

SHOP = "def add(a, b):\n    return a + b\n"
PLAIN = "```python\ndef test_add():\n    assert add(1, 2) == 3\n```"


def _project(root: Path) -> str:
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname='shop'\n")
    (root / "shop.py").write_text(SHOP)
    (root / "tests" / "__init__.py").write_text("")
    return (root / "shop.py").as_uri()


@asynccontextmanager
async def shop_in_editor(
    standin: StandIn, tmp_path: Path, options: dict[str, object] | None = None
) -> AsyncIterator[tuple[LanguageClient, EditorState, dict[str, Any]]]:
    """An editor with tmp_path/shop/shop.py open, and the arguments that generate tests for `add`."""
    uri = _project(tmp_path / "shop")
    client, editor = await start_editor_client(standin.env, options)
    try:
        open_document(client, editor, uri, SHOP)
        yield client, editor, {"uri": uri, "position": {"line": 0, "character": 4}}
    finally:
        await client.shutdown_session()


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    with standin_daemon(tmp_path, {"match": "Write 2 short", "text": PLAIN}, extra_env=SECRETS) as daemon:
        yield daemon


async def test_hostile_tests_run_only_after_asking_and_achieve_nothing(standin: StandIn, tmp_path: Path) -> None:
    with trap(tmp_path) as attack:
        standin.answer({"match": "Write 2 short", "text": "```python\n" + attack.tests("pytest") + "```"})
        async with shop_in_editor(standin, tmp_path) as (client, editor, arguments):
            result = await run_command(client, "nearcode.generateTests", arguments)
        # Asked once, with the tests to read and the four choices, before anything ran.
        assert len(editor.asked) == 1, editor.asked
        _, question, seen_when_asked = editor.asked[0]
        assert "def test_1_write_home" in question.message and "sandboxed" in question.message
        assert [a.title for a in question.actions or []] == ["Run", "Always run in this workspace", "Insert without running", "Cancel"]
        assert any("run the generated tests?" in m for m in seen_when_asked)
        assert not any("running the generated tests" in m for m in seen_when_asked), "it ran before the answer"
        run = result["run"]
        assert run["consent"] == "run" and run["sandbox"] == "bubblewrap", run
        assert run["outcome"] in ("failed", "error"), run
        # None of it worked: no file in the home folder, no keys left behind, no listener reached,
        # nothing left running, and the gigabyte stopped.
        assert attack.traces() == [], run
        for value in SECRETS.values():
            assert value not in json.dumps(result), "a key came back in the result"
        assert run["seconds"] < 45, run


async def test_nothing_runs_unless_the_user_says_so(standin: StandIn, tmp_path: Path) -> None:
    async with shop_in_editor(standin, tmp_path) as (client, editor, arguments):
        editor.answer = "Insert without running"
        inserted = await run_command(client, "nearcode.generateTests", arguments)
        assert inserted["applied"] and inserted["run"]["outcome"] == "not run" and inserted["run"]["consent"] == "insert"
        assert "not run: you chose to insert them without running" in inserted["tests"]
        assert not any("running the generated tests" in (v.message or "") for v in progress_of(client)[-1])

        editor.answer = "Cancel"
        cancelled = await run_command(client, "nearcode.generateTests", arguments)
        assert cancelled["offered"] is False and cancelled["reason"].startswith("cancelled"), cancelled

        editor.answer = None  # the notification is dismissed: no answer, nothing runs, nothing is inserted
        dismissed = await run_command(client, "nearcode.generateTests", arguments)
        assert dismissed["run"]["consent"] == "no answer" and dismissed["run"]["outcome"] == "not run"
        assert dismissed["applied"] is False and dismissed["edit"] is not None
        assert len(editor.asked) == 3


async def test_always_run_is_kept_per_workspace_in_the_users_state(standin: StandIn, tmp_path: Path) -> None:
    async with shop_in_editor(standin, tmp_path) as (client, editor, arguments):
        editor.answer = "Always run in this workspace"
        first = await run_command(client, "nearcode.generateTests", arguments)
        assert first["run"]["consent"] == "always" and first["run"]["outcome"] == "passed", first["run"]
        second = await run_command(client, "nearcode.generateTests", arguments)
        assert second["run"]["consent"] == "always (workspace)" and second["run"]["outcome"] == "passed"
        assert len(editor.asked) == 1, "asked once, then remembered"
        state = json.loads((tmp_path / "state" / "nearcode" / "test-runs.json").read_text())
        assert list(state["always_run"]) == ["/tmp"]  # the client's workspace folder (root_uri)
        assert (tmp_path / "state" / "nearcode" / "test-runs.json").stat().st_mode & 0o777 == 0o600


async def test_never_run_setting(standin: StandIn, tmp_path: Path) -> None:
    async with shop_in_editor(standin, tmp_path, {"runGeneratedTests": "never"}) as (client, editor, arguments):
        result = await run_command(client, "nearcode.generateTests", arguments)
        assert not editor.asked and result["run"]["outcome"] == "not run" and result["applied"]
        assert 'not run: the setting runGeneratedTests is "never"' in result["tests"]
