"""Whether the shared daemon serves the model an editor's `model` setting names.

The daemon is shared by every editor and keeps its model until it restarts, so the setting only
chooses the model of a daemon the language server starts; an editor that finds one running is told
when it serves another model (lsp/server_state.py), rather than left believing it switched.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_ALIAS = "default"  # names whatever a daemon without --model runs (daemon/model_store.py)


def model_setting_mismatch(wanted: str, info: dict[str, object]) -> str | None:
    """Why the running daemon (`info`: its `/api/model`) does not serve the model `wanted` names,
    and how to switch; None when it does, or when that cannot be told."""
    wanted = wanted.strip()
    preset, path = info.get("preset"), info.get("model_path")
    if wanted in ("", DEFAULT_MODEL_ALIAS) or wanted == preset:
        return None
    if "/" in wanted or wanted.endswith(".gguf"):  # a file: compared with the file the daemon runs
        if not path or Path(wanted).expanduser().resolve() == Path(str(path)).expanduser().resolve():
            return None
    elif preset is None and info.get("engine") != "llamacpp":
        return None  # vLLM's converted folder or a remote model: which preset it came from is not told
    return (f"nearcode: the setting model = {wanted!r} is not what the running daemon serves ({info.get('model')}); "
            "the daemon is shared by every editor and keeps its model until it restarts: run `nearcode stop`, "
            "then restart the language server (or reload the editor) to switch")
