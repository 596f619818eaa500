"""What the language server learns from the daemon's /api/model (lsp/server_state.py): the engine,
where prompts go, and whether the engine batches (then alternatives ride along in one request)."""

from __future__ import annotations

from typing import Any

from nearcode.lsp.daemon_settings import daemon_settings_mismatch
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


def test_a_model_or_engine_the_shared_daemon_does_not_run_is_told() -> None:
    """The daemon keeps its engine and model until it restarts: an editor asking for others is told
    how to switch, rather than left believing it has (the settings only choose a daemon's first)."""
    problem = daemon_settings_mismatch("quality", "auto", FAST_DAEMON)
    assert problem is not None and "model = 'quality'" in problem and "nearcode stop" in problem
    assert daemon_settings_mismatch("/models/other.gguf", "auto", FAST_DAEMON) is not None
    # A user's own file on the embedded engine is no preset: a preset setting differs from it.
    assert daemon_settings_mismatch("fast", "auto", {**FAST_DAEMON, "preset": None, "model_path": "/m/mine.gguf"})
    engine = daemon_settings_mismatch("", "vllm", FAST_DAEMON)
    assert engine is not None and "engine = 'vllm' (it runs llamacpp)" in engine and "model =" not in engine


def test_settings_the_daemon_matches_or_cannot_tell_are_not_a_problem() -> None:
    assert daemon_settings_mismatch("", "auto", FAST_DAEMON) is None
    assert daemon_settings_mismatch("default", "llamacpp", FAST_DAEMON) is None  # "default": whatever runs
    assert daemon_settings_mismatch("fast", "auto", FAST_DAEMON) is None
    assert daemon_settings_mismatch(str(FAST_DAEMON["model_path"]), "auto", FAST_DAEMON) is None
    # vLLM serves a converted folder: which preset it came from is not told, so nothing is claimed.
    vllm = {"engine": "vllm", "model": "qwen", "preset": None, "model_path": ""}
    assert daemon_settings_mismatch("quality", "vllm", vllm) is None
    assert daemon_settings_mismatch("quality", "vllm", {}) is None  # the daemon did not answer
