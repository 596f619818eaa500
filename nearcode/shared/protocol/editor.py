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
# Client to server: the editor shows this document now, `{"textDocument": {"uri"}, "position"?}`;
# the server reads its prompt's stable part into the engine's cache ahead of the first request.
FOCUS_NOTIFICATION = "nearcode/didFocus"

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
SHOW_CONTEXT_COMMAND = "nearcode.showContext"
COMMANDS = (
    ACCEPT_COMMAND, STATUS_COMMAND, DOCSTRING_COMMAND, TESTS_COMMAND, ASK_CLOUD_COMMAND, PREVIEW_CLOUD_COMMAND,
    SHOW_CONTEXT_COMMAND,
)

ServerState = Literal["ready", "loading", "working", "error", "off"]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object sent to the editor."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class WorkspaceFolderIndex(WireModel):
    """One workspace folder's index (the daemon's, shared by every editor that has it open)."""

    root: str
    state: Literal["scanning", "ready", "capped", "closed", "skipped"]
    files: int = 0
    definitions: int = 0
    message: str = ""  # why it is capped or skipped


class StatusParams(WireModel):
    """`nearcode/status`: sent on start, on every state change and after each completion."""

    state: ServerState
    engine: str = ""
    model: str = ""
    last_latency_ms: float | None = None
    # Nothing leaves this machine: privacyMode is local-only and the daemon's model runs here.
    local_only: bool = False
    # privacyMode is cloud-allowed: explicit cloud actions may send a selection to cloudEndpoint.
    cloud_allowed: bool = False
    # The daemon itself sends every prompt off this machine (a remote engine): editors show this
    # as its own state, never as "local".
    code_leaves_machine: bool = False
    prompt_destination: str = ""  # "this machine", or the URL the daemon sends prompts to
    message: str = ""
    workspace: list[WorkspaceFolderIndex] = Field(default_factory=list)


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
    # Not offered after streaming began: whether the lines it touched were put back as they were
    # (False only when the user edited them meanwhile: they are left as the user made them).
    restored: bool | None = None
    edit: dict[str, Any] | None = None  # a WorkspaceEdit for the client to apply when not applied


TestOutcome = Literal["passed", "failed", "error", "not run"]
# What the user answered before generated tests could run (window/showMessageRequest).
RunConsent = Literal["run", "always", "insert", "cancel", "no answer", "never (setting)", "preview", "always (workspace)"]


class TestRunResult(WireModel):
    __test__ = False  # not a pytest test class
    outcome: TestOutcome
    summary: str = ""
    output: str = ""
    seconds: float = 0.0
    consent: RunConsent | None = None
    sandbox: str = ""  # how the run was isolated: "bubblewrap", "unshare"


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


PromptPartKind = Literal["definition", "snippet", "edit", "file", "prefix", "suffix"]
PartStatus = Literal["kept", "cut", "dropped"]


class PromptPart(WireModel):
    """One piece of a completion's prompt, or one that was left out: what it holds, what it cost,
    and why it was kept, cut or dropped (Copilot's prompt elements carry the same)."""

    kind: PromptPartKind  # definition, snippet (an open file), edit (a recent edit), file (the current
    # file's own far text), prefix / suffix (the text around the cursor)
    path: str
    start_line: int  # 0-based, inclusive (as LSP positions)
    end_line: int
    tokens: int
    status: PartStatus
    reason: str
    name: str = ""  # the definition's name


class PromptBudgetReport(WireModel):
    """How the prompt's token budget was shared: each part's share, what it was allotted and used."""

    total_tokens: int
    shares: dict[str, float] = Field(default_factory=dict)
    allotted: dict[str, int] = Field(default_factory=dict)
    used: dict[str, int] = Field(default_factory=dict)


class ContextResult(WireModel):
    """`nearcode.showContext`: what the last completion in a document was given."""

    available: bool
    reason: str | None = None  # why there is nothing to show
    uri: str = ""
    context_mode: str = ""
    parts: list[PromptPart] = Field(default_factory=list)
    budget: PromptBudgetReport | None = None
    prompt_tokens: int = 0  # as the engine counted them
    cached_tokens: int = 0  # read from the engine's KV cache instead of computed
    assembly_ms: float = 0.0  # time spent gathering context
    deadline_ms: float = 0.0  # the time gathering was allowed
    deadline_missed: bool = False  # gathering ran out of time: the prompt has less context
    stable_block_reused: bool = False  # the context block is the one the previous request used
    prompt: str | None = None  # the prompt the engine received
    text: str = ""  # the same, rendered for people (editors show it as is)
