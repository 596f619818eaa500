"""Where in a Python file a completion case may go, and how a case is cut (standard library only).

The rules are the shared bench's (../shared/bench/README.md, "Cases"), written anew here:

* a file qualifies at 1-150 kB, UTF-8, with "\\n" line breaks only (no "\\r", form feeds or other
  characters some tools split lines on), parsable, with at least 20 code lines, code being at
  least 35% of its non-blank lines and data-table lines not outnumbering code lines;
* a code line is not blank, not a comment, at least 8 characters, not inside a multi-line token,
  not only string literals (a docstring line) and not only literals (a data table);
* kinds: ``mid_line`` (cursor after one of the line's tokens, the rest of the line the truth),
  ``line_start`` (a statement line of a function body emptied down to its indentation),
  ``block`` (up to 6 lines from the first statement after a function's docstring).
The cursor always ends its line, which keeps the indentation an editor would have typed.
"""

from __future__ import annotations

import ast
import hashlib
import io
import random
import re
import tokenize
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring import utf16_len

KINDS = ("mid_line", "line_start", "block")
MIN_FILE_BYTES, MAX_FILE_BYTES = 1_000, 150_000
MIN_CODE_LINES = 20
MIN_LINE_CHARS = 8
BLOCK_MAX_LINES = 6
# Characters str.splitlines() or editors treat as line breaks: with one of them in a file, a
# client and a server could number the lines differently.
LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_LAYOUT_TOKENS = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT,
                  tokenize.ENDMARKER}
_STRING_LINE_OPS = set(",()[]+:")  # "a string", ("x" + "y"), ...: still only text
_TABLE_LINE_OPS = set(",()[]{}:-+")
_TABLE_NAMES = {"True", "False", "None"}


@dataclass
class FileFacts:
    """What one file offers: its lines and the places each kind of case can take."""

    text: str
    lines: list[str]
    cut_columns: dict[int, list[int]] = field(default_factory=dict)  # line -> mid_line cursor columns
    statement_lines: list[int] = field(default_factory=list)  # line_start candidates
    blocks: list[tuple[int, int]] = field(default_factory=list)  # (first, last) lines, inclusive

    def offers(self, kind: str) -> bool:
        return bool({"mid_line": self.cut_columns, "line_start": self.statement_lines,
                     "block": self.blocks}[kind])


def _only(tokens: list[tokenize.TokenInfo], types: AbstractSet[int], ops: AbstractSet[str],
          names: AbstractSet[str] = frozenset()) -> bool:
    return all(t.type in types or (t.type == tokenize.OP and t.string in ops)
               or (t.type == tokenize.NAME and t.string in names) for t in tokens)


def read_facts(path: Path) -> FileFacts | None:
    """The file's case positions, or None when the file does not qualify."""
    try:
        if not MIN_FILE_BYTES <= path.stat().st_size <= MAX_FILE_BYTES:
            return None
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if LINE_BREAKS.search(text):
        return None
    return python_facts(text)


def python_facts(text: str) -> FileFacts | None:
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, ValueError, RecursionError, tokenize.TokenError):
        return None
    lines = text.split("\n")
    spanned: set[int] = set()  # lines a multi-line token (a long string) touches
    by_line: dict[int, list[tokenize.TokenInfo]] = {}
    for tok in tokens:
        if tok.type in _LAYOUT_TOKENS:
            continue
        if tok.start[0] != tok.end[0]:
            spanned.update(range(tok.start[0] - 1, tok.end[0]))
        else:
            by_line.setdefault(tok.start[0] - 1, []).append(tok)
    code: set[int] = set()
    table_lines = 0
    facts = FileFacts(text, lines)
    for number, line in enumerate(lines):
        stripped, line_tokens = line.strip(), by_line.get(number, [])
        if (len(stripped) < MIN_LINE_CHARS or stripped.startswith("#") or number in spanned
                or not line_tokens or _only(line_tokens, {tokenize.STRING}, _STRING_LINE_OPS)):
            continue
        if _only(line_tokens, {tokenize.STRING, tokenize.NUMBER}, _TABLE_LINE_OPS, _TABLE_NAMES):
            table_lines += 1
            continue
        code.add(number)
        # after any token but the last, never inside one, leaving at least 2 characters to guess
        columns = {t.end[1] for t in line_tokens[:-1]
                   if line[: t.end[1]].strip() and len(line[t.end[1]:].strip()) >= 2}
        if columns:
            facts.cut_columns[number] = sorted(columns)
    non_blank = sum(1 for line in lines if line.strip())
    if len(code) < MIN_CODE_LINES or len(code) < 0.35 * non_blank or table_lines > len(code):
        return None
    _function_positions(tree, facts, code, by_line)
    return facts if any(facts.offers(kind) for kind in KINDS) else None


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip())


def _function_positions(tree: ast.Module, facts: FileFacts, code: set[int],
                        by_line: dict[int, list[tokenize.TokenInfo]]) -> None:
    lines, statements, blocks = facts.lines, set(), set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) or func.end_lineno is None:
            continue
        head, last_line = func.lineno - 1, func.end_lineno - 1
        for node in ast.walk(func):
            number = getattr(node, "lineno", 0) - 1
            if (isinstance(node, ast.stmt) and node is not func and head < number <= last_line
                    and _indent_width(lines[number]) == node.col_offset):
                statements.add(number)  # a statement that starts its line
        body = func.body[1:] if ast.get_docstring(func, clean=False) is not None else func.body
        if not body:
            continue
        first = body[0].lineno - 1
        if first <= head or _indent_width(lines[first]) != body[0].col_offset:
            continue  # on the signature's line, or after a ';'
        last = min(first + BLOCK_MAX_LINES - 1, last_line)
        while last > first and not lines[last].strip():
            last -= 1
        opening = lines[first].strip()
        first_tokens = by_line.get(first, [])
        if (not opening or opening.startswith("#")
                or (first_tokens and all(t.type == tokenize.STRING for t in first_tokens))
                or len("".join(line.strip() for line in lines[first:last + 1])) < 2 * MIN_LINE_CHARS):
            continue
        blocks.add((first, last))
    facts.statement_lines = sorted(statements & code)
    facts.blocks = sorted(blocks)


def cut_case(facts: FileFacts, kind: str, rng: random.Random, line: int | None = None) -> dict[str, Any]:
    """One case of `kind` (at `line`, or a random place of that kind): the masked text, cursor, truth.

    Checked: text[:cursor] + truth + text[cursor:] is the original file."""
    lines = facts.lines
    if kind == "mid_line":
        first = line if line is not None else rng.choice(sorted(facts.cut_columns))
        kept = lines[first][: rng.choice(facts.cut_columns[first])]
        last, truth = first, lines[first][len(kept):]
    elif kind == "line_start":
        first = line if line is not None else rng.choice(facts.statement_lines)
        kept = lines[first][: _indent_width(lines[first])]
        last, truth = first, lines[first][len(kept):]
    else:
        first, last = next(b for b in facts.blocks if b[0] == line) if line is not None else rng.choice(facts.blocks)
        kept = lines[first][: _indent_width(lines[first])]
        truth = "\n".join([lines[first][len(kept):], *lines[first + 1: last + 1]])
    masked = "\n".join([*lines[:first], kept, *lines[last + 1:]])
    cursor = sum(len(x) + 1 for x in lines[:first]) + len(kept)
    if masked[:cursor] + truth + masked[cursor:] != facts.text:
        raise AssertionError(f"case at line {first} does not rebuild its file")
    return {"kind": kind, "cursor": {"line": first, "character": utf16_len(kept)}, "ground_truth": truth,
            "orig_lines": [first, last], "src_sha256": hashlib.sha256(facts.text.encode()).hexdigest(),
            "text": masked}


def places(facts: FileFacts, kind: str) -> list[int]:
    """Every line a case of `kind` can start at (a block: its first line)."""
    if kind == "mid_line":
        return sorted(facts.cut_columns)
    if kind == "line_start":
        return list(facts.statement_lines)
    return [first for first, _ in facts.blocks]
