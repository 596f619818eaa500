"""Streamed docstrings follow the document: the user types while a docstring streams in (as they
do while waiting), and however the generation ends, the user's lines are never written over.

The language server, daemon and editor protocol are real; the "model" is a stand-in that streams
a chosen docstring slowly (tests/standin_engine.py), so the typing lands mid-stream every time. The
editor (tests/lsp_actions.py) behaves like VS Code: it refuses an edit made for an older version of
the document, and reports its changes incrementally.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_lsp import LanguageClient

from nearcode.lsp.code_actions.docstring import parse_doc
from tests.lsp_actions import (
    EditorState,
    open_document,
    run_command,
    start_editor_client,
    type_text,
)
from tests.standin import StandIn, standin_daemon

# The real daemon and language server (the model's answers are a stand-in's): the real tier.
pytestmark = pytest.mark.real

SOURCE = """import math


def circle_area(radius, scale=1.0):
    return math.pi * radius ** 2 * scale


def other():
    return 1
"""
DOCSTRING = '''"""Compute the area of a circle.

Args:
    radius: The radius of the circle.
    scale: A factor applied to the area.

Returns:
    The scaled area of the circle.
"""'''
SLOW = {"match": "docstring", "text": DOCSTRING, "chunk_chars": 3, "delay_s": 0.06}


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    with standin_daemon(tmp_path, SLOW) as daemon:
        yield daemon


@dataclass
class Streaming:
    client: LanguageClient
    editor: EditorState
    uri: str
    task: asyncio.Future[Any]  # the generateDocstring command

    def type(self, line: int, character: int, text: str) -> None:
        type_text(self.client, self.editor, self.uri, line, character, text)

    @property
    def text(self) -> str:
        return self.editor.texts[self.uri]

    async def result(self) -> Any:
        return await asyncio.wait_for(self.task, 60)


@asynccontextmanager
async def docstring_streaming(standin: StandIn, tmp_path: Path) -> AsyncIterator[Streaming]:
    """geometry.py open in an editor, "Generate docstring" for circle_area running, and its first
    streamed edit in the document."""
    client, editor = await start_editor_client(standin.env)
    try:
        uri = (tmp_path / "geometry.py").as_uri()
        open_document(client, editor, uri, SOURCE)
        arguments = {"uri": uri, "position": {"line": 3, "character": 6}}
        task = asyncio.ensure_future(run_command(client, "nearcode.generateDocstring", arguments))
        for _ in range(600):
            if any(applied_uri == uri for _, applied_uri, _ in editor.applied):
                break
            if task.done():
                raise AssertionError(f"the command ended before streaming: {task.result()}")
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("no streamed edit within 12 s")
        yield Streaming(client, editor, uri, task)
    finally:
        await client.shutdown_session()


def _docstring_of(text: str, name: str) -> str | None:
    tree = ast.parse(text)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_docstring(function)


async def test_typing_above_the_function_while_its_docstring_streams(standin: StandIn, tmp_path: Path) -> None:
    async with docstring_streaming(standin, tmp_path) as streaming:
        streaming.type(0, 0, "# typed while the docstring streamed\n")
        await asyncio.sleep(0.4)
        streaming.type(1, 0, "SCALE = 2\n")
        await asyncio.sleep(0.3)
        streaming.type(streaming.text.count("\n"), 0, "\n\ndef below():\n    return 2\n")  # below the function too
        result = await streaming.result()
        final = streaming.text
        assert result["offered"] and result["applied"], result
        lines = final.split("\n")
        assert lines[:6] == ["# typed while the docstring streamed", "SCALE = 2", "import math", "", "",
                             "def circle_area(radius, scale=1.0):"], final  # fmt: skip
        doc = _docstring_of(final, "circle_area")
        assert doc is not None and doc.startswith("Compute the area of a circle."), final
        assert set(parse_doc(doc).params) == {"radius", "scale"}
        assert "    return math.pi * radius ** 2 * scale\n" in final
        assert final.endswith("def other():\n    return 1\n\n\ndef below():\n    return 2\n"), final
        assert final.count("def circle_area(radius, scale=1.0):") == 1
        assert result["line"] == 6 and result["streamedEdits"] >= 2


async def test_a_daemon_killed_mid_stream_leaves_the_file_as_the_user_left_it(standin: StandIn, tmp_path: Path) -> None:
    async with docstring_streaming(standin, tmp_path) as streaming:
        streaming.type(0, 0, "# the user's line\n")
        await asyncio.sleep(0.3)
        assert '    """Com' in streaming.text, "part of the docstring is in the file"
        standin.daemon.kill()  # SIGKILL: no goodbye on the stream
        result = await streaming.result()
        assert result["offered"] is False and "failed" in result["reason"], result
        assert result["restored"] is True, result
        assert streaming.text == "# the user's line\n" + SOURCE


async def test_a_daemon_error_mid_stream_restores_exactly_the_lines_it_touched(standin: StandIn, tmp_path: Path) -> None:
    standin.answer({**SLOW, "error_after": 90})
    async with docstring_streaming(standin, tmp_path) as streaming:
        streaming.type(streaming.text[: streaming.text.index("def other")].count("\n"), 0, "# typed below\n")
        result = await streaming.result()
        assert result["offered"] is False and "mid-stream" in result["reason"], result
        assert streaming.text == SOURCE.replace("def other():", "# typed below\ndef other():")


async def test_typing_into_the_streaming_docstring_stops_it_and_keeps_the_users_text(standin: StandIn, tmp_path: Path) -> None:
    async with docstring_streaming(standin, tmp_path) as streaming:
        line = streaming.text.split("\n")[4]
        assert line.startswith('    """Com'), streaming.text
        streaming.type(4, len(line), " Mine.")
        mine = streaming.text
        result = await streaming.result()
        assert result["offered"] is False and "you edited" in result["reason"], result
        assert result["restored"] is False
        assert streaming.text == mine, "nothing is written after the user typed into the docstring"
