"""`textDocument/codeAction` for nearcode: what is offered where.

Each action carries a command (the work runs when the user picks it, streamed, not when the
editor asks which actions exist). Cloud actions are listed only in cloud-allowed mode with an
endpoint set, and never for a denied file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from nearcode.lsp.code_actions.streaming import ActionContext
from nearcode.lsp.code_actions.symbols import supported, symbol_at
from nearcode.lsp.code_actions.unit_tests import project_root
from nearcode.shared import privacy
from nearcode.shared.deny import DenyList
from nearcode.shared.languages import language_for_path
from nearcode.shared.protocol.editor import (
    ASK_CLOUD_COMMAND,
    DOCSTRING_COMMAND,
    PREVIEW_CLOUD_COMMAND,
    TESTS_COMMAND,
)

DOCSTRING_KIND = "refactor.rewrite.nearcode.docstring"
TESTS_KIND = "refactor.nearcode.tests"
CLOUD_KIND = "refactor.rewrite.nearcode.cloud"
CODE_ACTION_KINDS = [DOCSTRING_KIND, TESTS_KIND, CLOUD_KIND]
CLOUD_TASKS = {"explain": "explain", "improve": "improve", "complete": "complete", "tests": "write tests for"}


def _wanted(kind: str, only: list[str] | None) -> bool:
    """LSP: `only` lists kinds or their parents (`refactor` covers `refactor.rewrite.nearcode…`)."""
    return not only or any(kind == want or kind.startswith(want + ".") for want in only)


def _action(title: str, kind: str, command: str, argument: dict[str, Any]) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=kind,
        command=types.Command(title=title, command=command, arguments=[argument]),
    )


def code_actions(context: ActionContext, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    if uri not in context.ls.workspace.text_documents or not context.settings.enable:
        return []
    document = context.ls.workspace.get_text_document(uri)
    path = to_fs_path(uri) or uri
    language = document.language_id or language_for_path(path)
    only = [getattr(kind, "value", kind) for kind in params.context.only] if params.context.only else None
    position = params.range.start
    actions: list[types.CodeAction] = []
    symbol = symbol_at(document.source, language, position.line, position.character) if supported(language) else None
    here = {"uri": uri, "position": {"line": position.line, "character": position.character}}
    if symbol is not None and _wanted(DOCSTRING_KIND, only):
        if symbol.existing_doc is None:
            actions.append(_action(f"nearcode: Generate docstring for {symbol.name}", DOCSTRING_KIND, DOCSTRING_COMMAND, here))
        else:
            actions.append(_action(
                f"nearcode: Regenerate docstring for {symbol.name} (replaces the existing one)",
                DOCSTRING_KIND, DOCSTRING_COMMAND, {**here, "replace": True},
            ))  # fmt: skip
    if symbol is not None and _wanted(TESTS_KIND, only) and Path(path).is_absolute():
        actions.append(_action(f"nearcode: Generate unit tests for {symbol.name}", TESTS_KIND, TESTS_COMMAND, here))
    if _cloud_offered(context, path) and _wanted(CLOUD_KIND, only):
        selection = {"uri": uri, "range": {
            "start": {"line": params.range.start.line, "character": params.range.start.character},
            "end": {"line": params.range.end.line, "character": params.range.end.character},
        }}  # fmt: skip
        for task, verb in CLOUD_TASKS.items():
            actions.append(_action(f"nearcode: Ask the cloud model to {verb} this", CLOUD_KIND, ASK_CLOUD_COMMAND, {**selection, "task": task}))
        actions.append(_action("nearcode: Preview what would be sent to the cloud model", CLOUD_KIND, PREVIEW_CLOUD_COMMAND, {**selection, "task": "explain"}))
    return actions


def _cloud_offered(context: ActionContext, path: str) -> bool:
    settings = context.settings
    if settings.privacy_mode != privacy.CLOUD_ALLOWED or not settings.cloud_endpoint:
        return False  # local-only: no cloud action is even listed
    file = Path(path)
    if not file.is_absolute():
        return True
    root = project_root(file)
    return DenyList.load(root).reason(str(file.relative_to(root))) is None


def first_argument(args: tuple[Any, ...]) -> dict[str, Any]:
    """Commands take one object argument; pygls passes it as a dict (or a namedtuple-like object)."""
    if not args:
        return {}
    value = args[0]
    if isinstance(value, dict):
        return value
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    return {}
