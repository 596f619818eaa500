"""Identifiers in code, and how much two pieces of code share (the score context is ranked by).

Like Copilot's neighbouring-tab snippets and llama.vscode's chunk ring, similarity is the overlap of
identifier sets (Jaccard): cheap, language-agnostic, and good at finding code that talks about the
same things. Names are also split into lowercase subwords (`RootValidatorDecoratorInfo` ->
root, validator, decorator, info) so a definition can match the words around the cursor before the
user has typed its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Keywords and names every file of a language uses: they say nothing about what code is about.
COMMON_WORDS = frozenset(
    ["and", "as", "assert", "async", "await", "break", "case", "catch", "class", "const", "continue", "def", "default", "del", "delete", "do", "elif", "else", "enum", "except", "export", "extends", "false", "final", "finally", "fn", "for", "from", "func", "function", "go", "if", "impl", "import", "in", "interface", "is", "lambda", "let", "match", "mod", "module", "mut", "new", "nil", "none", "nonlocal", "not", "null", "or", "package", "pass", "private", "protected", "pub", "public", "raise", "return", "self", "static", "struct", "super", "switch", "this", "throw", "throws", "true", "try", "type", "typeof", "use", "var", "void", "while", "with", "yield", "int", "str", "bool", "float", "bytes", "list", "dict", "set", "tuple", "object", "any", "string", "number", "boolean", "len", "print", "range", "isinstance", "getattr", "setattr", "hasattr"]
)


def identifiers(text: str) -> list[str]:
    """Identifiers of `text` in order, without keywords and one-letter names."""
    return [
        word
        for word in _IDENTIFIER.findall(text)
        if len(word) > 1 and word.lower() not in COMMON_WORDS
    ]


def identifier_set(text: str) -> frozenset[str]:
    return frozenset(identifiers(text))


def subwords(name: str) -> tuple[str, ...]:
    """Lowercase words of an identifier: snake_case, camelCase and ACRONYMCase split, a plural's
    `s` dropped (`_decorators` matches `DecoratorInfo`)."""
    words: list[str] = []
    for part in name.split("_"):
        words.extend(_singular(w.lower()) for w in _SUBWORD.findall(part))
    return tuple(w for w in words if len(w) > 1 and w not in COMMON_WORDS)


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def subword_set(names: Iterable[str]) -> frozenset[str]:
    return frozenset(w for name in names for w in subwords(name))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def overlap(part: frozenset[str], around: frozenset[str]) -> float:
    """Share of `part`'s words that occur around the cursor (for short parts such as a signature,
    where Jaccard would punish the window's size)."""
    if not part:
        return 0.0
    return len(part & around) / len(part)
