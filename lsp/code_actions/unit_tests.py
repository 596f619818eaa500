"""Unit-test suggestions: which framework and layout the project uses, and the test file's text.

Detection reads the project, never guesses from the language alone: pytest vs unittest from
conftest.py, pyproject and existing tests; jest vs vitest from package.json; JUnit 4 vs 5 from the
build file. The import of the code under test is computed from the paths (the model is told not to
write it, and any import of the symbol it writes anyway is dropped), so it is always right.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from nearcode.lsp.code_actions.symbols import Symbol
from nearcode.shared.languages import family, language_for_path, line_comment

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "package.json", "go.mod", "Cargo.toml", "pom.xml", "build.gradle", "build.gradle.kts", ".git")  # fmt: skip


@dataclass(frozen=True)
class TestPlan:
    framework: str  # pytest, unittest, jest, vitest, go, cargo, junit4, junit5
    root: Path
    test_path: Path
    header: str  # the start of a new test file (imports); "" when tests go into an existing file
    footer: str  # closes what the header opened (Java class, Rust module)
    exists: bool

    @property
    def comment(self) -> str:
        return line_comment(language_for_path(str(self.test_path)))


def project_root(path: Path, stop_at: Path | None = None) -> Path:
    """The nearest folder with a project marker, searched up to `stop_at` (the workspace folder)
    and never up to the home folder or above it: a stray ~/.git must not make the home folder
    the project (its copy would hold ~/.ssh)."""
    home = Path.home()
    for folder in [path.parent, *path.parent.parents]:
        if folder == home or folder == folder.parent:
            break
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
        if stop_at is not None and folder == stop_at:
            break
    return path.parent


def plan_tests(path: Path, source: str, symbol: Symbol, root: Path | None = None) -> TestPlan:
    root = root or project_root(path)
    language = family(symbol.language)
    if language == "python":
        return _python_plan(path, symbol, root)
    if language == "javascript":  # TypeScript and JSX too
        return _js_plan(path, symbol, root)
    if language == "go":
        package = re.search(r"^package\s+(\w+)", source, re.M)
        test_path = path.with_name(f"{path.stem}_test.go")
        header = f'package {package.group(1) if package else "main"}\n\nimport "testing"\n'
        return _plan("go", root, test_path, header, "")
    if language == "rust":  # cargo test: a #[cfg(test)] module at the end of the same file
        module = f"\n#[cfg(test)]\nmod tests_{symbol.name.lower()} {{\n    use super::*;\n\n"
        return TestPlan("cargo", root, path, module, "}\n", True)
    if language == "java":
        return _java_plan(path, source, symbol, root)
    raise ValueError(f"no test framework known for {language}")


def _plan(framework: str, root: Path, test_path: Path, header: str, footer: str) -> TestPlan:
    exists = test_path.exists()
    return TestPlan(framework, root, test_path, "" if exists else header, "" if exists else footer, exists)


def _python_plan(path: Path, symbol: Symbol, root: Path) -> TestPlan:
    tests_dir = next((root / name for name in ("tests", "test") if (root / name).is_dir()), None)
    existing = list(tests_dir.glob("test_*.py"))[:20] if tests_dir else list(path.parent.glob("test_*.py"))[:20]
    texts = [_read(p) for p in existing]
    config = _read(root / "pyproject.toml") + _read(root / "setup.cfg") + _read(root / "pytest.ini") + _read(root / "tox.ini")
    uses_unittest = any("unittest.TestCase" in t for t in texts)
    uses_pytest = (
        (root / "conftest.py").exists() or (tests_dir is not None and (tests_dir / "conftest.py").exists())
        or "pytest" in config or any("import pytest" in t or re.search(r"^def test_", t, re.M) for t in texts)
    )  # fmt: skip
    framework = "unittest" if uses_unittest and not uses_pytest else "pytest"
    test_path = (tests_dir or path.parent) / f"test_{path.stem}.py"
    name = symbol.parent or symbol.name
    import_line = f"from {python_module(path, root)} import {name}\n"
    header = ("import unittest\n\n" if framework == "unittest" else "") + import_line
    plan = _plan(framework, root, test_path, header, "")
    if plan.exists and import_line.strip() not in _read(test_path):
        plan = TestPlan(framework, root, test_path, import_line, "", True)  # tests need the import
    return plan


def python_module(path: Path, root: Path) -> str:
    """The dotted module of `path`, importable from the project root (or its src/ layout)."""
    base = root / "src" if (root / "src").is_dir() and root / "src" in path.parents else root
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _js_plan(path: Path, symbol: Symbol, root: Path) -> TestPlan:
    package = _read(root / "package.json")
    try:
        data = json.loads(package) if package else {}
    except json.JSONDecodeError:
        data = {}
    deps = {**data.get("dependencies", {}), **data.get("devDependencies", {})}
    framework = "vitest" if "vitest" in deps else "jest"
    nearby = [p.name for p in path.parent.glob("*.*.*")] + [p.name for p in (path.parent / "__tests__").glob("*")]
    infix = "spec" if sum(".spec." in n for n in nearby) > sum(".test." in n for n in nearby) else "test"
    folder = path.parent / "__tests__" if (path.parent / "__tests__").is_dir() else path.parent
    test_path = folder / f"{path.stem}.{infix}{path.suffix}"
    relative = os.path.relpath(path.with_suffix(""), folder)
    relative = relative if relative.startswith(".") else f"./{relative}"
    name = symbol.parent or symbol.name
    header = "import { describe, it, expect } from 'vitest';\n" if framework == "vitest" else ""
    header += f"import {{ {name} }} from '{relative}';\n"
    return _plan(framework, root, test_path, header, "")


def _java_plan(path: Path, source: str, symbol: Symbol, root: Path) -> TestPlan:
    build = _read(root / "pom.xml") + _read(root / "build.gradle") + _read(root / "build.gradle.kts")
    junit4 = ("junit:junit" in build or "<artifactId>junit</artifactId>" in build) and "junit-jupiter" not in build
    text = str(path)
    test_file = Path(text.replace("/src/main/java/", "/src/test/java/")) if "/src/main/java/" in text else path
    class_name = symbol.parent or symbol.name
    test_path = test_file.with_name(f"{class_name}Test.java")
    package = re.search(r"^package\s+([\w.]+);", source, re.M)
    imports = (
        "import org.junit.Test;\nimport static org.junit.Assert.*;\n" if junit4
        else "import org.junit.jupiter.api.Test;\nimport static org.junit.jupiter.api.Assertions.*;\n"
    )  # fmt: skip
    header = (f"package {package.group(1)};\n\n" if package else "") + imports + f"\nclass {class_name}Test {{\n"
    return _plan("junit4" if junit4 else "junit5", root, test_path, header, "}\n")


FRAMEWORK_WORDS = {
    "pytest": "pytest test functions (def test_…)",
    "unittest": "a unittest.TestCase class",
    "jest": "jest tests (describe/it/expect)",
    "vitest": "vitest tests (describe/it/expect)",
    "go": "Go test functions (func TestX(t *testing.T))",
    "cargo": "Rust #[test] functions",
    "junit4": "JUnit 4 @Test methods",
    "junit5": "JUnit 5 @Test methods",
}


def tests_messages(symbol: Symbol, plan: TestPlan) -> list[dict[str, str]]:
    """A tiny prompt: small models write better tests for less code and fewer instructions."""
    code = "\n".join(symbol.text.split("\n")[:60])
    name = symbol.parent or symbol.name
    return [
        {"role": "system", "content": "You write short, correct unit tests."},
        {
            "role": "user",
            "content": (
                f"Write 2 short {FRAMEWORK_WORDS[plan.framework]} for `{symbol.name}`. "
                f"`{name}` is already imported: do not import it. Reply with code only.\n\n```\n{code}\n```"
            ),
        },
    ]


def clean_tests(raw: str, symbol: Symbol, plan: TestPlan) -> str:
    """The model's tests without fences, without its (wrong) import of the code under test, and for
    Python cut to the longest prefix that parses (a reply cut by max_tokens ends mid-statement)."""
    fence = re.search(r"```[\w+-]*\n(.*?)(?:```|$)", raw, re.S)
    text = fence.group(1) if fence else raw
    name = symbol.parent or symbol.name
    kept = []
    for line in text.split("\n"):
        if re.match(rf"^\s*(from\s+\S+\s+import\s+.*\b{re.escape(name)}\b|import\s+{{?.*\b{re.escape(name)}\b.*from)", line):
            continue
        if plan.framework in ("go", "junit4", "junit5") and re.match(r"^\s*(package|import)\b", line):
            continue  # the header has them
        if plan.framework in ("jest", "vitest") and re.match(r"^\s*import\b", line):
            continue
        kept.append(line)
    text = "\n".join(kept).strip("\n")
    if plan.framework in ("pytest", "unittest"):
        text = _longest_parsing_prefix(text)
    return text.rstrip() + "\n" if text.strip() else ""


def has_tests(text: str, framework: str) -> bool:
    patterns = {
        "pytest": r"^\s*def test_\w*\(", "unittest": r"^\s*def test_\w*\(self",
        "jest": r"\b(it|test)\(", "vitest": r"\b(it|test)\(", "go": r"^func Test\w*\(t \*testing\.T\)",
        "cargo": r"#\[test\]", "junit4": r"@Test", "junit5": r"@Test",
    }  # fmt: skip
    return re.search(patterns[framework], text, re.M) is not None


def _longest_parsing_prefix(text: str) -> str:
    lines = text.split("\n")
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
        except SyntaxError:
            continue
        return candidate
    return ""


def compose(plan: TestPlan, tests: str, banner: str) -> str:
    """The text to add: header (new file), a banner comment with the run's outcome, the tests."""
    indent = "    " if plan.framework in ("cargo", "junit4", "junit5") else ""
    body = "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in tests.rstrip("\n").split("\n"))
    comment = f"{indent}{plan.comment} {banner}\n"
    lead = "\n\n" if plan.exists and plan.framework in ("pytest", "unittest") else "\n"
    if plan.header and not plan.exists:
        return plan.header + "\n\n" + comment + body + plan.footer
    return plan.header + lead + comment + body + plan.footer


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return ""
