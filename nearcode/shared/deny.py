"""Files nearcode never reads into a model's context, never indexes and never sends to a cloud
model: .env files, keys, certificates and credentials (built in, matched case-insensitively, and
no project file can re-include them), and whatever `.nearcodeignore` files (gitignore syntax, see
nearcode/shared/ignore.py) list: the one at the project root, those in its subfolders, and those
in its parent folders up to the repository's top, so a monorepo's root file covers each package.

Matching ignores case, project patterns too: `.ENV`, `ID_RSA` or `Secrets.JSON` are the same files
on a case-insensitive filesystem, and a hostile repository must not slip one past the list by its
spelling. A symlinked or oversized `.nearcodeignore` is not read (nearcode/shared/ignore.py).

Shared by the language server (cloud hand-off, code-action list) and the daemon (workspace index).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from nearcode.shared.ignore import IgnoreFile, IgnoreTree, compile_rule

IGNORE_FILE = ".nearcodeignore"

BUILTIN_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.crt", "*.cer", "*.der", "*.csr", "*.jks", "*.keystore",
    "*.gpg", "*.asc", "*.ppk", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/", ".gnupg/",
    ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".htpasswd", ".pgpass", ".my.cnf",
    "credentials", "credentials.*", "secrets.*",
    # cloud and cluster credentials, infrastructure state (which holds the secrets it created)
    ".aws/", ".azure/", ".kube/", "kubeconfig", "*.kubeconfig", "**/.docker/config.json",
    ".config/gcloud/", "*.tfstate", "*.tfstate.*", "*.tfvars",
    IGNORE_FILE,
)  # fmt: skip

_BUILTIN = IgnoreFile(
    [rule for p in BUILTIN_PATTERNS if (rule := compile_rule(p, "built-in", ignore_case=True)) is not None]
)


class DenyList:
    def __init__(self, project: IgnoreTree | None) -> None:
        self.project = project

    @property
    def root(self) -> Path | None:
        return self.project.root if self.project is not None else None

    @classmethod
    def for_file(cls, file: Path, workspace_root: Path) -> DenyList:
        """The rules that govern `file` under `workspace_root` (every `.nearcodeignore` from the
        repository's top down to the file's folder: the tree reads them as it needs them)."""
        del file  # the tree finds the files on the way to it
        return cls.load(workspace_root)

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
        parts = [p for p in PurePosixPath(relative_path.replace("\\", "/").lstrip("/")).parts if p != "."]
        if ".." in parts:
            return f"{relative_path} leaves the workspace folder"
        for depth in range(1, len(parts) + 1):
            reason = self.entry_reason("/".join(parts[:depth]), is_dir=depth < len(parts))
            if reason is not None:
                return reason
        return None

    def reason_for(self, file: Path) -> str | None:
        """Why this absolute path may not be read or sent; None if it may."""
        if self.root is None:
            return self.reason(file.name)
        try:
            relative = file.relative_to(self.root)
        except ValueError:
            return f"{file} is outside the workspace folder {self.root}"
        return self.reason(relative.as_posix())


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
