"""Files never sent to a cloud model: secrets and credentials by name, and whatever the
`.nearcodeignore` files (gitignore syntax: `#` comments, `!` negation, `/` anchors, `**`, trailing
`/` for folders) from the workspace folder down to the file list.

Rules apply from the workspace folder down, as .gitignore files do: a monorepo root's
`.nearcodeignore` covers every sub-package, and a deeper file's rules come after (its `!negation`
re-includes a file its parent excluded, never one inside an excluded folder). Matching ignores
case: `.ENV`, `ID_RSA` or `Secrets.JSON` are the same files on a case-insensitive filesystem, and a
hostile repository must not slip one past the list by its spelling.

Shared: the language server's cloud hand-off and code-action list use it, and so does the
daemon's workspace index (a file the user keeps from the cloud model is not indexed for one).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

IGNORE_FILE = ".nearcodeignore"

BUILTIN_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.crt", "*.cer", "*.der", "*.csr", "*.jks", "*.keystore",
    "*.gpg", "*.asc", "*.ppk", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/", ".gnupg/",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd", ".pgpass", ".my.cnf",
    "credentials.json", "secrets.*",
    # cloud and cluster credentials, infrastructure state (which holds the secrets it created)
    ".aws/", ".azure/", ".kube/", "kubeconfig", "*.kubeconfig", ".docker/config.json",
    ".config/gcloud/", "*.tfstate", "*.tfstate.*", "*.tfvars",
    IGNORE_FILE,
)  # fmt: skip


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negate: bool
    directory_only: bool
    source: str
    base: str = ""  # the folder (relative to the list's root) whose ignore file holds the rule


def _compile(line: str, source: str, base: str = "") -> IgnoreRule | None:
    line = line.rstrip()
    if not line or line.startswith("#"):
        return None
    label = f"{source} pattern {line!r}"
    negate = line.startswith("!")
    line = line[1:] if negate else line
    line = line.replace("\\#", "#").replace("\\!", "!")
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    anchored = "/" in line  # gitignore: a slash anywhere but the end anchors to the file's folder
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
    return IgnoreRule(re.compile(f"^{prefix}{regex}$", re.IGNORECASE), negate, directory_only, label, base)


def _builtin_rules() -> list[IgnoreRule]:
    return [rule for p in BUILTIN_PATTERNS if (rule := _compile(p, "built-in deny list")) is not None]


@dataclass
class DenyList:
    """Rules relative to one root folder (the workspace folder)."""

    root: Path | None = None
    rules: list[IgnoreRule] = field(default_factory=_builtin_rules)

    @classmethod
    def load(cls, root: Path | None) -> DenyList:
        """The built-in rules plus `root`'s own `.nearcodeignore`."""
        deny = cls(root)
        return deny.with_ignore_file(root) if root is not None else deny

    @classmethod
    def for_file(cls, file: Path, workspace_root: Path) -> DenyList:
        """Every rule that applies to `file`: built-in, then each `.nearcodeignore` from the
        workspace folder down to the file's own folder (a monorepo root's rules included)."""
        deny = cls(workspace_root)
        folder = workspace_root
        deny = deny.with_ignore_file(folder)
        try:
            parts = file.parent.relative_to(workspace_root).parts
        except ValueError:
            return deny  # not under the workspace folder: reason() refuses it
        for part in parts:
            folder = folder / part
            deny = deny.with_ignore_file(folder)
        return deny

    def with_ignore_file(self, folder: Path) -> DenyList:
        """These rules followed by `folder`'s `.nearcodeignore` (for walking a tree top-down)."""
        path = folder / IGNORE_FILE
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
                return self
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return self
        base = ""
        if self.root is not None and folder != self.root:
            base = folder.relative_to(self.root).as_posix()
        source = f"{base}/{IGNORE_FILE}" if base else IGNORE_FILE
        added = [rule for line in text.splitlines() if (rule := _compile(line, source, base)) is not None]
        return DenyList(self.root, [*self.rules, *added])

    def reason_for(self, file: Path) -> str | None:
        """Why this absolute path may not be sent; None if it may."""
        if self.root is None:
            return self.reason(file.name)
        try:
            relative = file.relative_to(self.root)
        except ValueError:
            return f"{file} is outside the workspace folder {self.root}"
        return self.reason(relative.as_posix())

    def reason(self, relative_path: str) -> str | None:
        """Why this path (relative to the root) may not be sent; None if it may."""
        path = PurePosixPath(relative_path.replace("\\", "/").lstrip("/"))
        parts = [part for part in path.parts if part not in ("", ".")]
        if ".." in parts:
            return f"{relative_path} leaves the workspace folder"
        for depth in range(1, len(parts) + 1):
            candidate = "/".join(parts[:depth])
            is_dir = depth < len(parts)
            verdict = self._verdict(candidate, is_dir)
            if verdict is not None and is_dir:
                return verdict  # everything inside an excluded folder is excluded
            if not is_dir:
                return verdict
        return None

    def _verdict(self, candidate: str, is_dir: bool) -> str | None:
        verdict: str | None = None
        for rule in self.rules:
            if rule.directory_only and not is_dir:
                continue
            if rule.base:
                if not candidate.startswith(rule.base + "/"):
                    continue  # a sub-folder's rules apply only below it
                subject = candidate[len(rule.base) + 1 :]
            else:
                subject = candidate
            if rule.pattern.match(subject):
                verdict = None if rule.negate else f"{candidate}{'/' if is_dir else ''} matches the {rule.source}"
        return verdict


def workspace_root(file: Path, folders: Iterable[Path] = ()) -> Path:
    """The folder whose rules govern `file`: the innermost open workspace folder holding it; else
    the outermost folder with a `.git` or `.nearcodeignore` between the file and the home folder
    (a monorepo's root, not the nearest sub-package); else the file's own folder."""
    containing = [f for f in folders if file == f or f in file.parents]
    if containing:
        return max(containing, key=lambda f: len(f.parts))
    home = Path(os.path.expanduser("~"))
    best = file.parent
    for folder in [file.parent, *file.parent.parents]:
        if folder == home or folder == folder.parent:
            break
        if (folder / ".git").exists() or (folder / IGNORE_FILE).is_file():
            best = folder
    return best
