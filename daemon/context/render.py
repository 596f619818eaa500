"""Definitions as the model reads them: stub-like source (signature, first doc line, no body).

A stub looks like code the model has seen (Python `.pyi` files, TypeScript declarations, C
headers), so it reads the names, parameters and types without being tempted to continue a body.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from nearcode.daemon.context.index_api import Definition
from nearcode.shared.languages import blocks, language_for_path

# How much of a definition a stub shows. The context fitter falls back from one form to the next
# when a stub does not fit its share, before cutting lines off its end: every member's name says
# more than the first members' docs and types (the answer is often a member further down).
StubForm = Literal["full", "undocumented", "short"]


def render_definitions(definitions: list[Definition], language: str, form: StubForm = "full") -> str:
    """The first definition with the ones after it as its members (a class and its methods), or
    each on its own when they are unrelated. "undocumented": without doc lines; "short": also
    without parameter types, long defaults and long return types (Python; other languages keep
    their signatures)."""
    if not definitions:
        return ""
    head, members = definitions[0], definitions[1:]
    if form != "full":
        head, members = _undocumented(head), [_undocumented(m) for m in members]
    # A brace language (or Python) writes its stubs its way; for any other the definition's file decides.
    stub_language = language if language == "python" or blocks(language) == "braces" else language_for_path(head.path)
    if stub_language == "python":
        if form == "short":
            head = _shortened(head)
            # A property's setter or deleter repeats its name: the property says it already.
            members = [_shortened(m) for m in members
                       if not any(d.endswith((".setter", ".deleter")) for d in _decorators(m.signature, "def ")[0])]
        return _python(head, members)
    return _braces(head, members, language)


def _undocumented(definition: Definition) -> Definition:
    return dataclasses.replace(definition, doc="") if definition.doc else definition


def _shortened(definition: Definition) -> Definition:
    signature, kind = definition.signature, definition.kind
    if kind in ("function", "method"):
        if _is_property(signature):  # the attribute it reads as
            kind = "attribute"
        signature = short_python_signature(signature)
    elif kind in ("attribute", "constant", "variable"):
        signature = short_python_assignment(signature)
    elif kind == "class":
        decorators, header = _decorators(signature, "class ")
        kept = [d.split("(", 1)[0] for d in decorators if d.split("(", 1)[0] in _KEPT_DECORATORS]
        signature = "\n".join([*kept, header])
    changed = signature != definition.signature or kind != definition.kind
    return dataclasses.replace(definition, signature=signature, kind=kind) if changed else definition


SHORT_PART_CHARS = 12  # a default or return type longer than this is left out of a short stub
# Parameters a short signature names before `...`: a constructor of 50 options (uvicorn's Config)
# otherwise outgrew the share alone, and its class was shown as its header line.
SHORT_MAX_PARAMETERS = 6
# Decorators a short class stub keeps: a dataclass's fields are its constructor's parameters. A property
# becomes the attribute it reads as; any other decorator (`@envwrap(...)` on tqdm's `__init__`,
# `@staticmethod`, `@final`) costs tokens a member's name needs more, and a stub cut between a
# decorator and its def ended on a line that said nothing.
_KEPT_DECORATORS = ("@dataclass",)
_PROPERTY_DECORATORS = ("@property", "@cached_property", "@functools.cached_property")


def short_python_signature(signature: str) -> str:
    """`def f(self, x: int, y: str | None = None) -> Result[int]:` as `def f(self, x, y=None) -> Result[int]:`:
    parameter names (what a call needs most, the first SHORT_MAX_PARAMETERS), short defaults as
    written and long ones as `...`, the return type when short and not None; a property as
    `name: <short type>`."""
    def_at = signature.find("def ")
    open_at = signature.find("(", def_at)
    if def_at < 0 or open_at < 0:
        return signature
    pieces, close_at = _top_level_split(signature, open_at + 1)
    if close_at < 0:  # cut at the index's length limit: the whole parameters, then `...`
        pieces, close_at = [*pieces, " ..."], len(signature)
    decorators, definition = _decorators(signature, "def ")  # decorators go: only `def` on
    returns = signature[close_at + 1 :].strip().removesuffix(":").strip()
    short_return = returns.startswith("->") and len(returns) - 2 <= SHORT_PART_CHARS + 2 and returns != "-> None"
    if any(d in _PROPERTY_DECORATORS for d in decorators):
        name = signature[def_at + 4 : open_at].strip()
        return f"{name}: {returns[2:].strip() if short_return else '...'}"
    params = list(dict.fromkeys(_short_parameter(piece) for piece in pieces if piece.strip()))
    receivers = 1 if params and params[0] in ("self", "cls") else 0
    if len(params) > receivers + SHORT_MAX_PARAMETERS:
        params = [*params[: receivers + SHORT_MAX_PARAMETERS], "..."]
    arrow = " " + returns if short_return else ""
    return f"{signature[len(signature) - len(definition) : open_at + 1]}{', '.join(params)}){arrow}:"


def _decorators(signature: str, keyword: str) -> tuple[list[str], str]:
    """The decorator lines above the line where `keyword` (`def `, `class `) starts, stripped (a
    long decorator's continuation lines included), and the signature from that line on."""
    at = signature.find(keyword)
    start = signature.rfind("\n", 0, at) + 1 if at >= 0 else 0
    return [line.strip() for line in signature[:start].split("\n") if line.strip()], signature[start:]


def _is_property(signature: str) -> bool:
    return any(d in _PROPERTY_DECORATORS for d in _decorators(signature, "def ")[0])


def _short_parameter(piece: str) -> str:
    name, equals, default = _split_at_equals(piece.strip())
    name = name.split(":", 1)[0].strip()
    if not equals:
        return name
    default = default.strip()
    return f"{name}={default if len(default) <= SHORT_PART_CHARS else '...'}"


def _split_at_equals(text: str) -> tuple[str, str, str]:
    """`str.partition("=")` at the first `=` outside brackets (`x: Annotated[int, Field(gt=0)] = 1`)."""
    depth = 0
    for at, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "=" and depth == 0:
            return text[:at], "=", text[at + 1 :]
    return text, "", ""


def short_python_assignment(signature: str) -> str:
    """`x: Final[dict[str, int]] = build()` as `x: Final[dict[str, int]]`; `x = <long value>` as `x = ...`."""
    if "\n" in signature or signature.startswith("__slots__"):  # multi-line; or names the attributes
        return signature
    target, equals, value = _split_at_equals(signature)
    target, value = target.rstrip(), value.strip()
    if ":" in target:
        return target
    if equals and len(value) > SHORT_PART_CHARS:
        return f"{target} = ..."
    return signature


def _top_level_split(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated pieces from `start` to the bracket that closes the one before it, and
    that bracket's index (-1 when it is not closed: a signature cut at the index's length limit)."""
    pieces: list[str] = []
    depth, quote, piece_start = 0, "", start
    for at in range(start, len(text)):
        char = text[at]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                pieces.append(text[piece_start:at])
                return pieces, at
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[piece_start:at])
            piece_start = at + 1
    return pieces, -1


DOC_MAX_CHARS = 80  # a doc line says what a thing is for; more is tokens the near prefix needs


def _doc(definition: Definition) -> str:
    doc = definition.doc.strip()
    return doc if len(doc) <= DOC_MAX_CHARS else doc[: DOC_MAX_CHARS - 1].rstrip() + "…"


def _python(head: Definition, members: list[Definition]) -> str:
    """A class with its doc line and one line per member; a function on one line (`...` body),
    its doc as a comment: as compact as a stub file, since every token is one the near prefix
    does not get."""
    signature = head.signature.rstrip()
    if head.kind == "class":
        lines = [signature if signature.endswith(":") else signature + ":"]
        if head.doc:
            lines.append(f'    """{_doc(head)}"""')
        lines.extend("    " + _python(member, []).replace("\n", "\n    ") for member in members)
        if len(lines) == 1:
            lines.append("    ...")
        return "\n".join(lines)
    comment = f"  # {_doc(head)}" if head.doc else ""
    if head.kind in ("function", "method"):
        return (signature if signature.endswith(":") else signature + ":") + " ..." + comment
    return signature + comment


def _braces(head: Definition, members: list[Definition], language: str) -> str:
    lines = []
    if head.doc:
        lines.append(f"// {_doc(head)}")
    signature = head.signature.rstrip().rstrip("{").rstrip()
    if head.kind == "class" and members:
        lines.append(signature + " {")
        for member in members:
            lines.extend("  " + line for line in _braces(member, [], language).split("\n"))
        lines.append("}")
    else:
        lines.append(signature + (";" if language not in ("go", "python") and head.kind in ("function", "method") else ""))
    return "\n".join(lines)


SHORTER_FORMS: tuple[tuple[StubForm, str], ...] = (
    ("undocumented", "without its doc lines"), ("short", "without doc lines, parameter types and long defaults"),
)


def shorter_forms(
    shown: list[Definition], language: str, text: str, fewer: Sequence[list[Definition]] = ()
) -> tuple[tuple[str, str], ...]:
    """The stub without docs, then with short signatures, each kept only when shorter than the
    one before (rendered per candidate: a few string operations, no token counts). `fewer`: for a
    class, the member lists its short form may show instead, most members first (the fitter takes
    the first that fits: a stub too long loses its least needed members, not its last lines, and
    keeps the order a class lists them in, which the model follows: it wrote the member after the
    last one shown)."""
    forms: list[tuple[str, str]] = []
    for form, how in SHORTER_FORMS:
        if form == "short" and fewer:
            forms.extend((f"{how}, its {len(members)} most needed members", render_definitions([shown[0], *members], language, form))
                         for members in fewer)
            continue
        shorter = render_definitions(shown, language, form)
        if len(shorter) < len(forms[-1][1] if forms else text):
            forms.append((how, shorter))
    return tuple(forms)
