"""The post-processing interface: pure filters over a candidate, each saying why it cut or dropped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class Candidate:
    text: str
    dropped: str | None = None  # why the whole suggestion was withdrawn
    cuts: tuple[str, ...] = ()  # why it was shortened, in filter order

    def cut(self, text: str, reason: str) -> Candidate:
        return self if text == self.text else replace(self, text=text, cuts=(*self.cuts, reason))

    def drop(self, reason: str) -> Candidate:
        return replace(self, dropped=reason)


@dataclass(frozen=True)
class PostContext:
    prefix: str  # document text before the cursor (may be a window)
    suffix: str  # document text after the cursor (may be a window)
    mode: Literal["single", "multi"] = "single"
    max_lines: int = 6

    @property
    def line_prefix(self) -> str:
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @property
    def line_suffix(self) -> str:
        end = self.suffix.find("\n")
        return self.suffix if end < 0 else self.suffix[:end]

    @property
    def following_lines(self) -> list[str]:
        """Document lines after the cursor's line."""
        end = self.suffix.find("\n")
        return [] if end < 0 else self.suffix[end + 1 :].split("\n")


Filter = Callable[[Candidate, PostContext], Candidate]
