"""The GGUF metadata reader, on the real model file and on small files written here byte by byte."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from nearcode.daemon.gguf import GgufError, read_gguf_metadata
from nearcode.daemon.model_family import family_for_model

STRING, ARRAY, UINT32, INT32 = 8, 9, 4, 5


def real_model() -> Path:
    out = subprocess.run([sys.executable, "-m", "nearcode", "model", "path"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, name: str, tokens: list[str], token_types: list[int]) -> None:
    """A GGUF v3 file with a few metadata keys, a token list and no tensors."""
    kvs = [
        _str("general.architecture") + struct.pack("<I", STRING) + _str("starcoder2"),
        _str("general.name") + struct.pack("<I", STRING) + _str(name),
        _str("starcoder2.context_length") + struct.pack("<II", UINT32, 16384),
        _str("tokenizer.ggml.merges") + struct.pack("<IIQ", ARRAY, STRING, 2) + _str("a b") + _str("c d"),
        _str("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, len(tokens))
        + b"".join(_str(t) for t in tokens),
        _str("tokenizer.ggml.token_type") + struct.pack("<IIQ", ARRAY, INT32, len(token_types))
        + struct.pack(f"<{len(token_types)}i", *token_types),
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs) + b"\0" * 64)


def test_reads_the_real_qwen_model_header() -> None:
    meta = read_gguf_metadata(real_model())
    assert meta.version == 3 and meta.tensor_count > 100
    assert meta.architecture == "qwen2" and "Qwen2.5" in meta.name and meta.context_length == 32768
    assert len(meta.tokens) == 151936 and meta.array_lengths["tokenizer.ggml.merges"] > 100_000
    fim = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}
    assert fim <= meta.special_tokens  # control tokens, by tokenizer.ggml.token_type
    assert "def" not in meta.special_tokens and "def" in meta.tokens


def test_real_model_is_recognised_by_its_vocabulary_even_when_renamed(tmp_path: Path) -> None:
    renamed = tmp_path / "my-finetune.gguf"
    renamed.symlink_to(real_model())
    choice = family_for_model(renamed, [], None)
    assert choice.template.family == "qwen2.5-coder" and "vocabulary" in choice.reason


def test_small_file_written_here_and_family_from_its_tokens(tmp_path: Path) -> None:
    tokens = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>",
              "<repo_name>", "<file_sep>", "def", "Ġreturn"]
    path = tmp_path / "model.gguf"
    write_gguf(path, "Custom Model", tokens, [3, 3, 3, 3, 3, 3, 3, 1, 1])
    meta = read_gguf_metadata(path)
    assert meta.name == "Custom Model" and meta.context_length == 16384
    assert meta.special_tokens == frozenset(tokens[:7]) and meta.array_lengths["tokenizer.ggml.merges"] == 2
    assert family_for_model(path, [], None).template.family == "starcoder2"
    assert family_for_model(path, [], "codegemma").template.family == "codegemma"  # override wins


def test_bad_files_are_refused(tmp_path: Path) -> None:
    not_gguf = tmp_path / "a.gguf"
    not_gguf.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(GgufError, match="magic"):
        read_gguf_metadata(not_gguf)
    whole = tmp_path / "whole.gguf"
    write_gguf(whole, "x", ["a", "b"], [1, 1])
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(whole.read_bytes()[:60])
    with pytest.raises(GgufError, match="truncated"):
        read_gguf_metadata(truncated)
    # A file that cannot be read falls back to names, it does not stop the daemon.
    assert family_for_model(truncated, ["codegemma-2b"], None).template.family == "codegemma"
