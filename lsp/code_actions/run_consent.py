"""Asking before generated tests run: the tests are shown, and the user chooses.

`window/showMessageRequest` carries the tests themselves (what would run) and four answers: Run,
Always run in this workspace, Insert without running, Cancel. Nothing runs without an answer that
says so; no answer (dismissed, a client that cannot ask, ten minutes of silence) runs nothing.

"Always run in this workspace" is stored by the server in the user's own state
(`$XDG_STATE_HOME/nearcode/test-runs.json`, 0600), keyed by the workspace folder's real path; no
file in the workspace can grant it. The machine-scoped setting `runGeneratedTests: "never"` turns
running off entirely.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

from lsprotocol import types

from nearcode.lsp.code_actions.streaming import ActionContext
from nearcode.shared import paths
from nearcode.shared.protocol.editor import RunConsent

log = logging.getLogger("nearcode.lsp")

RUN = "Run"
ALWAYS = "Always run in this workspace"
INSERT = "Insert without running"
CANCEL = "Cancel"
ANSWERS: dict[str, RunConsent] = {RUN: "run", ALWAYS: "always", INSERT: "insert", CANCEL: "cancel"}
ASK_TIMEOUT_S = 600.0
PREVIEW_LINES = 60


def consent_file() -> Path:
    return paths.state_dir() / "test-runs.json"


def _key(workspace: Path) -> str:
    return os.path.realpath(workspace)


def always_allowed(workspace: Path) -> bool:
    try:
        data = json.loads(consent_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and _key(workspace) in data.get("always_run", {})


def allow_always(workspace: Path) -> None:
    path = consent_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("always_run"), dict):
        data = {"always_run": {}}
    data["always_run"][_key(workspace)] = {"since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(temporary, path)


def question(symbol: str, tests: str, sandbox: str) -> str:
    lines = tests.rstrip("\n").split("\n")
    shown = "\n".join(lines[:PREVIEW_LINES]) + (f"\n… ({len(lines) - PREVIEW_LINES} more lines)" if len(lines) > PREVIEW_LINES else "")
    return (
        f"nearcode: run the generated tests for {symbol}? A small model wrote them: read them first. They run "
        f"sandboxed ({sandbox}: no network, read-only home and system, a temporary copy of the project, "
        f"no keys in the environment, time and resource limits).\n\n{shown}"
    )


async def ask_to_run(context: ActionContext, symbol: str, tests: str, workspace: Path, sandbox: str) -> RunConsent:
    """The user's answer; "always (workspace)" without asking where they chose that before."""
    if context.settings.run_generated_tests == "never":
        return "never (setting)"
    if await asyncio.to_thread(always_allowed, workspace):
        return "always (workspace)"
    params = types.ShowMessageRequestParams(
        type=types.MessageType.Warning,
        message=question(symbol, tests, sandbox),
        actions=[types.MessageActionItem(title=title) for title in ANSWERS],
    )
    try:
        answer = await asyncio.wait_for(context.ls.window_show_message_request_async(params), ASK_TIMEOUT_S)
    except Exception:  # no handler, an error, or no answer in time: nothing runs
        log.info("no answer to the question whether to run the generated tests", exc_info=True)
        return "no answer"
    consent = ANSWERS.get(answer.title, "no answer") if answer is not None else "no answer"
    if consent == "always":
        await asyncio.to_thread(allow_always, workspace)
    return consent
