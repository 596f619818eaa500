"""What the language server learns from the daemon's /api/model (lsp/server_state.py): the engine,
where prompts go, and whether the engine batches (then alternatives ride along in one request)."""

from __future__ import annotations

from typing import Any

from nearcode.lsp.server_state import NearcodeServer

VLLM_MODEL = {"engine": "vllm", "model": "qwen", "batches": True,
              "engine_metadata": {"url": "http+unix:///run/nc/vllm/api.sock"}}


def _server(answer: Any) -> NearcodeServer:
    ls = NearcodeServer()

    async def get_json(path: str) -> dict[str, Any]:
        assert path == "/api/model"
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    ls.daemon.get_json = get_json  # type: ignore[method-assign]
    return ls


async def test_an_engine_that_batches_is_known_as_one() -> None:
    ls = _server(VLLM_MODEL)
    await ls.refresh_model_name()
    assert (ls.engine_name, ls.model_name, ls.engine_batches) == ("vllm", "qwen", True)
    assert ls.destination is not None and ls.destination.local


async def test_the_embedded_engine_does_not_batch() -> None:
    ls = _server({"engine": "llamacpp", "model": "qwen", "batches": False})
    await ls.refresh_model_name()
    assert ls.engine_name == "llamacpp" and ls.engine_batches is False


async def test_a_daemon_that_does_not_answer_changes_nothing() -> None:
    ls = _server(OSError("connection refused"))
    await ls.refresh_model_name()  # never fails over the status
    assert (ls.engine_name, ls.engine_batches, ls.destination) == ("", False, None)
