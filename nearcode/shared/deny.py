"""Files nearcode never reads into a model's context, never indexes and never sends to a cloud
model: .env files, keys, certificates and credentials (built in, matched case-insensitively, and
no project file can re-include them), and whatever `.nearcodeignore` files (gitignore syntax, see
nearcode/shared/ignore.py) list: the one at the project root, those in its subfolders, and those
in its parent folders up to the repository's top, so a monorepo's root file covers each package.

Shared by the language server (cloud hand-off) and the daemon (workspace index).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from nearcode.shared.ignore import IgnoreFile, IgnoreTree, compile_rule

IGNORE_FILE = ".nearcodeignore"

BUILTIN_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.crt", "*.cer", "*.der", "*.csr", "*.jks", "*.keystore",
    "*.gpg", "*.asc", "*.ppk", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd", ".pgpass", ".my.cnf",
    "credentials", "credentials.*", "secrets.*", "**/.aws/credentials", "**/.aws/config",
    "**/.kube/config", "**/.docker/config.json", "*.tfstate", "*.tfstate.*",
    IGNORE_FILE,
)  # fmt: skip

_BUILTIN = IgnoreFile(
    [rule for p in BUILTIN_PATTERNS if (rule := compile_rule(p, "built-in", ignore_case=True)) is not None]
)


class DenyList:
    def __init__(self, project: IgnoreTree | None) -> None:
        self.project = project

    @classmethod
    def load(cls, root: Path | None) -> DenyList:
        # Case-insensitive like the built-ins: on a deny list, a missed `Secrets/` costs more than
        # an extra file left out.
        return cls(IgnoreTree(root, IGNORE_FILE, ignore_case=True) if root is not None else None)

    def entry_reason(self, relative_path: str, is_dir: bool) -> str | None:
        """Why this one entry is denied, its parent folders not considered (walkers check those
        on the way down); None if it is not."""
        shown = relative_path + ("/" if is_dir else "")
        rule = _BUILTIN.decide(relative_path, is_dir)
        if rule is not None:
            return f"{shown} matches the {rule.source}"
        rule = self.project.decide(relative_path, is_dir) if self.project is not None else None
        if rule is not None and not rule.negate:
            return f"{shown} matches the {rule.source}"
        return None

    def reason(self, relative_path: str) -> str | None:
        """Why this path (relative to the project root) may not be read or sent; None if it may."""
        parts = PurePosixPath(relative_path.replace("\\", "/").lstrip("/")).parts
        for depth in range(1, len(parts) + 1):
            reason = self.entry_reason("/".join(parts[:depth]), is_dir=depth < len(parts))
            if reason is not None:
                return reason
        return None
