"""Files that are never sent to a cloud model: .env files, keys and certificates, and anything a
`.nearcodeignore` file (gitignore syntax: `#` comments, `!` negation, `/` anchors, `**`, trailing
`/` for folders) at the project root lists."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

IGNORE_FILE = ".nearcodeignore"

BUILTIN_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.crt", "*.cer", "*.der", "*.csr", "*.jks", "*.keystore",
    "*.gpg", "*.asc", "*.ppk", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd", "credentials.json", "secrets.*",
    IGNORE_FILE,
)  # fmt: skip


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negate: bool
    directory_only: bool
    source: str


def _compile(line: str, source: str) -> IgnoreRule | None:
    line = line.rstrip()
    if not line or line.startswith("#"):
        return None
    label = f"{source} pattern {line!r}"
    negate = line.startswith("!")
    line = line[1:] if negate else line
    line = line.replace("\\#", "#").replace("\\!", "!")
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    anchored = "/" in line  # gitignore: a slash anywhere but the end anchors to the root
    line = line.lstrip("/")
    regex = ""
    i = 0
    while i < len(line):
        if line.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif line.startswith("/**", i) and i + 3 == len(line):
            regex, i = regex + "/.*", i + 3
        elif line[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif line[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif line[i] == "[":
            close = line.find("]", i)
            if close < 0:
                regex, i = regex + re.escape("["), i + 1
            else:
                body = line[i + 1 : close].replace("!", "^", 1) if line[i + 1 : i + 2] == "!" else line[i + 1 : close]
                regex, i = regex + f"[{body}]", close + 1
        else:
            regex, i = regex + re.escape(line[i]), i + 1
    prefix = "" if anchored else "(?:.*/)?"
    return IgnoreRule(re.compile(f"^{prefix}{regex}$"), negate, directory_only, label)


@dataclass
class DenyList:
    rules: list[IgnoreRule] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path | None) -> DenyList:
        rules = [rule for p in BUILTIN_PATTERNS if (rule := _compile(p, "built-in")) is not None]
        if root is not None and (root / IGNORE_FILE).is_file():
            text = (root / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
            rules += [rule for line in text.splitlines() if (rule := _compile(line, IGNORE_FILE)) is not None]
        return cls(rules)

    def reason(self, relative_path: str) -> str | None:
        """Why this path (relative to the project root) may not be sent; None if it may."""
        path = PurePosixPath(relative_path.replace("\\", "/").lstrip("/"))
        candidates = [str(path)] + [str(parent) + "/" for parent in reversed(path.parents) if str(parent) != "."]
        verdict: str | None = None
        for rule in self.rules:
            for candidate in candidates:
                is_dir = candidate.endswith("/")
                if rule.directory_only and not is_dir:
                    continue
                if rule.pattern.match(candidate.rstrip("/")):
                    if rule.negate and not is_dir:
                        verdict = None
                    elif not rule.negate:
                        verdict = f"{candidate} matches the {rule.source}"
                    break
        return verdict
