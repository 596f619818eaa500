"""LSP language ids nearcode completes, and what it needs to know about each."""

from __future__ import annotations

from pathlib import PurePosixPath

# language id -> file suffixes (for files the editor did not name, e.g. `nearcode complete`).
LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "typescript": (".ts", ".mts", ".cts"),
    "typescriptreact": (".tsx",),
    "javascript": (".js", ".mjs", ".cjs"),
    "javascriptreact": (".jsx",),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
    "csharp": (".cs",),
    "ruby": (".rb",),
    "php": (".php",),
    "kotlin": (".kt",),
    "swift": (".swift",),
    "lua": (".lua",),
    "shellscript": (".sh", ".bash"),
}


def language_for_path(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    for language, suffixes in LANGUAGES.items():
        if suffix in suffixes:
            return language
    return "plaintext"
