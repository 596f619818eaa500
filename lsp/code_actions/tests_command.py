"""`nearcode.generateTests`: generate tests for the symbol at a position, run them if the user
agrees, then offer them.

The tests stream into the progress report while they are generated (a preview: they are not in the
project yet). A model wrote them, so before Python tests run the user sees them and answers
(run_consent.py: Run, Always run in this workspace, Insert without running, Cancel). They then run
sandboxed in a temporary copy (test_runner.py, sandbox.py) and are inserted with a comment that
carries the outcome; a failing test is a finding, so it is offered too. Other languages, tests the
user chose not to run, and runs that could not happen are inserted with "not run: <why>".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

from nearcode.lsp.code_actions import unit_tests as ut
from nearcode.lsp.code_actions.docstring_command import (
    Target,
    _current_task_cancelling,
    find_target,
)
from nearcode.lsp.code_actions.run_consent import ask_to_run
from nearcode.lsp.code_actions.streaming import ActionContext, WorkProgress, generate
from nearcode.lsp.code_actions.test_runner import TestRun, run_python_tests
from nearcode.shared.deny import workspace_root
from nearcode.shared.isolation import isolation_tools
from nearcode.shared.protocol.editor import RunConsent, TestOutcome, TestRunResult, TestsResult
from nearcode.shared.text import utf16_length

TESTS_MAX_TOKENS = 200


async def run_generate_tests(context: ActionContext, args: dict[str, Any]) -> TestsResult:
    target = find_target(context, args)
    symbol = target.symbol
    path = Path(to_fs_path(target.uri) or "")
    if not path.is_absolute():
        raise JsonRpcInvalidParams("nearcode: tests can only be generated for files on disk (file:// uris)")
    workspace = workspace_root(path, context.workspace_folders)
    # The project is searched for from the file up to the workspace folder, never above it (nor to
    # the home folder): its copy is what the tests run in.
    plan = ut.plan_tests(path, target.source, symbol, root=ut.project_root(path, stop_at=workspace))
    progress = WorkProgress(context, f"nearcode: tests for {symbol.name}")
    written = await _write_tests(context, target, plan, progress)
    if written is None:
        return TestsResult(offered=False, reason="cancelled")
    tests = ut.clean_tests(written, symbol, plan)
    answer = TestsResult(
        offered=False, framework=plan.framework, test_file=from_fs_path(str(plan.test_path)) or "",
        create_file=not plan.exists,
    )
    if not ut.has_tests(tests, plan.framework):
        progress.end("not offered: the model wrote no test")
        return answer.model_copy(update={"reason": "the model wrote no test", "raw": written})
    existing = _document_text(context, plan.test_path)
    preview = args.get("apply", "apply") == "preview"
    decision = await _run_if_agreed(context, target, plan, _Draft(tests, existing, path, workspace), progress, preview)
    if decision.consent == "cancel":
        progress.end("cancelled")
        return answer.model_copy(update={"reason": "cancelled: you chose not to use the generated tests",
                                          "tests": tests, "run": TestRunResult(outcome="not run", consent="cancel")})
    addition = ut.compose(plan, tests, _banner(symbol.name, plan.framework, decision))
    applies = not preview and decision.consent != "no answer" and context.can_apply_edits
    return await _offer(context, answer, _workspace_edit(plan, existing, addition), addition, decision, progress, applies)


async def _write_tests(context: ActionContext, target: Target, plan: ut.TestPlan, progress: WorkProgress) -> str | None:
    """The model's tests, streamed into the progress report as a preview; None when the user
    cancelled them there."""

    async def on_text(text: str) -> None:
        last = next((line.strip() for line in reversed(text.split("\n")) if line.strip()), "")
        progress.report(f"{text.count(chr(10)) + 1} lines: {last[:80]}")

    messages = ut.tests_messages(target.symbol, plan)
    work = asyncio.create_task(generate(context, messages, f"{target.uri}#tests", TESTS_MAX_TOKENS, on_text))
    await progress.begin(f"writing {ut.FRAMEWORK_WORDS[plan.framework]}", on_cancel=work)
    try:
        return (await work).text
    except asyncio.CancelledError:
        progress.end("cancelled")
        if work.cancelled() and not _current_task_cancelling():
            return None
        raise


@dataclass(frozen=True)
class _Draft:
    """Generated tests, and where they would go."""

    tests: str
    existing: str  # the test file's text now ("" for a new file)
    source_path: Path
    workspace: Path


@dataclass(frozen=True)
class _RunDecision:
    consent: RunConsent | None  # None: the user was not asked
    not_run: str  # why the tests were not run ("" when they ran or were to)
    run: TestRun | None = None


async def _run_if_agreed(
    context: ActionContext, target: Target, plan: ut.TestPlan, draft: _Draft, progress: WorkProgress, preview: bool
) -> _RunDecision:
    """Python tests run sandboxed in a copy of the project, if the user agrees; others never."""
    if plan.framework not in ("pytest", "unittest"):
        return _RunDecision(None, "only Python tests are run")
    if preview:
        return _RunDecision("preview", "a preview is never run")
    tools = await asyncio.to_thread(isolation_tools)
    if not tools.available:
        return _RunDecision(None, f"no sandbox to run them in: {tools.problem}")
    progress.report("waiting for your answer: run the generated tests?")
    consent = await ask_to_run(context, target.symbol.name, draft.tests, draft.workspace, tools.kind)
    if consent not in ("run", "always", "always (workspace)"):
        return _RunDecision(consent, _NOT_RUN.get(consent, ""))
    progress.report("running the generated tests (sandboxed)")
    running = ut.compose(plan, draft.tests, "nearcode: generated tests (running)")
    files = {draft.source_path: target.source, plan.test_path: draft.existing + running}
    run = await run_python_tests(plan.root, plan.framework, files, plan.test_path, context.settings.privacy_mode)
    return _RunDecision(consent, "", run)


def _banner(name: str, framework: str, decision: _RunDecision) -> str:
    """The comment above the inserted tests: the run's outcome, or why there was none."""
    run = decision.run
    if run is None:
        return f"nearcode: generated tests for {name} ({framework}; not run: {decision.not_run})"
    if run.outcome == "not run":
        return f"nearcode: generated tests for {name}; {run.summary}"
    return f"nearcode: generated tests for {name}; ran before insertion: {run.outcome} ({run.summary})"


async def _offer(
    context: ActionContext, answer: TestsResult, edit: types.WorkspaceEdit, addition: str, decision: _RunDecision,
    progress: WorkProgress, applies: bool,
) -> TestsResult:
    """Apply the edit (or hand it back), say the outcome, and answer the command."""
    applied = False
    if applies:
        result = await context.ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=progress.title))
        applied = bool(result.applied)
    run = decision.run
    outcome: TestOutcome = run.outcome if run else "not run"
    summary = run.summary if run else f"not run: {decision.not_run}"
    progress.end(f"tests {outcome}")
    said = summary if outcome == "not run" else f"{outcome} ({summary})"
    kind = types.MessageType.Info if outcome in ("passed", "not run") else types.MessageType.Warning
    context.ls.window_show_message(types.ShowMessageParams(kind, f"{progress.title}: {said}"))
    return answer.model_copy(update={
        "offered": True,
        "applied": applied,
        "notified": True,  # the outcome went out as window/showMessage
        "tests": addition,
        "run": TestRunResult(
            outcome=outcome,
            summary=summary,
            output=run.output if run else "",
            seconds=round(run.elapsed_s, 2) if run else 0.0,
            consent=decision.consent,
            sandbox=run.sandbox if run else "",
        ),
        "edit": None if applied else context.ls.protocol._converter.unstructure(edit),
    })


_NOT_RUN: dict[str, str] = {
    "insert": "you chose to insert them without running",
    "no answer": "you were asked and did not answer",
    "never (setting)": 'the setting runGeneratedTests is "never"',
}


def _document_text(context: ActionContext, path: Path) -> str:
    """The test file's current text: the editor's copy if it is open, else the disk's."""
    uri = from_fs_path(str(path)) or ""
    if uri in context.ls.workspace.text_documents:
        return context.ls.workspace.get_text_document(uri).source
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else ""
    except OSError:
        return ""


def _workspace_edit(plan: ut.TestPlan, existing: str, addition: str) -> types.WorkspaceEdit:
    uri = from_fs_path(str(plan.test_path)) or ""
    lines = existing.split("\n")
    line = len(lines) - 1 if existing else 0
    character = utf16_length(lines[-1]) if existing else 0  # LSP columns count UTF-16 units
    if plan.exists and plan.framework in ("junit4", "junit5"):
        closing = max((i for i, text in enumerate(lines) if text.strip() == "}"), default=line)
        line, character = closing, 0  # inside the test class, before its closing brace
    elif existing and not existing.endswith("\n"):
        addition = "\n" + addition
    position = types.Position(line=line, character=character)
    text_edit = types.TextEdit(range=types.Range(start=position, end=position), new_text=addition)
    document = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None)
    changes: list[types.TextDocumentEdit | types.CreateFile | types.RenameFile | types.DeleteFile] = []
    if not plan.exists:
        changes.append(types.CreateFile(uri=uri, options=types.CreateFileOptions(ignore_if_exists=True)))
    changes.append(types.TextDocumentEdit(text_document=document, edits=[text_edit]))
    return types.WorkspaceEdit(document_changes=changes)
