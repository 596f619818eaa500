"""Project context on the real parts: the real daemon and model, real language servers (pytest-lsp).

The daemon here budgets as on an idle machine (NEARCODE_ASSUME_READ_SPEED), so the prompt's shape
does not depend on how busy the test machine is. Assertions are on the prompt and on the engine's
own token counts, never on what the model writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import LanguageClient

from nearcode.shared.protocol.editor import FOCUS_NOTIFICATION, SHOW_CONTEXT_COMMAND, ContextResult
from tests.conftest import start_lsp
from tests.support import daemon_http, running_daemon
from tests.test_lsp_completion import inline, open_doc

# A module long enough that the near prefix does not reach its head: the head (imports and
# constants) then goes into the context block.
HEAD = '"""Order handling."""\n\nimport decimal\nfrom dataclasses import dataclass, field\n\nTAX_RATE = decimal.Decimal("0.2")\n\n'
BODY = "".join(
    f"def handler_{i}(request, response):\n    return dispatch(request, response, {i})\n\n" for i in range(60)
)
# A head longer than a slow engine's cold block has room for (~40 tokens of a ~100-token block).
LONG_HEAD = ('"""Order handling."""\n\nimport decimal\n\nTAX_RATE = decimal.Decimal("0.2")\n\n'
             + "".join(f"from shop.part_{i} import Part{i}, make_part_{i}\n" for i in range(16)) + "\n\n")
LINE = "    total = sum(item.price * item.quantity for item in basket)"

pytestmark = pytest.mark.real  # its own daemon with the real model


@pytest.fixture(scope="module")
def context_daemon() -> Iterator[dict[str, str]]:
    with running_daemon(NEARCODE_ASSUME_READ_SPEED="150") as env:
        yield env


@pytest_asyncio.fixture
async def workspace_lsp(context_daemon: dict[str, str]) -> AsyncIterator[LanguageClient]:
    client = await start_lsp(context_daemon)
    yield client
    await client.shutdown_session()


async def show_context(client: LanguageClient, uri: str) -> ContextResult:
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=SHOW_CONTEXT_COMMAND, arguments=[{"uri": uri}])
    )
    return ContextResult.model_validate(answer)


async def context_holding(client: LanguageClient, uri: str, text: str) -> ContextResult:
    """The last completion's context once its prompt holds `text`: a line start's answer comes to
    the editor with its first line, and the daemon records the prompt when the generation ends."""
    deadline = time.monotonic() + 60
    while True:
        shown = await show_context(client, uri)
        if text in (shown.prompt or "") or time.monotonic() > deadline:
            assert text in (shown.prompt or ""), (shown.prompt or "")[-600:]
            return shown
        await asyncio.sleep(0.1)


def engine_token_count(env: dict[str, str], prompt: str) -> int:
    """The engine's own count of a raw prompt (the daemon's OpenAI endpoint reports its usage)."""
    with daemon_http(env) as http:
        answer = http.post("/v1/completions", json={"prompt": prompt, "max_tokens": 1}, timeout=120)
        answer.raise_for_status()
        return int(answer.json()["usage"]["prompt_tokens"])


def change(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    here = types.Position(line, character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(here, here), text=text)],
    ))


async def test_the_shown_context_is_the_prompt_the_engine_received(
    workspace_lsp: LanguageClient, context_daemon: dict[str, str], tmp_path: Path
) -> None:
    uri = (tmp_path / "orders.py").as_uri()
    source = HEAD + BODY + "def checkout(basket):\n" + LINE[:20] + "\n"
    open_doc(workspace_lsp, uri, source)
    await inline(workspace_lsp, uri, source.count("\n") - 1, 20)
    shown = await show_context(workspace_lsp, uri)
    assert shown.available and shown.context_mode == "workspace" and shown.prompt
    assert shown.prompt_tokens == engine_token_count(context_daemon, shown.prompt)
    kinds = [p.kind for p in shown.parts if p.status != "dropped"]
    assert kinds == ["file", "prefix", "suffix"], shown.text
    view = shown.parts[0]
    assert "TAX_RATE" in shown.prompt.split("<|fim_prefix|>")[0] and view.reason.startswith("this file's imports")
    assert shown.budget is not None and sum(shown.budget.used.values()) <= shown.budget.total_tokens
    assert "orders.py" in shown.text and "tokens" in shown.text


async def test_a_half_typed_word_is_left_out_of_the_prompt_and_the_answer_starts_after_it(
    workspace_lsp: LanguageClient, context_daemon: dict[str, str], tmp_path: Path
) -> None:
    """Token healing on the real engine: the prompt stops before the prefix's last token (as the
    model's tokenizer splits it), llama.cpp is made to start its answer with that text, and the
    editor gets only what follows the cursor."""
    uri = (tmp_path / "fib_healing.py").as_uri()
    typed = "    ret"
    source = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n" + typed + "\n"
    open_doc(workspace_lsp, uri, source)
    items = await inline(workspace_lsp, uri, 4, len(typed))
    shown = await show_context(workspace_lsp, uri)
    assert shown.prompt is not None and "token healing" in shown.text, shown.text
    last_line = shown.prompt.split("<|fim_prefix|>")[-1].split("<|fim_suffix|>")[0].rpartition("\n")[2]
    assert typed.startswith(last_line) and len(last_line) < len(typed), last_line  # cut in the typed word
    assert shown.prompt_tokens == engine_token_count(context_daemon, shown.prompt)  # what the engine read
    # The forced start is not handed back: the editor's text after the cursor, not "ret" again.
    assert items and items[0].insert_text.startswith("urn"), items


async def test_file_mode_sends_no_context(context_daemon: dict[str, str], tmp_path: Path) -> None:
    client = await start_lsp(context_daemon, options={"context": "file"})
    try:
        uri = (tmp_path / "orders_file_mode.py").as_uri()
        source = HEAD + BODY + "def checkout(basket):\n" + LINE[:20] + "\n"
        open_doc(client, uri, source)
        await inline(client, uri, source.count("\n") - 1, 20)
        shown = await show_context(client, uri)
        assert shown.available and shown.context_mode == "file"
        assert shown.prompt is not None and shown.prompt.startswith("<|fim_prefix|>")
        assert "<|file_sep|>" not in shown.prompt and "TAX_RATE" not in shown.prompt
        assert [p.kind for p in shown.parts] == ["prefix", "suffix"]
    finally:
        await client.shutdown_session()


async def test_typing_along_a_line_keeps_the_block_in_the_engine_cache(
    workspace_lsp: LanguageClient, tmp_path: Path
) -> None:
    uri = (tmp_path / "typing.py").as_uri()
    source = HEAD + BODY + "def checkout(basket):\n\n"
    open_doc(workspace_lsp, uri, source)
    line = source.count("\n") - 1
    # Names no model would guess, so each request reaches the daemon rather than the editor's
    # typing cache (a line the model predicts whole is answered from there after the first).
    typed = "    total = sum(qz.wv_x * qz.kx_q for qz in basket_zr)"
    blocks, reads, prompts = set(), [], []
    for n in range(len(typed)):
        change(workspace_lsp, uri, n + 2, line, n, typed[n])
        if n < 16 or n % 4:
            continue  # a request every few keystrokes, as a fast typist's pauses give
        await inline(workspace_lsp, uri, line, n + 1)
        shown = await show_context(workspace_lsp, uri)
        assert shown.prompt is not None
        blocks.add(shown.prompt.split("<|fim_prefix|>")[0])
        if not prompts or prompts[-1] != shown.prompt:  # else the editor's typing cache answered
            prompts.append(shown.prompt)
            reads.append(shown.prompt_tokens - shown.cached_tokens)
    assert len(blocks) == 1 and "TAX_RATE" in blocks.pop(), "the context block changed while typing along one line"
    # After the first request the engine reads only the typed end and the suffix.
    assert len(reads) > 2 and all(r <= 64 for r in reads[1:]), reads


async def test_once_the_block_is_cached_a_request_reads_a_short_suffix(
    workspace_lsp: LanguageClient, tmp_path: Path
) -> None:
    """The suffix follows the cursor in the prompt, so every keystroke's request reads it again:
    typing on (the block and most of the near prefix in the engine's cache), the suffix is cut to a
    share of the warm read (fim.TYPING_SUFFIX_SHARE, ~36 tokens here); the first, cold request holds
    the suffix's share of the whole budget (~89)."""
    uri = (tmp_path / "suffix.py").as_uri()
    after = "".join(f"\n\ndef refund_{i}(basket):\n    return basket.qz_{i} * TAX_RATE\n" for i in range(30))
    source = HEAD + BODY + "def checkout(basket):\n    " + after
    open_doc(workspace_lsp, uri, source)
    line = (HEAD + BODY).count("\n") + 1
    await inline(workspace_lsp, uri, line, 4)
    cold = await context_holding(workspace_lsp, uri, "def checkout(basket):\n    <|fim_suffix|>")
    change(workspace_lsp, uri, 2, line, 4, "qz_total = basket.wv_x\n    ")  # a line typed, then Enter
    await inline(workspace_lsp, uri, line + 1, 4)
    warm = await context_holding(workspace_lsp, uri, "qz_total = basket.wv_x\n    <|fim_suffix|>")

    def suffix(shown: ContextResult) -> str:
        assert shown.prompt is not None
        return shown.prompt.split("<|fim_suffix|>")[1].split("<|fim_middle|>")[0]

    assert warm.cached_tokens > warm.prompt_tokens // 2, "the block was not in the cache"
    assert after.startswith(suffix(cold)) and after.startswith(suffix(warm))
    assert 0 < 2 * len(suffix(warm)) < len(suffix(cold)), (suffix(cold), suffix(warm))


async def test_a_prefill_on_open_leaves_the_first_request_little_to_read(
    workspace_lsp: LanguageClient, context_daemon: dict[str, str], tmp_path: Path
) -> None:
    await _open_wait_and_complete(workspace_lsp, context_daemon, tmp_path)


async def test_on_a_slow_engine_the_read_ahead_still_holds_the_files_head(tmp_path: Path) -> None:
    """At 40 tokens/s (the 1.5B on two slow cores) a cold request's block has no room for the
    file's head, and nothing was read ahead on open: the read-ahead now reads a larger block, and
    the first completion keeps it."""
    with running_daemon(NEARCODE_ASSUME_READ_SPEED="40") as env:
        client = await start_lsp(env)
        try:
            await _open_wait_and_complete(client, env, tmp_path, head=LONG_HEAD)
        finally:
            await client.shutdown_session()


async def _open_wait_and_complete(
    workspace_lsp: LanguageClient, context_daemon: dict[str, str], tmp_path: Path, head: str = HEAD
) -> None:
    uri = (tmp_path / "opened.py").as_uri()
    source = head + BODY + "def checkout(basket):\n" + LINE[:20] + "\n" + BODY.replace("handler_", "later_")
    with daemon_http(context_daemon) as http:
        # This document's read-ahead, not an earlier test's on the same daemon: a count already at
        # 1 let the completion come before it (0 tokens cached, once in a full run).
        done_before = http.get("/api/status").json().get("prefills_done", 0)
        open_doc(workspace_lsp, uri, source)  # the server asks the daemon to read ahead at once
        give_up = 300
        while http.get("/api/status").json().get("prefills_done", 0) <= done_before and give_up:
            give_up -= 1
            await asyncio.sleep(0.5)
    line = head.count("\n") + BODY.count("\n") + 1
    await inline(workspace_lsp, uri, line, 20)
    shown = await show_context(workspace_lsp, uri)
    assert shown.prompt is not None and "TAX_RATE" in shown.prompt.split("<|fim_prefix|>")[0], shown.text
    block_tokens = next(p.tokens for p in shown.parts if p.kind == "file")
    assert shown.cached_tokens >= block_tokens, shown.text
    # Warm: only the near window was read, cut to what reads in about a second.
    assert shown.prompt_tokens - shown.cached_tokens <= 160, shown.text


def test_the_daemon_refuses_a_malformed_prefill(context_daemon: dict[str, str]) -> None:
    with daemon_http(context_daemon) as http:
        assert http.post("/api/prefill", json={"client": "x"}).status_code == 422
        answer = http.post("/api/context", json={"client": "x", "document": "file:///never.py"}).json()
        assert answer["available"] is False and answer["reason"]
    with daemon_http(context_daemon, token="wrong") as http:
        assert http.post("/api/prefill", json={"document": "d", "head": ""}).status_code == 401


async def test_focus_with_the_cursor_reads_the_long_prompt_ahead(
    workspace_lsp: LanguageClient, context_daemon: dict[str, str], tmp_path: Path
) -> None:
    """An editor that says where the cursor is (VS Code's active editor, Neovim's BufEnter) gets
    the whole prompt up to the cursor read ahead: the first completion there reads only its end."""
    uri = (tmp_path / "focused.py").as_uri()
    source = HEAD + BODY + "def checkout(basket):\n" + LINE[:20] + "\n" + BODY.replace("handler_", "later_")
    line = HEAD.count("\n") + BODY.count("\n") + 1
    with daemon_http(context_daemon) as http:
        before = http.get("/api/status").json().get("prefills_done", 0)
        open_doc(workspace_lsp, uri, source)
        workspace_lsp.protocol.notify(FOCUS_NOTIFICATION, {"textDocument": {"uri": uri},
                                                           "position": {"line": line, "character": 20}})
        for _ in range(600):  # the open's read-ahead is replaced by the focus's, which reads to its end
            if http.get("/api/status").json().get("prefills_done", 0) > before:
                break
            await asyncio.sleep(0.5)
    await inline(workspace_lsp, uri, line, 20)
    shown = await show_context(workspace_lsp, uri)
    assert shown.prompt is not None and shown.prompt_tokens > 400, shown.text
    assert shown.prompt_tokens - shown.cached_tokens <= 48, shown.text


PRICING = ('def discounted_total(basket: list[float], percent_off: float = 10.0) -> float:\n'
           '    """The basket\'s total after the customer\'s discount."""\n'
           '    return sum(basket) * (1 - percent_off / 100)\n')
# The same name where the index must never look: a denied file, an ignored one, a build folder.
BAIT = 'def discounted_total(legacy_rows, api_key="sk-live-0123"):\n    return 0\n'


async def test_a_saved_definition_reaches_the_next_prompt_and_leaves_with_its_file(
    context_daemon: dict[str, str], tmp_path: Path
) -> None:
    """Issue 9, end to end: files saved and deleted on disk (real watchdog events), the daemon's
    index (real tree-sitter), the next completion's prompt as the engine received it."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / ".gitignore").write_text("generated/\n")
    for bait in ("secrets.py", "credentials.py", "generated/pricing.py", "build/pricing.py"):
        (root / bait).parent.mkdir(parents=True, exist_ok=True)
        (root / bait).write_text(BAIT)
    source = "from pricing import discounted_total\n\n\ndef checkout(basket, customer):\n    total = discounted_total(basket\n"
    (root / "checkout.py").write_text(source)
    client = await start_lsp(context_daemon, workspace=root)
    try:
        uri = (root / "checkout.py").as_uri()
        open_doc(client, uri, source)
        line = "    total = discounted_total(basket"
        version = 1
        prompts: list[str] = []

        async def next_prompt(text: str) -> str:
            """Type `text` at the end of the call, ask for a completion there, return its prompt
            (text no suggestion begins with, so the answer cannot come from the typing cache)."""
            nonlocal line, version
            version += 1
            change(client, uri, version, 4, len(line), text)
            line += text
            await inline(client, uri, 4, len(line))
            shown = await show_context(client, uri)
            # The prompt of this request (the line as typed now, less the last token token healing
            # leaves to the answer), not an answer from the typing cache.
            assert shown.prompt is not None and shown.prompt not in prompts, shown.text
            last_line = shown.prompt.split("<|fim_suffix|>")[0].rpartition("\n")[2]
            assert line.startswith(last_line) and len(line) - len(last_line) <= len(text), shown.text
            prompts.append(shown.prompt)
            return shown.prompt

        before = await next_prompt(",")
        assert "legacy_rows" not in before and "sk-live" not in before, "a denied, ignored or build file was read"
        assert "percent_off" not in before  # pricing.py does not exist yet

        (root / "pricing.py").write_text(PRICING)  # saved by another editor, or by git
        await asyncio.sleep(1.0)
        saved = await next_prompt(" xq7")
        assert "def discounted_total(basket: list[float], percent_off: float = 10.0) -> float:" in saved, saved
        assert "pricing.py" in saved.split("<|fim_prefix|>")[0]
        assert "legacy_rows" not in saved

        # Changed in its file while the user keeps typing at the same place: the kept block follows.
        (root / "pricing.py").write_text(PRICING.replace("percent_off: float = 10.0", "percent_off: float = 5.0"))
        await asyncio.sleep(1.0)
        changed = await next_prompt(", mv2")
        assert "percent_off: float = 5.0" in changed and "percent_off: float = 10.0" not in changed, changed

        started = time.monotonic()
        (root / "pricing.py").unlink()
        await asyncio.sleep(1.0)
        gone = await next_prompt(", jr9")
        assert "percent_off" not in gone, f"a deleted file's definition {time.monotonic() - started:.1f} s later"
        assert "legacy_rows" not in gone
    finally:
        await client.shutdown_session()


async def test_a_fresh_daemon_learns_its_reading_speed_from_the_read_ahead_on_open(tmp_path: Path) -> None:
    """Before, the first completion of a fresh daemon was budgeted at the configured maximum (a slow
    model then missed its deadline): the read-ahead of the first opened file now measures the speed."""
    with running_daemon() as env:
        client = await start_lsp(env)
        try:
            with daemon_http(env) as http:
                assert http.get("/api/model").json()["prompt_tokens_per_s"] is None
            uri = (tmp_path / "opened.py").as_uri()
            # A head (imports, constants) long enough to be a sample of reading (>= 128 tokens).
            head = HEAD + "".join(f'LIMIT_{i} = decimal.Decimal("{i}.5")  # orders above this wait\n' for i in range(12))
            open_doc(client, uri, head + BODY + "def checkout(basket):\n" + LINE[:20] + "\n" + BODY)
            with daemon_http(env) as http:
                for _ in range(300):
                    if http.get("/api/status").json().get("prefills_done", 0) >= 1:
                        break
                    await asyncio.sleep(0.5)
                speed = http.get("/api/model").json()["prompt_tokens_per_s"]
                status = http.get("/api/status").json()
            assert speed is not None and speed > 0, {k: v for k, v in status.items() if "prefill" in k or "request" in k}
        finally:
            await client.shutdown_session()
