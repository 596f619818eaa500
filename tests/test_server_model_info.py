"""What the language server learns from the daemon's /api/model (lsp/server_state.py): the engine,
where prompts go, and whether the engine batches (then alternatives ride along in one request)."""

from __future__ import annotations

from typing import Any

from nearcode.lsp.model_setting import model_setting_mismatch
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


FAST_DAEMON = {"engine": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct-q4_k_m", "preset": "fast",
               "model_path": "/home/u/.cache/nearcode/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}


def test_a_model_setting_the_shared_daemon_does_not_serve_is_told() -> None:
    """The daemon keeps its model until it restarts: an editor asking for another one is told how
    to switch, rather than left believing it has (the setting only chooses a daemon's first model)."""
    problem = model_setting_mismatch("quality", FAST_DAEMON)
    assert problem is not None and "'quality'" in problem and "nearcode stop" in problem
    assert model_setting_mismatch("/models/other.gguf", FAST_DAEMON) is not None
    # A user's own file on the embedded engine is no preset: a preset setting differs from it.
    assert model_setting_mismatch("fast", {**FAST_DAEMON, "preset": None, "model_path": "/m/mine.gguf"}) is not None


def test_a_model_setting_the_daemon_serves_or_cannot_tell_is_not_a_problem() -> None:
    assert model_setting_mismatch("", FAST_DAEMON) is None
    assert model_setting_mismatch("default", FAST_DAEMON) is None  # whatever a daemon without --model runs
    assert model_setting_mismatch("fast", FAST_DAEMON) is None
    assert model_setting_mismatch(str(FAST_DAEMON["model_path"]), FAST_DAEMON) is None
    # vLLM serves a converted folder: which preset it came from is not told, so nothing is claimed.
    assert model_setting_mismatch("quality", {"engine": "vllm", "model": "qwen", "preset": None, "model_path": ""}) is None
    assert model_setting_mismatch("quality", {}) is None  # the daemon did not answer
