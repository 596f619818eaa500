"""What the text around the cursor says without an index: `a.b` pairs, names a file uses without
defining or importing them, and which class a variable holds (`x = Cls(...)`, `x: Cls`)."""

from __future__ import annotations

import re
from collections import Counter

from nearcode.daemon.context.identifiers import identifiers


def attribute_pairs(text: str) -> dict[str, list[str]]:
    """`a.b` occurrences: a -> [b, ...] in order of first use."""
    pairs: dict[str, list[str]] = {}
    words = text.replace("\n", " ")
    start = 0
    while True:
        dot = words.find(".", start)
        if dot < 0:
            return pairs
        start = dot + 1
        left = identifiers(words[max(0, dot - 64):dot] + " ")
        right = identifiers(" " + words[dot + 1:dot + 65])
        if not left or not right or not words[dot - 1:dot].strip() or not words[dot + 1:dot + 2].strip():
            continue
        owner, member = left[-1], right[0]
        if words[:dot].endswith(owner) and words[dot + 1:].startswith(member):
            members = pairs.setdefault(owner, [])
            if member not in members:
                members.append(member)


def unresolved_names(text: str, known: set[str]) -> list[str]:
    """Names of `text` it neither defines nor imports, most used first: specific ones only (a
    capital, an underscore or 8 letters), as generic words are defined everywhere."""
    counts = Counter(
        name for name in identifiers(text)
        if name not in known and not name.startswith("__") and len(name) > 3
        and (name[0].isupper() or "_" in name or len(name) >= 8)
    )
    return [name for name, _ in counts.most_common()]


def assigned_classes(text: str, names: set[str]) -> dict[str, str]:
    """name -> the class it holds, for `name = Cls(...)`, `self.name = Cls(...)` and `name: Cls`
    in `text` (the last one written wins; a capitalised callee is taken for a class)."""
    found: list[tuple[int, str, str]] = []
    for pattern in (_CONSTRUCTED, _ANNOTATED):
        found += [(m.start(), m.group(1), m.group(2)) for m in pattern.finditer(text) if m.group(1) in names]
    return {name: cls for _, name, cls in sorted(found)}


_CONSTRUCTED = re.compile(r"(?:\bself\.|\b)([A-Za-z_]\w*)\s*=\s*(_*[A-Z]\w*)\s*\(")
_ANNOTATED = re.compile(r"(?:\bself\.|\b)([A-Za-z_]\w*)\s*:\s*['\"]?(_*[A-Z]\w*)")
