"""The daemon API's request and event shapes (see docs/protocol.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ContextSnippet(BaseModel):
    path: str = Field(max_length=4096)
    text: str = Field(max_length=200_000)


class FimRequest(BaseModel):
    prefix: str
    suffix: str = ""
    language: str = ""
    path: str = ""
    context: list[ContextSnippet] = Field(default_factory=list, max_length=64)
    mode: Literal["single", "multi"] = "single"
    max_tokens: int = Field(default=64, ge=1, le=2048)
    max_lines: int | None = Field(default=None, ge=1, le=200)
    # Multi-line: stop once a finished line is indented less than this (the block has ended).
    block_indent: int | None = Field(default=None, ge=0, le=400)
    deadline_ms: int | None = Field(default=None, ge=1, le=600_000)
    max_generation_ms: int | None = Field(default=None, ge=1, le=600_000)
    document: str = ""  # with `client`: the stream a newer request supersedes
    client: str = ""
    priority: Literal["interactive", "speculative", "background"] = "interactive"
    # Requests with the same affinity run in the same engine slot, reusing its cached prompt
    # (default: `document`).
    affinity: str = ""


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=400_000)


class GenerateRequest(BaseModel):
    """An instruction task (docstring, tests, chat): messages rendered with the family's chat template."""

    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    max_tokens: int = Field(default=512, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    stop: list[str] = Field(default_factory=list, max_length=16)
    deadline_ms: int | None = Field(default=None, ge=1, le=3_600_000)
    document: str = ""
    client: str = ""
    priority: Literal["interactive", "speculative", "background"] = "background"


class FimDone(BaseModel):
    type: Literal["done"] = "done"
    finish_reason: str
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    elapsed_ms: float = 0.0
