"""gitignore-syntax matching: `.gitignore`, `.nearcodeignore` and the built-in deny list.

Git's rules (gitignore(5)), which tests/workspace/test_ignore.py checks against `git check-ignore`:
blank lines and `#` comments are skipped, trailing spaces dropped unless escaped; `!` re-includes;
a trailing `/` matches folders only; a `/` at the start or in the middle anchors the pattern to
the folder of the file holding it, otherwise it matches a name at any depth below that folder;
`*`, `?` and `[...]` never match `/`; `**/`, `/**/` and a trailing `/**` span folders. The last
matching line of a file decides, a file deeper in the tree overrides a shallower one, and nothing
inside an ignored folder can be re-included (callers check parent folders first; walkers simply
do not descend into them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negate: bool
    directory_only: bool
    source: str  # for messages: "built-in pattern '.env'", ".gitignore pattern 'build/'"


def _strip_trailing_spaces(line: str) -> str:
    end = len(line)
    while end > 0 and line[end - 1] == " " and not (end >= 2 and line[end - 2] == "\\"):
        end -= 1
    return line[:end]


def _glob(segment: str) -> str:
    """One path segment of a pattern as a regex that never crosses `/`."""
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "\\" and i + 1 < len(segment):
            out.append(re.escape(segment[i + 1]))
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            j = i + 1
            if j < len(segment) and segment[j] in "!^":
                j += 1
            if j < len(segment) and segment[j] == "]":
                j += 1  # a `]` right after the opening bracket is literal
            while j < len(segment) and segment[j] != "]":
                j += 1
            if j >= len(segment):
                out.append(re.escape(char))
                i += 1
                continue
            body = segment[i + 1 : j].replace("\\", "\\\\")
            out.append(f"[^/{body[1:]}]" if body[:1] in ("!", "^") else f"[{body}]")
            i = j + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def compile_rule(line: str, source: str, *, ignore_case: bool = False) -> IgnoreRule | None:
    """One line of an ignore file as a rule; None for blank lines and comments."""
    line = _strip_trailing_spaces(line.rstrip("\r\n"))
    if not line or line.startswith("#"):
        return None
    label = f"{source} pattern {line!r}"
    negate = line.startswith("!")
    if negate or line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line  # a slash at the start or in the middle; trailing ones are gone
    segments = line.lstrip("/").split("/")
    parts = []
    for k, segment in enumerate(segments):
        last = k == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:.*/)?")
        else:
            parts.append(_glob(segment) + ("" if last else "/"))
    regex = ("" if anchored else "(?:.*/)?") + "".join(parts)
    flags = re.IGNORECASE if ignore_case else 0
    return IgnoreRule(re.compile(rf"\A(?:{regex})\Z", flags), negate, directory_only, label)


class IgnoreFile:
    """The rules of one ignore file (or a built-in list) and where they apply.

    `base` is the folder holding the file, relative to the matching root ("" for the root, or for a
    file above the root); `prefix` is the root's own path relative to a file above it
    ("packages/api/"), so a monorepo's top-level file sees the paths it was written for.
    """

    def __init__(self, rules: list[IgnoreRule], base: str = "", prefix: str = "") -> None:
        self.rules = tuple(rules)
        self.base = base
        self.prefix = prefix
        # One alternation answers "does anything here match?" for the common case of no match.
        self._any = (
            re.compile("|".join(f"(?:{r.pattern.pattern})" for r in rules), rules[0].pattern.flags)
            if rules and len({r.pattern.flags for r in rules}) == 1
            else None
        )

    @classmethod
    def parse(cls, text: str, source: str, *, ignore_case: bool = False, base: str = "", prefix: str = "") -> IgnoreFile:
        rules = [r for line in text.splitlines() if (r := compile_rule(line, source, ignore_case=ignore_case))]
        return cls(rules, base, prefix)

    def decide(self, relative: str, is_dir: bool) -> IgnoreRule | None:
        """The last rule matching `relative` (a path below the matching root), or None."""
        if self.base:
            if not relative.startswith(self.base + "/"):
                return None
            relative = relative[len(self.base) + 1 :]
        local = self.prefix + relative
        if self._any is not None and not self._any.match(local):
            return None
        for rule in reversed(self.rules):
            if rule.directory_only and not is_dir:
                continue
            if rule.pattern.match(local):
                return rule
        return None


def repository_top(folder: Path) -> Path | None:
    """The nearest folder at or above `folder` that holds `.git` (a folder or a worktree's file)."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


MAX_IGNORE_FILE_BYTES = 1_000_000


def _read(path: Path) -> str | None:
    """An ignore file's text; None for none, a symlink (a repository must not point it at a file
    elsewhere) or an oversized one."""
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_IGNORE_FILE_BYTES:
            return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    return None


class IgnoreTree:
    """Every ignore file named `filename` that applies below `root`: those in the root's parent
    folders up to the repository's top (a monorepo's root `.nearcodeignore` covers a package opened
    on its own), then those in the root and its subfolders, each read once when first needed."""

    def __init__(self, root: Path, filename: str, *, ignore_case: bool = False) -> None:
        self.root = root
        self.filename = filename
        self.ignore_case = ignore_case
        self._outer: list[IgnoreFile] = []  # shallowest first
        top = repository_top(root)
        if top is not None:
            if filename == ".gitignore":
                self._add_outer(top / ".git" / "info" / "exclude", top)
            for folder in reversed([root, *root.parents]):
                if folder != root and (folder == top or top in folder.parents):
                    self._add_outer(folder / filename, folder)
        self._inner: dict[str, IgnoreFile | None] = {}  # folder below root ("" = root) -> its file

    def _add_outer(self, path: Path, folder: Path) -> None:
        text = _read(path)
        if text is not None:
            prefix = self.root.relative_to(folder).as_posix() + "/" if folder != self.root else ""
            self._outer.append(IgnoreFile.parse(text, self.filename, ignore_case=self.ignore_case, prefix=prefix))

    def _file_in(self, folder: str) -> IgnoreFile | None:
        if folder not in self._inner:
            text = _read(self.root / folder / self.filename if folder else self.root / self.filename)
            self._inner[folder] = (
                IgnoreFile.parse(text, self.filename, ignore_case=self.ignore_case, base=folder)
                if text is not None
                else None
            )
        return self._inner[folder]

    def forget(self, folder: str | None = None) -> None:
        """Read the file in `folder` again when next needed (all of them for None)."""
        if folder is None:
            self._inner.clear()
        else:
            self._inner.pop(folder, None)

    def decide(self, relative: str, is_dir: bool) -> IgnoreRule | None:
        """The rule that decides about this one entry (deepest file first); parents not checked."""
        parts = relative.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            ignore_file = self._file_in("/".join(parts[:depth]))
            if ignore_file is not None and (rule := ignore_file.decide(relative, is_dir)) is not None:
                return rule
        for ignore_file in reversed(self._outer):
            if (rule := ignore_file.decide(relative, is_dir)) is not None:
                return rule
        return None

    def ignores(self, relative: str, is_dir: bool) -> bool:
        rule = self.decide(relative, is_dir)
        return rule is not None and not rule.negate
