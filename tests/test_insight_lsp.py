"""Insight end to end (real tier): a real language server on the real daemon and model, driven by
a real LSP client as an editor drives it; the figures come out of `nearcode stats`."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from lsprotocol import types

from tests.conftest import start_lsp
from tests.support import FIB, NEARCODE
from tests.test_lsp_completion import inline, open_doc


def stats(env: dict[str, str]) -> dict[str, object]:
    run = subprocess.run([*NEARCODE, "stats", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def change(uri: str, version: int, line: int, char: int, end_char: int, text: str) -> types.DidChangeTextDocumentParams:
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, char), types.Position(line, end_char)), text=text)],
    )


async def test_accepted_suggestion_is_counted_and_followed_then_shown_by_stats(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**daemon_env, "NEARCODE_INSIGHT_DIR": str(tmp_path), "NEARCODE_INSIGHT_CHECKPOINTS_S": "1,2,3"}
    client = await start_lsp(env)
    try:
        uri = "file:///tmp/nc-test/insight-fib.py"
        open_doc(client, uri, FIB)
        items = await inline(client, uri, 3, 8)
        assert items, "no suggestion for the loop body"
        item = items[0]
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        assert item.command is not None and item.command.arguments
        ident = item.command.arguments[0]
        # What VS Code does: report it shown, insert it on Tab, run its command.
        client.protocol.notify("textDocument/didShowCompletion", {"item": client.protocol._converter.unstructure(item)})
        client.text_document_did_change(change(uri, 2, 3, 8, 8, text))
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=item.command.command, arguments=[ident])
        )
        # Then the user edits the accepted line a little (it stays mostly there).
        client.text_document_did_change(change(uri, 3, 3, 8 + len(text), 8 + len(text), "  # swap"))
        await asyncio.sleep(4.0)  # past the last (shortened) checkpoint
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
        assert status["accepted"] == 1 and status["shown"] == 1
    finally:
        await client.shutdown_session()  # writes what is pending
    summary = stats(env)
    total = summary["total"]
    assert isinstance(total, dict)
    assert (total["shown"], total["accepted"], total["whole"]) == (1, 1, 1)
    assert total["accepted_chars"] == len(text) and total["rate"] == 1.0
    assert total["survival"] == [1.0, 1.0, 1.0]  # "  # swap" was typed after it, not into it
    assert total["latency_p50_ms"] is not None
    assert list(summary["by_language"]) == ["python"]  # type: ignore[arg-type]
    # The database holds no document text.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("insight.sqlite3*"))
    assert text.strip().encode() not in raw and b"fib" not in raw
