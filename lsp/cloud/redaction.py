"""Secrets taken out of text before it may leave the machine.

Each rule finds one kind of secret and replaces only the secret part (a connection string keeps its
host, an assignment keeps its name) with `[REDACTED:<kind>]`, so the cloud model still sees the
code's shape. Values from the project's `.env` files are redacted wherever they appear.
The findings (kind, line, count) go to the payload preview and the audit log, never the values.

Linear time on any input: the selection is the user's, but the file it comes from may be a
hostile repository's, and a pattern that backtracks (8 kB of `a.a.a…` took 3.3 s with the first
version) would freeze the language server. So every variable-length run is possessive (`*+`, `++`:
no backtracking into it) and may only start where a run of its kind starts (a lookbehind), which
bounds the work to a constant number of passes over each character. Assignments are found in two
steps: a whole name (one possessive run), then a check of that name and of what follows it.
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


def _token(prefix: str, body: str, minimum: int) -> str:
    """A token that starts with `prefix` at the start of a run of token characters."""
    return rf"(?<![A-Za-z0-9_\-]){prefix}{body}{{{minimum},}}+"


# Secrets recognised by their own shape, wherever they are.
TOKEN_RULES: tuple[Rule, ...] = (
    Rule("private-key", re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:(?!-----END)[\s\S])*+(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?")),
    Rule("anthropic-key", re.compile(_token("sk-ant-", r"[A-Za-z0-9_\-]", 20))),
    Rule("openai-key", re.compile(_token(r"sk-(?:proj-|svcacct-|admin-)?", r"[A-Za-z0-9_\-]", 20))),
    Rule("aws-access-key", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Za-z0-9])")),
    Rule("github-token", re.compile(_token("(?:gh[pousr]_|github_pat_)", r"[A-Za-z0-9_]", 30))),
    Rule("gitlab-token", re.compile(_token("glpat-", r"[A-Za-z0-9_\-]", 20))),
    Rule("slack-token", re.compile(_token("xox[abposr]-", r"[A-Za-z0-9\-]", 10))),
    Rule("google-api-key", re.compile(r"(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    Rule("stripe-key", re.compile(_token("[rsp]k_(?:live|test)_", r"[0-9A-Za-z]", 16))),
    Rule("huggingface-token", re.compile(_token("hf_", r"[A-Za-z0-9]", 30))),
    Rule("npm-token", re.compile(_token("npm_", r"[A-Za-z0-9]", 30))),
    Rule("pypi-token", re.compile(_token("pypi-", r"[A-Za-z0-9_\-]", 40))),
    Rule("sendgrid-key", re.compile(r"(?<![A-Za-z0-9_\-.])SG\.[A-Za-z0-9_\-]{16,}+\.[A-Za-z0-9_\-]{30,}+")),
    Rule("jwt", re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}+\.eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+")),
    Rule("bearer-token", re.compile(r"(?i)(?<![A-Za-z0-9_])bearer[ \t]++([A-Za-z0-9_\-.=+/]{16,}+)"), 1),
    # scheme://user:password@host keeps the user and host, hides the password
    Rule("connection-password", re.compile(r"(?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]*+://[^\s:/@\"']++:([^\s@/\"']++)@"), 1),
)

_SECRET_WORD = re.compile(
    r"password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key|private[_\-]?key"
    r"|account[_\-]?key|shared[_\-]?access[_\-]?key|signing[_\-]?key|credentials?|_auth",
    re.IGNORECASE,
)
# A name: one possessive run, starting only where a run starts (linear: see the module doc).
_NAME = re.compile(r"(?<![\w.\-])[A-Za-z_][\w.\-]*+")
# What follows a secret's name: a separator, then a quoted value or an unquoted one.
_QUOTED_VALUE = re.compile(r"[\"']?[ \t]*+(?:=>|:=|=|:)[ \t]*+([\"'])([^\"'\r\n]{4,}?)\1")
_BARE_VALUE = re.compile(r"[\"']?[ \t]*+(?:=>|:=|=|:)[ \t]*+([^\s\"'#;,()\[\]{}<>`]{4,}+)(?=[\s;,#]|$)")
_VALUE_RUN = re.compile(r"[\"']?[ \t]*+(?:=>|:=|=|:)[ \t]*+[^\s\"'#;,()\[\]{}<>`]*+")
_NOT_SECRET = re.compile(r"(?i)true|false|none|null|nil|yes|no|on|off|required|optional|string|str|int|bool|bytes|changeme|redacted.*")
MAX_NAME = 200  # longer "names" are data, not identifiers


@dataclass
class Redacted:
    text: str
    findings: list[tuple[str, int]] = field(default_factory=list)  # (kind, 1-based line)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(kind for kind, _ in self.findings))


def _looks_secret(value: str) -> bool:
    """An unquoted value after a secret's name: a literal secret, not code (`token = get()`,
    `password_length = 12`, `api_key: str`) nor a reference (`${API_KEY}`, `%(token)s`)."""
    if _NOT_SECRET.fullmatch(value) or value.startswith(("$", "%", "{", "os.", "self.", "env.", "process.")):
        return False
    has_digit = any(c.isdigit() for c in value)
    return (has_digit and len(value) >= 6) or len(value) >= 16 or any(c in "+/=@!*&^~" for c in value)


def _assignment_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    bare_end = -1  # end of the last unquoted value looked at: a later name inside it ends there too
    for name in _NAME.finditer(text):
        if name.end() - name.start() > MAX_NAME or not _SECRET_WORD.search(name.group()):
            continue
        quoted = _QUOTED_VALUE.match(text, name.end())
        if quoted is not None:
            spans.append((quoted.start(2), quoted.end(2), "secret-assignment"))
            continue
        if name.start() < bare_end:
            continue  # `token=token=token=…`: each name would scan the same run again (quadratic)
        bare = _BARE_VALUE.match(text, name.end())
        bare_end = bare.end() if bare is not None else _run_end(text, name.end())
        if bare is not None and _looks_secret(bare.group(1)):
            kind = "connection-password" if name.group().lower() in ("password", "pwd") else "secret-assignment"
            spans.append((bare.start(1), bare.end(1), kind))
    return spans


def _run_end(text: str, start: int) -> int:
    """Where the unquoted value after `start` would end (so a failed look is not repeated)."""
    run = _VALUE_RUN.match(text, start)
    return run.end() if run is not None else start


def _known_spans(text: str, known_secrets: tuple[str, ...]) -> list[tuple[int, int, str]]:
    spans = []
    for value in {v for v in known_secrets if len(v) >= 4}:
        start = text.find(value)
        while start >= 0:
            spans.append((start, start + len(value), "env-value"))
            start = text.find(value, start + len(value))
    return spans


def redact(text: str, known_secrets: tuple[str, ...] = ()) -> Redacted:
    """`text` with every secret replaced; `known_secrets` are literal values (from .env files).
    CPU-bound: callers on an event loop run it in a thread."""
    spans = _known_spans(text, known_secrets)
    for rule in TOKEN_RULES:  # before assignments: at the same span the specific kind is named
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group)
            if start >= 0 and end > start and not text.startswith("[REDACTED", start):
                spans.append((start, end, rule.kind))
    spans += _assignment_spans(text)
    chosen: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if chosen and span[0] < chosen[-1][1]:
            continue  # overlaps a longer or earlier finding
        chosen.append(span)
    out, findings, last, line, counted_to = [], [], 0, 1, 0
    for start, end, kind in chosen:
        out.append(text[last:start])
        out.append(f"[REDACTED:{kind}]")
        line += text.count("\n", counted_to, start)  # incremental: linear in the text, not quadratic
        counted_to = start
        findings.append((kind, line))
        last = end
    out.append(text[last:])
    return Redacted("".join(out), findings)


def env_values(root: Path) -> tuple[str, ...]:
    """The values assigned in the project's .env files (never sent: redacted wherever they appear)."""
    values: list[str] = []
    for path in sorted(root.glob(".env*")):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = re.match(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.]*\s*=\s*(.*)$", line)
            if match:
                value = match.group(1).strip().strip("\"'")
                if len(value) >= 4 and value.lower() not in ("true", "false", "none", "null"):
                    values.append(value)
    return tuple(values)
