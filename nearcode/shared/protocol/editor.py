"""What the language server and editors exchange beyond standard LSP: the status notification,
the custom commands and their results (docs/protocol.md).

The VS Code extension's TypeScript types and the Neovim plugin's command names are generated from
these models (nearcode/shared/protocol/export.py); a test fails when the generated files are stale.
Field names are camelCase on the wire, as everywhere in LSP.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

STATUS_NOTIFICATION = "nearcode/status"
# Client to server, as Copilot's language server names them; the partial accept's `acceptKind`
# ("word" or "line") is nearcode's addition (insight counts them apart; without it: "word").
DID_SHOW_NOTIFICATION = "textDocument/didShowCompletion"
DID_PARTIALLY_ACCEPT_NOTIFICATION = "textDocument/didPartiallyAcceptCompletion"
AcceptKind = Literal["word", "line"]

# workspace/executeCommand commands.
ACCEPT_COMMAND = "nearcode.didAcceptCompletion"
STATUS_COMMAND = "nearcode.status"
DOCSTRING_COMMAND = "nearcode.generateDocstring"
TESTS_COMMAND = "nearcode.generateTests"
ASK_CLOUD_COMMAND = "nearcode.askCloud"
PREVIEW_CLOUD_COMMAND = "nearcode.previewCloudPayload"
COMMANDS = (ACCEPT_COMMAND, STATUS_COMMAND, DOCSTRING_COMMAND, TESTS_COMMAND, ASK_CLOUD_COMMAND, PREVIEW_CLOUD_COMMAND)

ServerState = Literal["ready", "loading", "working", "error", "off"]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object sent to the editor."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class StatusParams(WireModel):
    """`nearcode/status`: sent on start, on every state change and after each completion."""

    state: ServerState
    engine: str = ""
    model: str = ""
    last_latency_ms: float | None = None
    local_only: bool = True
    message: str = ""


class StatusResult(StatusParams):
    """`nearcode.status`: the status plus this server's counters and the network guard's."""

    requested: int = 0
    offered: int = 0
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    alternatives_offered: int = 0  # suggestions offered beyond the first, to cycle through
    # How requests were answered: served_model, served_cache, served_joined, ... (lsp/coordinator.py)
    served: dict[str, int] = Field(default_factory=dict)
    network: dict[str, Any] = Field(default_factory=dict)


class SignatureCheck(WireModel):
    unknown_dropped: list[str] = Field(default_factory=list)
    missing_at_first: list[str] = Field(default_factory=list)


class DocstringResult(WireModel):
    """`nearcode.generateDocstring`."""

    offered: bool
    applied: bool = False
    reason: str | None = None  # why it was not offered
    symbol: str = ""
    style: str = ""
    params: list[str] = Field(default_factory=list)
    finish_reason: str = ""
    signature_check: SignatureCheck | None = None
    docstring: str | None = None
    line: int | None = None
    streamed_edits: int = 0
    edit: dict[str, Any] | None = None  # a WorkspaceEdit for the client to apply when not applied


TestOutcome = Literal["passed", "failed", "error", "not run"]


class TestRunResult(WireModel):
    __test__ = False  # not a pytest test class
    outcome: TestOutcome
    summary: str = ""
    output: str = ""
    seconds: float = 0.0


class TestsResult(WireModel):
    """`nearcode.generateTests`."""

    __test__ = False  # not a pytest test class

    offered: bool
    applied: bool = False
    reason: str | None = None
    framework: str = ""
    test_file: str = ""
    create_file: bool = False
    tests: str | None = None
    raw: str | None = None  # the model's text when no test could be taken from it
    run: TestRunResult | None = None
    # The outcome already went out as window/showMessage: clients need not repeat it.
    notified: bool = False
    edit: dict[str, Any] | None = None


class CloudResult(WireModel):
    """`nearcode.askCloud` (sent) and `nearcode.previewCloudPayload` (not sent; `body` is exactly
    what would be sent)."""

    sent: bool
    applied: bool = False
    text: str | None = None
    destination: str = ""
    model: str = ""
    task: str = ""
    bytes: int = 0
    redactions: dict[str, int] = Field(default_factory=dict)
    redacted_lines: list[int] = Field(default_factory=list)
    withheld_files: list[str] = Field(default_factory=list)
    body: str | None = None
    audit_log: str | None = None
