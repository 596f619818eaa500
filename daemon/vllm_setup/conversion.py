"""The installed GGUF, converted once into the bf16 safetensors folder vLLM loads.

`<cache>/models/<gguf stem>-bf16/` holds config.json, model.safetensors, the tokenizer files and
`nearcode-model.json`: the source GGUF (name, size, sha256), every file's size and sha256, the ids
of the prompt family's special tokens (vLLM's `stop_token_ids`) and the versions that converted it.
The folder is built under a hidden temporary name and renamed into place in one step, so a reader
sees no folder or a complete, hashed one; a second run finds it and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nearcode.daemon.vllm_setup.environment import VllmEnvironment, VllmSetupError
from nearcode.shared.paths import cache_dir

MANIFEST_NAME = "nearcode-model.json"
MANIFEST_FORMAT = 1
WORKER = Path(__file__).resolve().with_name("convert_worker.py")
_HASH_BLOCK = 8 << 20


@dataclass(frozen=True)
class ConvertedModel:
    folder: Path
    manifest: dict[str, Any]

    @property
    def token_ids(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.manifest.get("token_ids") or {}).items()}

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.manifest.get("files", {}).values())

    def describe(self) -> str:
        source = self.manifest.get("source", {})
        return (f"{self.folder} ({self.size / 1e9:.2f} GB bf16 safetensors, from {source.get('file', '?')} "
                f"sha256 {str(source.get('sha256', ''))[:12]}…)")


def converted_folder(gguf: Path, directory: Path | None = None) -> Path:
    return (directory or cache_dir() / "models") / f"{gguf.stem}-bf16"


def find_converted(gguf: Path, directory: Path | None = None) -> ConvertedModel | None:
    """The converted form of `gguf`, if it is complete and was made from a file of this size."""
    folder = converted_folder(gguf, directory)
    manifest = read_manifest(folder)
    if manifest is None or not gguf.is_file():
        return None
    if int(manifest.get("source", {}).get("size", -1)) != gguf.stat().st_size:
        return None  # made from another file of the same name
    return ConvertedModel(folder, manifest) if _files_present(folder, manifest) else None


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    return manifest


def _files_present(folder: Path, manifest: dict[str, Any]) -> bool:
    for name, entry in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != int(entry["size"]):
            return False
    return bool(manifest.get("files"))


def installed_conversions(directory: Path | None = None) -> list[ConvertedModel]:
    folder = directory or cache_dir() / "models"
    found = []
    for candidate in sorted(folder.glob("*-bf16")) if folder.is_dir() else []:
        manifest = read_manifest(candidate)
        if manifest is not None and _files_present(candidate, manifest):
            found.append(ConvertedModel(candidate, manifest))
    return found


def verify_converted(model: ConvertedModel) -> list[str]:
    """Files whose sha256 differs from the manifest (a full read: for `--verify` and doctor)."""
    return [name for name, entry in model.manifest["files"].items()
            if _sha256(model.folder / name) != entry["sha256"]]


def convert_gguf(
    gguf: Path, gguf_sha256: str, environment: VllmEnvironment, tokens: list[str], progress: bool = True,
    directory: Path | None = None,
) -> ConvertedModel:
    """Convert `gguf` (already verified to have `gguf_sha256`) unless its converted form exists."""
    existing = find_converted(gguf, directory)
    if existing is not None and existing.manifest["source"].get("sha256") == gguf_sha256:
        return existing
    target = converted_folder(gguf, directory)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    try:
        result = _run_worker(gguf, partial, environment, tokens, progress)
        files = {path.name: {"size": path.stat().st_size, "sha256": digest}
                 for path, digest in _hash_files(sorted(p for p in partial.iterdir() if p.is_file()), progress)}
        manifest = {
            "format": MANIFEST_FORMAT,
            "source": {"file": gguf.name, "size": gguf.stat().st_size, "sha256": gguf_sha256},
            "files": files,
            "dtype": "bfloat16",
            "architecture": result.get("architecture"),
            "tied_embeddings": result.get("tied_embeddings"),
            "token_ids": result.get("token_ids", {}),
            "converted_with": result.get("versions", {}),
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.monotonic() - started, 1),
        }
        (partial / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if target.exists():  # an incomplete or stale conversion: replaced, never loaded
            shutil.rmtree(target)
        os.replace(partial, target)  # atomic: readers see no folder or the complete one
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ConvertedModel(target, manifest)


def _run_worker(gguf: Path, out: Path, environment: VllmEnvironment, tokens: list[str],
                progress: bool) -> dict[str, Any]:
    argv = [str(environment.python), str(WORKER), "--gguf", str(gguf), "--out", str(out), "--tokens", json.dumps(tokens)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
    bar = _Bar(progress, total=5, desc=f"converting {gguf.name} to bf16", unit="step")
    stderr_tail: deque[str] = deque(maxlen=12)
    result: dict[str, Any] | None = None
    error = ""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None and process.stderr is not None
        stderr = process.stderr
        # stderr drained beside stdout (transformers' own bars and warnings): a full pipe would stall it.
        reader = threading.Thread(target=lambda: stderr_tail.extend(line.rstrip() for line in stderr), daemon=True)
        reader.start()
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "step" in event:
                bar.set(int(event["done"]), str(event["step"]))
            elif "result" in event:
                result = dict(event["result"])
            elif "error" in event:
                error = str(event["error"])
        process.wait()
        reader.join(5)
    bar.close()
    if process.returncode != 0 or result is None:
        detail = error or "\n".join(stderr_tail)
        raise VllmSetupError(f"converting {gguf.name} failed (exit {process.returncode}): {detail}")
    return result


def _hash_files(paths: list[Path], progress: bool) -> list[tuple[Path, str]]:
    bar = _Bar(progress, total=sum(p.stat().st_size for p in paths), desc="hashing the converted files", unit="B")
    hashed = []
    for path in paths:
        hashed.append((path, _sha256(path, bar.add)))
    bar.close()
    return hashed


def _sha256(path: Path, advance: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            if advance is not None:
                advance(len(block))
    return digest.hexdigest()


class _Bar:
    """A tqdm bar on stderr, or nothing."""

    def __init__(self, enabled: bool, **options: Any) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(file=sys.stderr, mininterval=0.5, unit_scale=options.get("unit") == "B", **options)

    def set(self, done: int, label: str) -> None:
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(label)

    def add(self, amount: int) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
