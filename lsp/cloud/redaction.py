"""Secrets taken out of text before it may leave the machine.

Each rule finds one kind of secret and replaces only the secret part (a connection string keeps its
host, an assignment keeps its name) with `[REDACTED:<kind>]`, so the cloud model still sees the
code's shape. Values from the project's `.env` files are redacted wherever they appear.
The findings (kind, line, count) go to the payload preview and the audit log, never the values.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    group: int = 0  # the part of the match that is the secret


_SECRET_NAME = r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?)"

RULES: tuple[Rule, ...] = (
    Rule("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S)),
    Rule("anthropic-key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    Rule("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}")),
    Rule("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    Rule("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    Rule("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
    Rule("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b")),
    Rule("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    Rule("stripe-key", re.compile(r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),
    Rule("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    Rule("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    Rule("bearer-token", re.compile(r"(?i)\b(?:authorization\s*[:=]\s*[\"']?\s*)?bearer\s+([A-Za-z0-9_\-.=+/]{16,})"), 1),
    # scheme://user:password@host — keeps the user and host, hides the password
    Rule("connection-password", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"']+:([^\s@/\"']+)@"), 1),
    # password=…; Password=…; in ADO/JDBC style connection strings
    Rule("connection-password", re.compile(r"(?i)\b(?:password|pwd)\s*=\s*([^;\s\"']+)"), 1),
    # NAME = "value" where NAME says it is a secret (code, YAML, TOML, .env-style lines)
    Rule(
        "secret-assignment",
        re.compile(rf"(?i)\b[\w.\-]*{_SECRET_NAME}[\w.\-]*\b[\"']?\s*(?:=|:|:=|=>)\s*[\"']([^\"'\s]{{4,}})[\"']"),
        1,
    ),
    # .env / shell style, unquoted: NAME in capitals (so `token_count = len(tokens)` is left alone)
    Rule(
        "secret-assignment",
        re.compile(rf"(?m)^\s*(?:export\s+)?[A-Z0-9_]*{_SECRET_NAME.upper()}[A-Z0-9_]*\s*=\s*([^\s\"'#()]{{4,}})\s*(?:#.*)?$"),
        1,
    ),
)


@dataclass
class Redacted:
    text: str
    findings: list[tuple[str, int]] = field(default_factory=list)  # (kind, 1-based line)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(kind for kind, _ in self.findings))


def redact(text: str, known_secrets: tuple[str, ...] = ()) -> Redacted:
    """`text` with every secret replaced; `known_secrets` are literal values (from .env files)."""
    spans: list[tuple[int, int, str]] = []
    for value in sorted({v for v in known_secrets if len(v) >= 4}, key=len, reverse=True):
        spans += [(m.start(), m.end(), "env-value") for m in re.finditer(re.escape(value), text)]
    for rule in RULES:
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group)
            if start >= 0 and end > start and not match.group(rule.group).startswith("[REDACTED"):
                spans.append((start, end, rule.kind))
    chosen: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if chosen and span[0] < chosen[-1][1]:
            continue  # overlaps a longer or earlier finding
        chosen.append(span)
    out, findings, last = [], [], 0
    for start, end, kind in chosen:
        out.append(text[last:start])
        out.append(f"[REDACTED:{kind}]")
        findings.append((kind, text.count("\n", 0, start) + 1))
        last = end
    out.append(text[last:])
    return Redacted("".join(out), findings)


def env_values(root: Path) -> tuple[str, ...]:
    """The values assigned in the project's .env files (never sent: redacted wherever they appear)."""
    values: list[str] = []
    for path in sorted(root.glob(".env*")):
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = re.match(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.]*\s*=\s*(.*)$", line)
            if match:
                value = match.group(1).strip().strip("\"'")
                if len(value) >= 4 and value.lower() not in ("true", "false", "none", "null"):
                    values.append(value)
    return tuple(values)
