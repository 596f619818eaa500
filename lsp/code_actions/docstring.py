"""Docstrings and doc comments: style detection, a lenient parser, rendering, the signature check.

The model's answer is never pasted as is. It is parsed into `DocParts` (summary, one description
per parameter, what is returned), checked against the signature from tree-sitter, repaired
(parameters that do not exist are dropped, order follows the signature) and rendered in the style
the file already uses. A docstring that still misses a parameter is not offered: the command asks
the model once more for just the missing ones (lsp/code_actions/handlers.py) before giving up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from nearcode.lsp.code_actions.symbols import Symbol
from nearcode.shared.languages import family

PYTHON_STYLES = ("google", "numpy", "rest")
# Keyed by language family (nearcode/shared/languages.py): TypeScript and JSX write JSDoc too.
STYLE_BY_FAMILY = {"javascript": "jsdoc", "go": "godoc", "rust": "rustdoc", "java": "javadoc"}


@dataclass
class DocParts:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)  # name -> description, in document order
    returns: str = ""


@dataclass(frozen=True)
class SignatureCheck:
    unknown: tuple[str, ...]  # documented, not in the signature
    missing: tuple[str, ...]  # in the signature, not documented

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.missing


def detect_style(source: str, language: str) -> str:
    """The docstring convention this file already uses; Google for Python files without one."""
    if language != "python":
        return STYLE_BY_FAMILY.get(family(language), "jsdoc")
    votes = {
        "google": len(re.findall(r"^\s*(Args|Arguments|Returns|Raises|Yields):\s*$", source, re.M)),
        "numpy": len(re.findall(r"^\s*(Parameters|Returns|Raises|Yields)\s*\n\s*-{3,}\s*$", source, re.M)),
        "rest": len(re.findall(r"^\s*:(param|type|returns?|rtype|raises)\b", source, re.M)),
    }
    best = max(votes, key=lambda style: votes[style])
    return best if votes[best] else "google"


# ---------------------------------------------------------------- cleaning and parsing

_FENCE = re.compile(r"```[\w+-]*\n?(.*?)(?:```|$)", re.S)
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields|Raises|Throws|Examples?|Notes?|See Also|Attributes|# ?\w+)\s*:?\s*$",
    re.I,
)
_REST_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")
_TAG_PARAM = re.compile(r"^\s*@param\s+(?:\{[^}]*\}\s*)?\[?(\w+)(?:=[^\]]*)?\]?(?:\s+-\s+|\s+|$)(.*)$")
_TAG_RETURN = re.compile(r"^\s*[:@]returns?(?:\s+\{[^}]*\})?\s*:?\s*(.*)$")
_OTHER_TAG = re.compile(r"^\s*[:@](type|rtype|raises?|throws|example|see|since|deprecated|template|typedef)\b")
_ENTRY = re.compile(r"^\s*(?:[*-]\s+)?`?(\w+)`?\s*(?:\([^)]*\))?\s*(?::|-|—)\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^(\w+)\s*(?::\s*.*)?$")


def clean_model_text(raw: str) -> str:
    """The docstring's content from whatever the model wrapped it in (fences, quotes, comment marks)."""
    text = raw.replace("\r\n", "\n")
    if re.fullmatch(r"\s*`{1,3}[\w+-]*\s*", text):
        return ""  # the start of a code fence, still streaming in
    fence = _FENCE.search(text)
    if fence:
        text = fence.group(1)
    for quote in ('"""', "'''"):
        if quote in text:
            after = text.split(quote, 1)[1]
            text = after.split(quote, 1)[0]
            break
    if "/**" in text:
        text = text.split("/**", 1)[1].split("*/", 1)[0]
    lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(("def ", "function ", "func ", "fn ", "pub fn ", "class ", "```")):
            break  # the model echoed the code: the doc has ended
        lines.append(re.sub(r"^\s*(?:///?|\*(?!\*)|\*/)\s?", "", line) if re.match(r"^\s*(//|\*)", line) else line)
    return _dedent("\n".join(lines)).strip()


def parse_doc(text: str) -> DocParts:
    """Summary, parameters and return description from any of the supported styles."""
    return _DocReader(text.split("\n")).read()


Section = Literal["", "description", "params", "returns", "other", "tags", "returns-tag"]


@dataclass
class _DocReader:
    """parse_doc's reading, line by line: the section a line is in decides what it adds to."""

    lines: list[str]
    parts: DocParts = field(default_factory=DocParts)
    summary: list[str] = field(default_factory=list)
    section: Section = ""
    entry_indent: int | None = None  # indentation of the current section's entries
    current: str = ""  # the parameter whose description continues on the next lines

    def read(self) -> DocParts:
        for index, line in enumerate(self.lines):
            self._line(index, line)
        self.parts.summary = " ".join(self.summary).strip()
        return self.parts

    def _line(self, index: int, line: str) -> None:
        stripped = line.strip()
        if re.fullmatch(r"-{3,}|={3,}", stripped):
            return  # NumPy underline
        if self._tag(line) or self._section_header(index, line, stripped):
            return
        if not stripped:
            if self.section == "" and self.summary:
                self.section = "description"
            return
        if self.section in ("tags", "returns-tag"):
            self._tag_continues(stripped)
        elif self.section == "params":
            self._param_entry(line, stripped)
        elif self.section == "returns":
            self._returns(index, stripped)
        elif self.section == "":
            self.summary.append(stripped)
        elif self.section == "description":
            self._returns_sentence(stripped)  # Go: a "Returns …" sentence

    def _tag(self, line: str) -> bool:
        """`:param x:` / `@param x`, `@returns`, and tags that say nothing we keep (`:raises:`)."""
        tag = _REST_PARAM.match(line) or _TAG_PARAM.match(line)
        if tag is not None:
            self.section, self.current = "tags", tag.group(1)
            self.parts.params[self.current] = tag.group(2).strip()
            return True
        if (ret := _TAG_RETURN.match(line)) is not None:
            self.section, self.current, self.parts.returns = "returns-tag", "", ret.group(1).strip()
            return True
        if _OTHER_TAG.match(line):
            self.section, self.current = "other", ""
            return True
        return False

    def _section_header(self, index: int, line: str, stripped: str) -> bool:
        """`Args:`, NumPy's underlined `Parameters`, Markdown's `# Arguments`."""
        header = _SECTION.match(line)
        following = self.lines[index + 1] if index + 1 < len(self.lines) else ""
        underlined = re.fullmatch(r"\s*-{3,}\s*", following) is not None
        if not header or not (stripped.endswith(":") or underlined or stripped.startswith("#")):
            return False
        name = header.group(1).lower().lstrip("# ")
        self.section = (
            "params" if name in ("args", "arguments", "parameters", "params")
            else "returns" if name in ("return", "returns", "yields") else "other"
        )  # fmt: skip
        self.entry_indent, self.current = None, ""
        return True

    def _tag_continues(self, stripped: str) -> None:
        if self.current:
            self.parts.params[self.current] = (self.parts.params[self.current] + " " + stripped).strip()
        elif self.section == "returns-tag":
            self.parts.returns = (self.parts.returns + " " + stripped).strip()

    def _param_entry(self, line: str, stripped: str) -> None:
        """A new `name: description` / NumPy `name : type` entry, or the current one's next line."""
        width = _indent_width(line)
        if self.entry_indent is not None and width > self.entry_indent:
            if self.current:
                self.parts.params[self.current] = (self.parts.params[self.current] + " " + stripped).strip()
            return
        entry = _ENTRY.match(line)
        numpy = _NUMPY_ENTRY.match(stripped)
        if entry is None and numpy is None:
            self.section = "description"  # prose after the list
            self._returns_sentence(stripped)
            return
        self.entry_indent = width
        self.current = entry.group(1) if entry else numpy.group(1) if numpy else ""
        self.parts.params[self.current] = entry.group(2).strip() if entry else ""

    def _returns(self, index: int, stripped: str) -> None:
        width = _indent_width(self.lines[index])
        if self.entry_indent is None:
            self.entry_indent = width
        following = self.lines[index + 1] if index + 1 < len(self.lines) else ""
        if width == self.entry_indent and following.strip() and _indent_width(following) > width and not self.parts.returns:
            return  # NumPy: a type line above the indented description
        self.parts.returns = (self.parts.returns + " " + stripped).strip()

    def _returns_sentence(self, stripped: str) -> None:
        if stripped.startswith("Returns ") and not self.parts.returns:
            self.parts.returns = stripped[len("Returns ") :]


# ---------------------------------------------------------------- check and repair


def described(text: str) -> bool:
    """A real description: not empty and not a skeleton placeholder the model left in."""
    text = text.strip()
    return bool(text) and not re.fullmatch(r"<[^>]*>\.?", text)


def check_signature(parts: DocParts, symbol: Symbol) -> SignatureCheck:
    documented = [name for name in parts.params if described(parts.params[name])]
    return SignatureCheck(
        unknown=tuple(name for name in parts.params if name not in symbol.params),
        missing=tuple(name for name in symbol.params if name not in documented),
    )


def repair(parts: DocParts, symbol: Symbol) -> DocParts:
    """Drop parameters the signature does not have; order the rest as the signature does."""
    params = {name: parts.params[name].strip() for name in symbol.params if described(parts.params.get(name, ""))}
    summary = parts.summary.strip() if described(parts.summary) else ""
    if summary and not summary.endswith((".", "!", "?")):
        summary += "."
    if symbol.language == "go" and summary and not summary.startswith(symbol.name + " "):
        summary = f"{symbol.name} {summary[0].lower()}{summary[1:]}"  # Go: the comment starts with the name
    returns = parts.returns.strip() if symbol.returns_value and described(parts.returns) else ""
    return DocParts(summary=summary, params=params, returns=returns)


# ---------------------------------------------------------------- rendering


def render_body(parts: DocParts, style: str) -> list[str]:
    """The doc's lines without quotes or comment marks."""
    lines = [parts.summary] if parts.summary else []
    params, returns = parts.params, parts.returns
    if style == "google":
        if params:
            lines += ["", "Args:", *(f"    {name}: {text}" for name, text in params.items())]
        if returns:
            lines += ["", "Returns:", f"    {returns}"]
    elif style == "numpy":
        if params:
            lines += ["", "Parameters", "----------"]
            for name, text in params.items():
                lines += [name, f"    {text}"]
        if returns:
            lines += ["", "Returns", "-------", "object", f"    {returns}"]
    elif style == "rest":
        if params or returns:
            lines.append("")
        lines += [f":param {name}: {text}" for name, text in params.items()]
        lines += [f":returns: {returns}"] if returns else []
    elif style in ("jsdoc", "javadoc"):
        if params or returns:
            lines.append("")
        lines += [f"@param {name} {text}" for name, text in params.items()]
        lines += [f"@{'returns' if style == 'jsdoc' else 'return'} {returns}"] if returns else []
    elif style == "rustdoc":
        if params:
            lines += ["", "# Arguments", "", *(f"* `{name}` - {text}" for name, text in params.items())]
        if returns:
            lines += ["", "# Returns", "", returns]
    elif style == "godoc":
        if params:
            lines += ["", "Parameters:", *(f"  - {name}: {text}" for name, text in params.items())]
        if returns:
            lines += ["", f"Returns {returns[0].lower()}{returns[1:]}"]
    return lines


def render_doc(parts: DocParts, style: str, symbol: Symbol) -> str:
    """The complete doc block, indented for its place, ending with a newline."""
    body = render_body(parts, style)
    if style in PYTHON_STYLES:
        indent = symbol.body_indent
        if len(body) <= 1:
            return f'{indent}"""{body[0] if body else ""}"""\n'
        inner = [f"{indent}{line}" if line else "" for line in body[1:]]
        return "\n".join([f'{indent}"""{body[0]}', *inner, f'{indent}"""']) + "\n"
    indent = symbol.indent
    if style in ("jsdoc", "javadoc"):
        return "\n".join([f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in body), f"{indent} */"]) + "\n"
    mark = "///" if style == "rustdoc" else "//"
    return "\n".join(f"{indent}{mark} {line}".rstrip() for line in body) + "\n"


@dataclass(frozen=True)
class DocPlacement:
    """Where the doc goes: replace whole lines [start_line, end_line) (equal: insert)."""

    start_line: int
    end_line: int


def placement(symbol: Symbol, replace_existing: bool) -> DocPlacement:
    if symbol.existing_doc is not None and replace_existing:
        return DocPlacement(symbol.existing_doc.start_line, symbol.existing_doc.end_line + 1)
    line = symbol.body_line if symbol.language == "python" else symbol.doc_anchor_line
    return DocPlacement(line, line)


# ---------------------------------------------------------------- prompts

_ASK_STYLE = {
    "google": "a Google-style docstring", "numpy": "a Google-style docstring", "rest": "a Google-style docstring",
    "jsdoc": "a JSDoc comment", "javadoc": "a Javadoc comment", "rustdoc": "a rustdoc comment",
    "godoc": "a Go doc comment",
}  # fmt: skip


def docstring_messages(symbol: Symbol, style: str) -> list[dict[str, str]]:
    """A tiny prompt naming the parameters. Python files always ask for Google style (what small
    models write best); the parser reads any style and the renderer writes the file's own."""
    code = "\n".join(symbol.text.split("\n")[:40])
    kind = "class" if symbol.kind == "class" else "function"
    sections = []
    if symbol.params:
        sections.append(f"a section listing the parameters {', '.join(symbol.params)}")
    if symbol.returns_value:
        sections.append("a Returns section")
    detail = f", with {' and '.join(sections)}" if sections else ""
    return [
        {"role": "system", "content": "You write short, precise code documentation."},
        {
            "role": "user",
            "content": f"Write {_ASK_STYLE[style]} for this {kind}{detail}. "
            f"Reply with the docstring text only.\n\n```\n{code}\n```",
        },
    ]


def missing_params_messages(symbol: Symbol, missing: tuple[str, ...]) -> list[dict[str, str]]:
    code = "\n".join(symbol.text.split("\n")[:40])
    lines = "\n".join(f"{name}: <what it is>" for name in missing)
    return [
        {"role": "system", "content": "You write short, precise code documentation."},
        {"role": "user", "content": f"Describe each parameter in a few words. Reply with only these lines filled in:\n{lines}\n\n```\n{code}\n```"},
    ]


def parse_param_lines(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in clean_model_text(text).split("\n"):
        entry = _ENTRY.match(line)
        if entry and entry.group(2).strip():
            found[entry.group(1)] = entry.group(2).strip()
    return found


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _dedent(text: str) -> str:
    lines = text.split("\n")
    # The first line often follows the opening quote directly: dedent by the others.
    widths = [_indent_width(line) for line in lines[1:] if line.strip()]
    cut = min(widths) if widths else 0
    return "\n".join([lines[0].strip(), *(line[cut:] for line in lines[1:])])
