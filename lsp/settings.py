"""The language server's settings (docs/protocol.md), from initializationOptions and didChangeConfiguration."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    enable: bool = True
    disabled_languages: list[str] = Field(default_factory=list, alias="disabledLanguages")
    debounce_ms: int = Field(default=0, ge=0, le=5000, alias="debounceMs")
    max_lines: int = Field(default=6, ge=1, le=50, alias="maxLines")
    model: str = ""
    engine: Literal["auto", "llamacpp", "vllm", "openai"] = "auto"
    privacy_mode: Literal["local-only", "cloud-allowed"] = Field(default="local-only", alias="privacyMode")
    cloud_endpoint: str = Field(default="", alias="cloudEndpoint")
    log_document_text: bool = Field(default=False, alias="logDocumentText")
    # Compute the suggestion that follows accepting the shown one (at low priority).
    speculate: bool = True

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
