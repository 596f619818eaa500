"""A pytest-lsp client that behaves like an editor for code actions: it advertises work-done
progress and workspace/applyEdit, applies the server's edits to its own copy of each document (and
sends didChange back, as editors do), and records every edit and progress report.

Like VS Code, it refuses a versioned edit made for an older version of the document (the user typed
since), and sends incremental didChange notifications. It answers window/showMessageRequest with
`EditorState.answer` (the title of the action the "user" picks, None to dismiss), and records the
question. `type_text` is the user typing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support import NEARCODE


@dataclass
class EditorState:
    texts: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    applied: list[tuple[float, str, str]] = field(default_factory=list)  # (time, uri, new text of the edit)
    refused: list[tuple[float, str, int | None]] = field(default_factory=list)  # (time, uri, stale version)
    created: list[str] = field(default_factory=list)
    answer: str | None = "Run"  # what the user picks when the server asks
    # (time, the question, every progress message received by then)
    asked: list[tuple[float, types.ShowMessageRequestParams, list[str]]] = field(default_factory=list)


def _offset(text: str, position: types.Position) -> int:
    lines = text.split("\n")
    if position.line >= len(lines):
        return len(text)
    return sum(len(line) + 1 for line in lines[: position.line]) + min(position.character, len(lines[position.line]))


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start, end = _offset(text, edit.range.start), _offset(text, edit.range.end)
        text = text[:start] + edit.new_text + text[end:]
    return text


def _structure_actions(converter: Any) -> None:
    """lsprotocol's client-side hook turns a CodeAction carrying a command into a broken Command."""
    union = types.Command | types.CodeAction

    def structure(obj: Any, _: Any) -> types.Command | types.CodeAction:
        if isinstance(obj, dict) and isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)  # type: ignore[no-any-return]
        return converter.structure(obj, types.CodeAction)  # type: ignore[no-any-return]

    from typing import Union

    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)  # noqa: UP007
    converter.register_structure_hook(union, structure)


async def start_editor_client(
    env: dict[str, str], options: dict[str, object] | None = None, config: ClientServerConfig | None = None
) -> tuple[LanguageClient, EditorState]:
    config = config or ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    state = EditorState()
    _structure_actions(client.protocol._converter)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        edit = params.edit
        for change in edit.document_changes or []:  # all or nothing, as VS Code
            if isinstance(change, types.TextDocumentEdit):
                uri, version = change.text_document.uri, change.text_document.version
                if version is not None and uri in state.versions and version != state.versions[uri]:
                    state.refused.append((time.monotonic(), uri, version))
                    return types.ApplyWorkspaceEditResult(applied=False, failure_reason="the document changed")
        for uri, edits in (edit.changes or {}).items():
            _apply(client, state, uri, list(edits))
        for change in edit.document_changes or []:
            if isinstance(change, types.CreateFile):
                state.created.append(change.uri)
                state.texts.setdefault(change.uri, "")
            elif isinstance(change, types.TextDocumentEdit):
                edits = [e for e in change.edits if isinstance(e, types.TextEdit)]
                _apply(client, state, change.text_document.uri, edits)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def ask(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        seen = [v.message or "" for values in client.progress_reports.values() for v in values]
        state.asked.append((time.monotonic(), params, seen))
        return types.MessageActionItem(title=state.answer) if state.answer is not None else None

    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(),
            inline_completion=types.InlineCompletionClientCapabilities(),
            code_action=types.CodeActionClientCapabilities(),
        ),
        workspace=types.WorkspaceClientCapabilities(apply_edit=True, workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True)),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )
    await client.initialize_session(
        types.InitializeParams(capabilities=capabilities, root_uri="file:///tmp", initialization_options=options or {})
    )
    return client, state


def _apply(client: LanguageClient, state: EditorState, uri: str, edits: list[types.TextEdit], by_server: bool = True) -> None:
    # Last edit first: each one's range is still right in the text the ones before it leave.
    ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True)
    state.texts[uri] = apply_text_edits(state.texts.get(uri, ""), edits)
    for edit in edits if by_server else ():
        state.applied.append((time.monotonic(), uri, edit.new_text))
    if uri in state.versions:  # open in the "editor": tell the server, as editors do
        state.versions[uri] += 1
        changes = [types.TextDocumentContentChangePartial(range=e.range, text=e.new_text) for e in ordered]
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=state.versions[uri]),
                content_changes=list(changes),
            )
        )


def type_text(client: LanguageClient, state: EditorState, uri: str, line: int, character: int, text: str) -> None:
    """The user types `text` at (line, character): the editor's copy changes, the server is told."""
    here = types.Position(line=line, character=character)
    _apply(client, state, uri, [types.TextEdit(range=types.Range(start=here, end=here), new_text=text)], by_server=False)


def open_document(client: LanguageClient, state: EditorState, uri: str, text: str, language: str = "python") -> None:
    state.texts[uri], state.versions[uri] = text, 1
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text))
    )


async def code_actions(client: LanguageClient, uri: str, line: int, character: int, end: tuple[int, int] | None = None) -> list[types.CodeAction]:
    start = types.Position(line=line, character=character)
    stop = types.Position(line=end[0], character=end[1]) if end else start
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=start, end=stop),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


async def run_command(client: LanguageClient, command: str, argument: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command, arguments=[argument]))


def progress_of(client: LanguageClient) -> list[list[Any]]:
    """Every work-done progress the server created: its begin/report/end values in order."""
    return [list(values) for values in client.progress_reports.values()]
