"""Read a GGUF file's metadata (the key-value section only) to learn what model it holds.

Layout (ggml's docs/gguf.md): magic "GGUF", uint32 version, uint64 tensor count, uint64 KV count
(uint32 counts in version 1), then the KV pairs, then tensor infos and data. Every number is little
endian; a string is a uint64 byte length and UTF-8 bytes; an array is an element type, a uint64
count and the elements. We read the KV pairs and stop: the tensors (hundreds of MB) are never
touched (the file is memory-mapped; only the header's pages are read).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

# Value types (gguf_type in ggml/include/gguf.h).
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(8, 13)
_SCALARS: dict[int, str] = {
    _UINT8: "<B", _INT8: "<b", _UINT16: "<H", _INT16: "<h", _UINT32: "<I", _INT32: "<i",
    _FLOAT32: "<f", _BOOL: "<?", _UINT64: "<Q", _INT64: "<q", _FLOAT64: "<d",
}
# tokenizer.ggml.token_type values (llama_token_type): control and user-defined tokens are the
# "special" ones that templates use.
_TOKEN_CONTROL, _TOKEN_USER_DEFINED = 3, 4
# A corrupt length must not make us allocate gigabytes.
_MAX_STRING = 16 << 20
_MAX_ARRAY = 16 << 20

Scalar = int | float | bool | str


class GgufError(ValueError):
    """Not a GGUF file, or a truncated/corrupt header."""


@dataclass(frozen=True)
class GgufMetadata:
    version: int
    tensor_count: int
    values: dict[str, Scalar]  # scalar keys (general.*, <arch>.context_length, ...)
    array_lengths: dict[str, int]  # array keys other than the token list: just their lengths
    tokens: frozenset[str] = field(default_factory=frozenset)  # the whole vocabulary
    special_tokens: frozenset[str] = field(default_factory=frozenset)  # control/user-defined

    @property
    def name(self) -> str:
        return str(self.values.get("general.name", ""))

    @property
    def architecture(self) -> str:
        return str(self.values.get("general.architecture", ""))

    @property
    def context_length(self) -> int:
        value = self.values.get(f"{self.architecture}.context_length", 0)
        return int(value) if isinstance(value, int | float) else 0


def read_gguf_metadata(path: Path) -> GgufMetadata:
    with path.open("rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise GgufError("not a GGUF file (empty)") from exc
        with mapped:
            return _read(_Cursor(mapped))


class _Cursor:
    """Reads little-endian values from the mapped file; only the pages touched are loaded."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise GgufError("truncated GGUF header")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise GgufError("truncated GGUF header")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise GgufError("truncated GGUF header")
        self.pos += n


def _read(f: _Cursor) -> GgufMetadata:
    if f.take(4) != GGUF_MAGIC:
        raise GgufError("not a GGUF file (bad magic)")
    (version,) = f.unpack("<I")
    if version == 1:
        tensor_count, kv_count = f.unpack("<II")
    elif version in (2, 3):
        tensor_count, kv_count = f.unpack("<QQ")
    else:
        raise GgufError(f"unsupported GGUF version {version}")
    values: dict[str, Scalar] = {}
    array_lengths: dict[str, int] = {}
    tokens: list[str] = []
    token_types: list[int] = []
    for _ in range(kv_count):
        key = _string(f, version)
        (value_type,) = f.unpack("<I")
        if value_type != _ARRAY:
            values[key] = _scalar(f, value_type, version)
            continue
        (element_type,) = f.unpack("<I")
        count = _count(f, version)
        if key == "tokenizer.ggml.tokens" and element_type == _STRING:
            tokens = _strings(f, count, version, keep=True)
        elif key == "tokenizer.ggml.token_type" and element_type in (_INT32, _UINT32):
            token_types = list(struct.unpack(f"<{count}i", f.take(4 * count)))
        else:
            _skip_array(f, element_type, count, version)
        array_lengths[key] = count
    special = (
        frozenset(t for t, kind in zip(tokens, token_types, strict=False) if kind in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED))
        if token_types
        else frozenset()
    )
    return GgufMetadata(version, tensor_count, values, array_lengths, frozenset(tokens), special)


def _length_format(version: int) -> str:
    return "<I" if version == 1 else "<Q"


def _count(f: _Cursor, version: int) -> int:
    (n,) = f.unpack(_length_format(version))
    if n > _MAX_ARRAY:
        raise GgufError(f"implausible array length {n}")
    return int(n)


def _string(f: _Cursor, version: int) -> str:
    (n,) = f.unpack(_length_format(version))
    if n > _MAX_STRING:
        raise GgufError(f"implausible string length {n}")
    return f.take(n).decode("utf-8", errors="replace")


def _strings(f: _Cursor, count: int, version: int, keep: bool) -> list[str]:
    """A string array, read (or skipped) in one tight loop: vocabularies hold 150k entries."""
    length = struct.Struct(_length_format(version))
    unpack, size, data, pos, end = length.unpack_from, length.size, f.data, f.pos, len(f.data)
    out: list[str] = []
    for _ in range(count):  # variable length: each one's length must be read
        if pos + size > end:
            raise GgufError("truncated GGUF header")
        (n,) = unpack(data, pos)
        pos += size
        if keep:
            out.append(data[pos:pos + n].decode("utf-8", errors="replace"))
        pos += n
    if pos > end:
        raise GgufError("truncated GGUF header")
    f.pos = pos
    return out


def _scalar(f: _Cursor, value_type: int, version: int) -> Scalar:
    if value_type == _STRING:
        return _string(f, version)
    fmt = _SCALARS.get(value_type)
    if fmt is None:
        raise GgufError(f"unknown GGUF value type {value_type}")
    (value,) = f.unpack(fmt)
    return value  # type: ignore[no-any-return]


def _skip_array(f: _Cursor, element_type: int, count: int, version: int) -> None:
    if element_type == _STRING:
        _strings(f, count, version, keep=False)
        return
    if element_type == _ARRAY:
        for _ in range(count):
            (inner,) = f.unpack("<I")
            _skip_array(f, inner, _count(f, version), version)
        return
    fmt = _SCALARS.get(element_type)
    if fmt is None:
        raise GgufError(f"unknown GGUF array element type {element_type}")
    f.skip(struct.calcsize(fmt) * count)
