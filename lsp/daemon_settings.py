"""Whether the shared daemon runs what an editor's `engine` and `model` settings name.

The daemon is shared by every editor and keeps its engine and model until it restarts, so these
settings only choose those of a daemon the language server starts; an editor that finds one
running is told when it differs (lsp/server_state.py), rather than left believing it switched.
"""

from __future__ import annotations

from pathlib import Path

from nearcode.shared.protocol.settings import DEFAULT_MODEL_ALIAS


def daemon_settings_mismatch(model: str, engine: str, info: dict[str, object]) -> str | None:
    """What the running daemon (`info`: its `/api/model`) runs other than the `model` and `engine`
    settings name, and how to switch; None when it matches, or when that cannot be told."""
    differs = []
    running_engine = info.get("engine")
    if engine not in ("", "auto") and running_engine and engine != running_engine:
        differs.append(f"engine = {engine!r} (it runs {running_engine})")
    if _model_differs(model.strip(), info):
        differs.append(f"model = {model.strip()!r} (it serves {info.get('model')})")
    if not differs:
        return None
    return (f"nearcode: the running daemon is not what your settings name: {'; '.join(differs)}. The daemon is "
            "shared by every editor and keeps its engine and model until it restarts: run `nearcode stop`, then "
            "restart the language server (or reload the editor) to switch")


def _model_differs(wanted: str, info: dict[str, object]) -> bool:
    preset, path = info.get("preset"), info.get("model_path")
    if wanted in ("", DEFAULT_MODEL_ALIAS) or wanted == preset:
        return False
    if "/" in wanted or wanted.endswith(".gguf"):  # a file: compared with the file the daemon runs
        return bool(path) and Path(wanted).expanduser().resolve() != Path(str(path)).expanduser().resolve()
    # A preset name: vLLM's converted folder or a remote model does not say which preset it came from.
    return preset is not None or info.get("engine") == "llamacpp"
