"""Which prompt family a model belongs to, from its GGUF metadata, its names and the user's override."""

from __future__ import annotations

import logging
from pathlib import Path

from nearcode.daemon.gguf import GgufError, GgufMetadata, read_gguf_metadata
from nearcode.daemon.prompting.templates import FamilyChoice, choose_family

log = logging.getLogger("nearcode.daemon")


def read_metadata(model_path: Path | None) -> GgufMetadata | None:
    if model_path is None or model_path.suffix.lower() != ".gguf" or not model_path.is_file():
        return None
    try:
        return read_gguf_metadata(model_path)
    except (OSError, GgufError) as exc:
        log.warning("cannot read the GGUF metadata of %s: %s", model_path, exc)
        return None


def family_for_model(
    model_path: Path | None, other_names: list[str], override: str | None, metadata: GgufMetadata | None = None
) -> FamilyChoice:
    """Override first, then the GGUF vocabulary's special tokens, then general.name/basename, the
    file name and the engine's model id."""
    meta = metadata or read_metadata(model_path)
    names = [str(meta.values.get("general.basename", "")), meta.name] if meta else []
    names += [model_path.name] if model_path else []
    names += other_names
    return choose_family(names, override, meta.tokens if meta else None)
