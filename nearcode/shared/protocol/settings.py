"""The language server's settings: the one definition (docs/protocol.md, "Settings").

Editors send them as `initializationOptions` and `workspace/didChangeConfiguration`. The VS Code
extension's types and defaults and the Neovim plugin's defaults are generated from this model
(nearcode/shared/protocol/export.py), and the extension's package.json is checked against it, so a
setting cannot exist in one place only.

Each field's `json_schema_extra` says where it may be set:
- `scope`: "machine" for settings that decide what leaves the machine. A workspace (a repository's
  own .vscode/settings.json) must never widen them; VS Code's `machine` scope enforces that there,
  the other clients document the same rule.
- `description`: the one-line text every client shows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_MODEL_ALIAS = "default"  # a `model` value naming whatever a daemon without --model runs

Engine = Literal["auto", "llamacpp", "vllm", "openai"]
PrivacyMode = Literal["local-only", "cloud-allowed"]
RunGeneratedTests = Literal["ask", "never"]
# What a completion's prompt may hold beyond the current file (docs/architecture.md, "Context").
ContextMode = Literal["workspace", "file"]


def _meta(description: str, scope: str = "resource") -> dict[str, Any]:
    return {"description": description, "scope": scope}


class Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    enable: bool = Field(default=True, json_schema_extra=_meta("Show inline completions (ghost text) from nearcode."))
    disabled_languages: list[str] = Field(
        default_factory=list, alias="disabledLanguages",
        json_schema_extra=_meta("Language ids for which no completion is offered (for example markdown, plaintext)."),
    )
    debounce_ms: int = Field(
        default=0, ge=0, le=5000, alias="debounceMs",
        json_schema_extra=_meta("Extra server-side wait (ms) before asking the model; editors already wait for a typing pause."),
    )
    max_lines: int = Field(default=6, ge=1, le=50, alias="maxLines", json_schema_extra=_meta("Most lines in a multi-line suggestion."))
    model: str = Field(
        default="",
        json_schema_extra=_meta("Model preset or GGUF path for a daemon the server starts (empty: the embedded default).", "machine"),
    )
    engine: Engine = Field(
        default="auto", json_schema_extra=_meta("Inference engine of a daemon the server starts.", "machine")
    )
    privacy_mode: PrivacyMode = Field(
        default="local-only", alias="privacyMode",
        json_schema_extra=_meta("Whether any request may leave this machine (local-only: none does).", "machine"),
    )
    cloud_endpoint: str = Field(
        default="", alias="cloudEndpoint",
        json_schema_extra=_meta("OpenAI-compatible base URL for the cloud hand-off (used only when privacyMode is cloud-allowed).", "machine"),
    )
    log_document_text: bool = Field(
        default=False, alias="logDocumentText",
        json_schema_extra=_meta("Allow document text in the server's logs (off by default).", "machine"),
    )
    run_generated_tests: RunGeneratedTests = Field(
        default="ask", alias="runGeneratedTests",
        json_schema_extra=_meta(
            "Generated tests run sandboxed, and only after you agree: ask (Run, Always run in this workspace, Insert "
            "without running, Cancel) or never run them. \"Always\" is kept per workspace in your own state, never "
            "in a project's files.",
            "machine",
        ),
    )
    context: ContextMode = Field(
        default="workspace",
        json_schema_extra=_meta(
            "What completions see: workspace (the current file plus definitions and snippets from the project) "
            "or file (the current file only)."
        ),
    )
    speculate: bool = Field(
        default=True,
        json_schema_extra=_meta("Compute the suggestion that follows accepting the shown one, at low priority."),
    )
    alternatives: int = Field(
        default=3, ge=1, le=3,
        json_schema_extra=_meta(
            "Most distinct suggestions to cycle through when you ask for one (and on an engine that batches, always)."
        ),
    )
    insight: bool = Field(
        default=True,
        json_schema_extra=_meta(
            "Keep local statistics of suggestions shown, accepted and kept (counts and lengths, never code; "
            "`nearcode stats`). Never sent anywhere.",
            "machine",
        ),
    )

    @staticmethod
    def machine_keys() -> frozenset[str]:
        """The wire keys a workspace may never set (scope "machine")."""
        keys = set()
        for name, info in Settings.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("scope") == "machine":
                keys.add(info.alias or name)
        return frozenset(keys)

    def merged(self, raw: Any) -> tuple[Settings, str | None]:
        """These settings updated from a client's object; bad values are reported, not applied."""
        if isinstance(raw, dict) and isinstance(raw.get("nearcode"), dict):
            raw = raw["nearcode"]
        if not isinstance(raw, dict):
            return self, None
        data = self.model_dump(by_alias=True)
        data.update(raw)
        try:
            return Settings.model_validate(data), None
        except ValidationError as exc:
            return self, f"ignored invalid nearcode settings: {exc.errors(include_input=False)}"
