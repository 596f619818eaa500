"""The workspace index inside the real daemon: over its HTTP API, and through a real language
server (pytest-lsp) that registers its folders, forwards its buffers and shows the scan's progress."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support import NEARCODE, daemon_http
from tests.workspace.conftest import WITHIN_S, write

APP = "from util import helper\n\ndef main():\n    return helper(1)\n"
UTIL = 'def helper(x: int, scale: float = 2.0) -> float:\n    """Scale x."""\n    return x * scale\n'


def _poll(http: httpx.Client, condition: Callable[[], bool], timeout_s: float = 30.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not true after {timeout_s} s"
        time.sleep(0.02)
    return time.monotonic() - started


def _lookup(http: httpx.Client, path: Path, name: str) -> list[dict[str, Any]]:
    answer = http.post("/api/workspace/lookup", json={"path": str(path), "name": name})
    answer.raise_for_status()
    return list(answer.json()["definitions"])


def _folder(http: httpx.Client, root: Path, client: str | None = None) -> dict[str, Any] | None:
    query = f"?client={client}" if client else ""
    folders = http.get(f"/api/workspace{query}").json()["folders"]
    return next((f for f in folders if f["root"] == str(root.resolve())), None)


def test_register_lookup_buffers_status_and_release(daemon_env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "app.py", APP)
    write(root, "util.py", UTIL)
    write(root, ".env", "TOKEN=abc\n")
    with daemon_http(daemon_env) as http:
        bad = http.post("/api/workspace", json={"client": "", "folders": "x"})
        assert bad.status_code == 422
        answer = http.post("/api/workspace", json={"client": "t-http", "pid": os.getpid(), "folders": [str(root)]}).json()
        assert answer["registered"] and answer["folders"][0]["root"] == str(root.resolve())
        _poll(http, lambda: (_folder(http, root, "t-http") or {}).get("state") == "ready")

        (helper,) = _lookup(http, root / "app.py", "helper")  # through app.py's import
        assert helper["path"] == "util.py" and helper["doc"] == "Scale x."
        assert helper["signature"] == "def helper(x: int, scale: float = 2.0) -> float:"

        write(root, "models.py", "class Invoice:\n    total: int = 0\n")  # saved in another file
        assert _poll(http, lambda: bool(_lookup(http, root, "Invoice"))) < WITHIN_S

        buffer = {"client": "t-http", "path": str(root / "app.py"), "text": "def unsaved_work(): ...\n", "version": 2}
        assert http.post("/api/buffer", json=buffer).json() == {"accepted": True, "registered": True, "reason": ""}
        assert _poll(http, lambda: bool(_lookup(http, root, "unsaved_work"))) < WITHIN_S
        assert http.post("/api/buffer", json={**buffer, "text": None}).json()["accepted"]
        assert _poll(http, lambda: not _lookup(http, root, "unsaved_work") and bool(_lookup(http, root, "main"))) < WITHIN_S

        denied = http.post("/api/buffer", json={**buffer, "path": str(root / ".env"), "text": "TOKEN=x\n"}).json()
        assert not denied["accepted"] and "built-in" in denied["reason"]
        unknown = http.post("/api/buffer", json={**buffer, "client": "never-registered"}).json()
        assert not unknown["registered"]

        status = http.get("/api/status").json()["workspace"]
        (mine,) = [f for f in status["folders"] if f["root"] == str(root.resolve())]
        assert mine["files"] == 3 and mine["state"] == "ready" and mine["clients"] == 1
        shown = subprocess.run([*NEARCODE, "status"], env=daemon_env, capture_output=True, text=True, timeout=60)
        assert f"index:    {root.resolve()}: ready, 3 files" in shown.stdout

        http.post("/api/workspace", json={"client": "t-http", "folders": []})  # released
        assert (_folder(http, root) or {}).get("clients") == 0
        _poll(http, lambda: _folder(http, root) is None, timeout_s=15)  # closed after the grace period


def _capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(),
            inline_completion=types.InlineCompletionClientCapabilities(),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(workspace_folders=True),
    )


@pytest_asyncio.fixture
async def workspace_lsp(daemon_env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[LanguageClient, Path]]:
    root = tmp_path / "lsp-proj"
    write(root, "app.py", APP)
    write(root, "util.py", UTIL)
    for i in range(400):  # enough that the first scan is still running when the server asks
        write(root, f"pkg/m{i:03}.py", f"def f{i}(a, b=1):\n    return a + b\n")
    config = ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=daemon_env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    await client.initialize_session(types.InitializeParams(
        capabilities=_capabilities(), root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="lsp-proj")],
    ))
    yield client, root
    if not client.stopped:
        await client.shutdown_session()


async def _until(condition: Callable[[], object], timeout_s: float = 30.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not true after {timeout_s} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _open(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))


async def test_language_server_registers_forwards_buffers_and_shows_progress(
    daemon_env: dict[str, str], workspace_lsp: tuple[LanguageClient, Path], tmp_path: Path
) -> None:
    client, root = workspace_lsp
    statuses: list[Any] = []
    client.feature("nearcode/status")(lambda params: statuses.append(params))
    # Progress of the first scan: begun, reported, ended with the count.
    await _until(lambda: any(r and getattr(r[-1], "kind", "") == "end" for r in client.progress_reports.values()))
    (reports,) = [r for r in client.progress_reports.values() if r and r[0].title == "nearcode: indexing"]
    assert reports[0].kind == "begin" and reports[-1].kind == "end" and "indexed 402 files" in reports[-1].message
    # nearcode/status carries the folder's index.
    await _until(lambda: any(_status_files(s, root) == 402 for s in statuses))

    with daemon_http(daemon_env) as http:
        uri = (root / "app.py").as_uri()
        _open(client, uri, "def typed_not_saved(q): ...\n")
        assert await _until(lambda: _lookup(http, root, "typed_not_saved")) < WITHIN_S
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="def renamed_in_editor(q): ...\n")],
        ))
        # Debounced by 300 ms in the language server, then parsed at once.
        assert await _until(lambda: _lookup(http, root, "renamed_in_editor")) < WITHIN_S + 0.3
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        assert await _until(lambda: _lookup(http, root, "main") and not _lookup(http, root, "renamed_in_editor")) < WITHIN_S

        second = tmp_path / "second"
        write(second, "lib.py", "def from_second_folder(): ...\n")
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri=second.as_uri(), name="second")], removed=[])))
        await _until(lambda: (_folder(http, second) or {}).get("state") == "ready")
        assert _lookup(http, second, "from_second_folder")

        await client.shutdown_session()  # shutdown releases both folders: no client left (or closed already)
        for folder in (root, second):
            assert (_folder(http, folder) or {"clients": 0})["clients"] == 0


def _status_files(params: Any, root: Path) -> int:
    folders = params.get("workspace", []) if isinstance(params, dict) else getattr(params, "workspace", [])
    for folder in folders:
        item = folder if isinstance(folder, dict) else folder._asdict()
        if item.get("root") == str(root.resolve()):
            return int(item.get("files", 0))
    return -1


async def test_a_buffer_that_is_not_unicode_leaves_the_file_on_disk_and_no_error(
    daemon_env: dict[str, str], workspace_lsp: tuple[LanguageClient, Path]
) -> None:
    """An open document with a lone UTF-16 surrogate (found by the fuzzer): its buffer cannot be
    parsed or sent, so the file on disk stands for it. Forwarding it once raised a validation error
    that reached the editor as an internal error."""
    client, root = workspace_lsp
    await _until(lambda: any(r and getattr(r[-1], "kind", "") == "end" for r in client.progress_reports.values()))
    with daemon_http(daemon_env) as http:
        uri = (root / "app.py").as_uri()
        _open(client, uri, "def typed_not_saved(q): ...\n# \ud800\n")
        _open(client, (root / "util.py").as_uri(), "def typed_in_a_good_buffer(q): ...\n")
        assert await _until(lambda: _lookup(http, root, "typed_in_a_good_buffer")) < WITHIN_S + 0.3
        assert _lookup(http, root, "main") and not _lookup(http, root, "typed_not_saved")
        # A folder added: the server registers again and sends every open buffer.
        second = root.parent / "second"
        write(second, "lib.py", "def from_second_folder(): ...\n")
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri=second.as_uri(), name="second")], removed=[])))
        await _until(lambda: (_folder(http, second) or {}).get("state") == "ready")
        await asyncio.sleep(0.5)
        assert _lookup(http, root, "typed_in_a_good_buffer") and not _lookup(http, root, "typed_not_saved")
    shown = [params.message for params in client.messages]
    assert not [message for message in shown if "internal error" in message], shown
