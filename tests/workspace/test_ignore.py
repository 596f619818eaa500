"""gitignore matching (nearcode/shared/ignore.py) against git itself, and the deny list
(nearcode/shared/deny.py): case-insensitive built-ins no project file can re-include, and
`.nearcodeignore` files at every depth and above the root up to the repository's top."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nearcode.shared.deny import DenyList
from nearcode.shared.ignore import IgnoreTree

ROOT_GITIGNORE = r"""# comment
*.log
!keep.log
/build-out/
docs/**/draft.md
**/tmp_*
logs/
!logs/important.txt
data/*
!data/keep/
*.sw[op]
\#literal
a?c.txt
[!x]y.txt
cache/**
node/sub/
/anchored.txt
mid/dle.txt
""" + "trailing-space.txt\\ \n"  # an escaped trailing space belongs to the name
SUB_GITIGNORE = "*.gen.py\n!important.gen.py\n/local-only.py\nnested-dir/\n"
FILES = [
    "a.log", "keep.log", "src/app.log", "src/keep.log", "build-out/x.js", "src/build-out/x.js",
    "docs/draft.md", "docs/a/b/draft.md", "docs/a/final.md", "tmp_x.py", "src/deep/tmp_y/z.py",
    "logs/important.txt", "logs/other.txt", "data/raw.csv", "data/keep/ok.csv", "data/keep/more/ok.csv",
    "notes.swp", "notes.swo", "notes.swx", "#literal", "trailing-space.txt ", "trailing-space.txt",
    "abc.txt", "abbc.txt", "ay.txt", "xy.txt", "cache/a/b.bin", "src/cache", "node/sub/x.js", "node/subx/y.js",
    "anchored.txt", "src/anchored.txt", "mid/dle.txt", "x/mid/dle.txt",
    "sub/a.gen.py", "sub/important.gen.py", "sub/x/b.gen.py", "sub/local-only.py", "sub/x/local-only.py",
    "sub/nested-dir/f.py", "sub/deeper/c.log", "sub/deeper/d.py", "other/nested-dir/f.py",
    "secret-notes.txt", "src/secret-notes.txt", "src/main.py", "README.md",
]  # fmt: skip


def _tree(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(ROOT_GITIGNORE)
    (root / "sub").mkdir()
    (root / "sub" / ".gitignore").write_text(SUB_GITIGNORE)
    (root / "sub" / "deeper").mkdir()
    (root / "sub" / "deeper" / ".gitignore").write_text("!*.log\n")
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("secret-notes.txt\n")
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")


def _ignored_by_us(tree: IgnoreTree, relative: str) -> bool:
    parts = relative.split("/")
    folders = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
    return any(tree.ignores(folder, True) for folder in folders) or tree.ignores(relative, False)


def test_gitignore_matches_git_check_ignore(tmp_path: Path) -> None:
    _tree(tmp_path)
    answer = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"], cwd=tmp_path, input="\n".join(FILES) + "\n",
        capture_output=True, text=True,
    )
    by_git = set(answer.stdout.splitlines())
    tree = IgnoreTree(tmp_path, ".gitignore")
    by_us = {name for name in FILES if _ignored_by_us(tree, name)}
    assert by_us == by_git, f"only git: {sorted(by_git - by_us)}; only us: {sorted(by_us - by_git)}"
    # The cases that make the comparison meaningful are there on both sides.
    assert {"a.log", "logs/important.txt", "sub/a.gen.py", "secret-notes.txt"} <= by_git
    assert not {"keep.log", "sub/important.gen.py", "sub/deeper/c.log", "data/keep/ok.csv"} & by_git


def test_gitignore_of_a_monorepo_root_covers_a_package_opened_alone(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("packages/api/generated/\n*.pb.py\n")
    package = tmp_path / "packages" / "api"
    package.mkdir(parents=True)
    tree = IgnoreTree(package, ".gitignore")
    assert tree.ignores("generated", True) and tree.ignores("src/x.pb.py", False)
    assert not tree.ignores("src/x.py", False)


def test_builtin_deny_list_is_case_insensitive_and_covers_credentials() -> None:
    deny = DenyList.load(None)
    for path in [".ENV", "config/.Env.Local", "Secrets.yaml", "keys/ID_RSA", "home/.aws/credentials",
                 "ops/.kube/config", "infra/prod.tfstate", "infra/prod.tfstate.backup", ".pgpass", "TLS/Site.KEY",
                 "deploy/credentials", ".docker/config.json"]:
        assert deny.reason(path) is not None, path
    for path in ["src/environment.py", "config/settings.py", "kube/config.py", "aws/config.py", "docs/keys.md"]:
        assert deny.reason(path) is None, path


def test_a_project_file_cannot_re_include_a_builtin_denial(tmp_path: Path) -> None:
    (tmp_path / ".nearcodeignore").write_text("!.env\n!*.pem\nprivate/\n")
    deny = DenyList.load(tmp_path)
    assert deny.reason(".env") is not None and deny.reason("certs/a.pem") is not None
    assert deny.reason("Private/notes.py") is not None  # project patterns are case-insensitive too


def test_nearcodeignore_at_every_depth_and_above_the_root(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    (repository / ".nearcodeignore").write_text("packages/api/internal/\n*.secret.py\n")
    package = repository / "packages" / "api"
    (package / "billing").mkdir(parents=True)
    (package / "billing" / ".nearcodeignore").write_text("rates.py\n")
    deny = DenyList.load(package)
    assert deny.reason("internal/x.py") is not None
    assert deny.reason("handlers/token.secret.py") is not None
    assert deny.reason("billing/rates.py") is not None and deny.reason("rates.py") is None
    assert deny.reason("handlers/ok.py") is None
    # Without a repository around it, a folder reads only its own files, not its parents'.
    (tmp_path / ".nearcodeignore").write_text("*.py\n")
    alone = tmp_path / "alone"
    alone.mkdir()
    assert DenyList.load(alone).reason("x.py") is None
