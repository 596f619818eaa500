"""The daemon's HTTP API: request bodies and the NDJSON events it streams back (docs/protocol.md).

Both halves import these models: the daemon validates requests and writes events with them, the
language server builds requests and reads events with them, so a field cannot drift between the two.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from nearcode.shared.protocol.settings import ContextMode

Priority = Literal["interactive", "speculative", "background"]

# The language server sends at most this much text before the cursor (the daemon fits tokens
# exactly); a shorter prefix therefore starts at the file's start.
PREFIX_WINDOW_CHARS = 24_000
SUFFIX_WINDOW_CHARS = 6_000
HEAD_WINDOW_CHARS = 8_000  # a document's start, for its head (imports) in the context block


class ContextSnippet(BaseModel):
    path: str = Field(max_length=4096)
    text: str = Field(max_length=200_000)


class FimRequest(BaseModel):
    """`POST /api/fim`: one fill-in-the-middle completion, streamed."""

    prefix: str
    suffix: str = ""
    language: str = ""
    path: str = ""
    context: list[ContextSnippet] = Field(default_factory=list, max_length=64)
    mode: Literal["single", "multi"] = "single"
    max_tokens: int = Field(default=64, ge=1, le=2048)
    # Where the answer ends (nearcode/shared/completion_end.py): after this many lines, and, with
    # stop_at_block_end, where a line leaves the block the cursor is in.
    max_lines: int | None = Field(default=None, ge=1, le=200)
    stop_at_block_end: bool = False
    deadline_ms: int | None = Field(default=None, ge=1, le=600_000)
    max_generation_ms: int | None = Field(default=None, ge=1, le=600_000)
    document: str = ""  # with `client`: the stream a newer request supersedes
    client: str = ""
    priority: Priority = "interactive"
    # Requests with the same affinity run in the same engine slot, reusing its cached prompt
    # (default: `document`).
    affinity: str = ""
    # Choices wanted: the first at `temperature` (greedy by default), the others sampled at
    # ALTERNATIVE_TEMPERATURES; their events carry `index`.
    n: int = Field(default=1, ge=1, le=3)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # "workspace": the daemon adds definitions and snippets from the project (the workspace index)
    # before the current file; "file": the current file only.
    context_mode: ContextMode = "workspace"


class PrefillRequest(BaseModel):
    """`POST /api/prefill`: a document was opened or focused, or the cursor rests somewhere new:
    read the prompt's stable part into the engine's cache at background priority, in the slot the
    document's completions use, so the first completion there reads only what changed."""

    document: str
    client: str = ""
    path: str = ""
    language: str = ""
    head: str = Field(default="", max_length=HEAD_WINDOW_CHARS)  # the document's first characters
    # Around the cursor, cut like a FimRequest's, when the editor said where it is (else None).
    prefix: str | None = Field(default=None, max_length=PREFIX_WINDOW_CHARS)
    suffix: str = Field(default="", max_length=SUFFIX_WINDOW_CHARS)
    context_mode: ContextMode = "workspace"
    affinity: str = ""  # default: `document`


class PrefillAnswer(BaseModel):
    """The answer to `/api/prefill`, at once: the reading itself goes on in the background."""

    started: bool
    reason: str = ""


class ContextQuery(BaseModel):
    """`POST /api/context`: what the last completion of (client, document) was given."""

    client: str = ""
    document: str


# Temperatures of choices 1, 2 of an n > 1 request (choice 0 is greedy): warm enough that a small
# model says something else, not so hot that it stops writing code.
ALTERNATIVE_TEMPERATURES = (0.7, 1.0)


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=400_000)


class GenerateRequest(BaseModel):
    """`POST /api/generate`: an instruction task (docstring, tests, chat), rendered with the model
    family's chat template and streamed."""

    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    max_tokens: int = Field(default=512, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    stop: list[str] = Field(default_factory=list, max_length=16)
    deadline_ms: int | None = Field(default=None, ge=1, le=3_600_000)
    document: str = ""
    client: str = ""
    priority: Priority = "background"


class DeltaEvent(BaseModel):
    """A piece of generated text."""

    type: Literal["delta"] = "delta"
    text: str
    index: int = 0  # which choice of an n > 1 request


class DoneEvent(BaseModel):
    """The end of a stream: why it ended, and what the engine did."""

    type: Literal["done"] = "done"
    # stop, newline, length, deadline, cancelled, superseded (daemon/engines/base.py FinishReason)
    finish_reason: str
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the engine's KV cache
    generated_tokens: int = 0
    elapsed_ms: float = 0.0
    index: int = 0  # which choice of an n > 1 request: each choice ends with its own done event
    # Speculative decoding: tokens drafted for the model to check, and those it kept.
    draft_tokens: int = 0
    draft_accepted: int = 0
    # The answer's token cap as applied: below the request's max_tokens when other editors shared
    # the engine (a "length" ending is then the daemon's cut for load, not the caller's). 0: unknown.
    max_tokens: int = 0


class ErrorEvent(BaseModel):
    """The stream failed; `message` says why and what to do."""

    type: Literal["error"] = "error"
    message: str


class StatusEvent(BaseModel):
    """What the daemon is doing for this request before any text: `loading` when the model was
    released after idle time and is being loaded again (editors show it in their status)."""

    type: Literal["status"] = "status"
    state: Literal["loading"]
    message: str = ""


StreamEvent = Annotated[DeltaEvent | DoneEvent | ErrorEvent | StatusEvent, Field(discriminator="type")]
_EVENT = TypeAdapter(StreamEvent)


def parse_event(line: str | bytes) -> DeltaEvent | DoneEvent | ErrorEvent | StatusEvent:
    """One NDJSON line of a stream; raises pydantic.ValidationError on anything else."""
    return _EVENT.validate_json(line)


# JSON leaves these unescaped inside strings, but line readers split on them (httpx's aiter_lines,
# str.splitlines): a model that writes one would cut its event in two (found by the fuzzer).
# Escaped, one event is always one line; the JSON means the same.
_UNSAFE_IN_A_LINE = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def event_line(event: DeltaEvent | DoneEvent | ErrorEvent | StatusEvent) -> bytes:
    """One NDJSON line: the event's JSON, with nothing in it a line reader would split on."""
    text = event.model_dump_json()
    for raw, escaped in _UNSAFE_IN_A_LINE.items():
        text = text.replace(raw, escaped)
    return text.encode() + b"\n"


# ---------------------------------------------------------------- the workspace index

MAX_BUFFER_CHARS = 2_000_000  # the daemon keeps buffers up to its own (smaller) size cap


class WorkspaceRequest(BaseModel):
    """`POST /api/workspace`: the workspace folders an editor's language server has open (all of
    them, each time: it replaces the previous set). An empty list releases the client."""

    client: str = Field(min_length=1, max_length=200)
    pid: int | None = Field(default=None, ge=1)  # the daemon releases a client whose process is gone
    folders: list[str] = Field(default_factory=list, max_length=64)


class FolderStatus(BaseModel):
    """One workspace folder's index, as `/api/workspace` and `/api/status` show it."""

    root: str
    state: Literal["scanning", "ready", "capped", "closed", "skipped"]
    files: int = 0
    definitions: int = 0
    discovered: int = 0  # scan progress: parsed of discovered
    parsed: int = 0
    scan_seconds: float | None = None
    message: str = ""
    clients: int = 0
    open_buffers: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)


class WorkspaceStatus(BaseModel):
    """Answer of `POST /api/workspace` and `GET /api/workspace[?client=...]`."""

    registered: bool  # the daemon knows this client (False after a daemon restart: register again)
    folders: list[FolderStatus] = Field(default_factory=list)


class BufferRequest(BaseModel):
    """`POST /api/buffer`: an editor's text of an open file (absolute path), or null when it was
    closed (the file on disk counts again). The language server debounces changes (~300 ms)."""

    client: str = Field(min_length=1, max_length=200)
    path: str = Field(min_length=1, max_length=4096)
    text: str | None = Field(default=None, max_length=MAX_BUFFER_CHARS)
    version: int = 0


class BufferAck(BaseModel):
    accepted: bool
    registered: bool  # see WorkspaceStatus.registered
    reason: str = ""  # why not accepted: outside every folder, denied, ignored, too large


class LookupRequest(BaseModel):
    """`POST /api/workspace/lookup`: definitions of `name` as seen from the file at `path`
    (through its imports first), or in the folder at `path`."""

    path: str = Field(min_length=1, max_length=4096)
    name: str = Field(min_length=1, max_length=200)


class DefinitionOut(BaseModel):
    name: str
    qualified: str
    kind: str
    path: str
    line: int
    signature: str
    doc: str


class LookupResult(BaseModel):
    root: str | None = None  # the folder whose index answered; None: no index holds the path
    definitions: list[DefinitionOut] = Field(default_factory=list)
