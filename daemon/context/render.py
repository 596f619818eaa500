"""Definitions as the model reads them: stub-like source (signature, first doc line, no body).

A stub looks like code the model has seen (Python `.pyi` files, TypeScript declarations, C
headers), so it reads the names, parameters and types without being tempted to continue a body.
"""

from __future__ import annotations

import dataclasses

from nearcode.daemon.context.index_api import Definition
from nearcode.shared.languages import blocks, language_for_path


def render_definitions(definitions: list[Definition], language: str, docs: bool = True) -> str:
    """The first definition with the ones after it as its members (a class and its methods), or
    each on its own when they are unrelated. `docs=False`: without doc lines, the form the
    context fitter falls back to when the whole stub does not fit (every member's signature is
    worth more than the first members' docs: the answer is often a member further down)."""
    if not definitions:
        return ""
    head, members = definitions[0], definitions[1:]
    if not docs:
        head, members = _undocumented(head), [_undocumented(m) for m in members]
    # A brace language (or Python) writes its stubs its way; for any other the definition's file decides.
    stub_language = language if language == "python" or blocks(language) == "braces" else language_for_path(head.path)
    if stub_language == "python":
        return _python(head, members)
    return _braces(head, members, language)


def _undocumented(definition: Definition) -> Definition:
    return dataclasses.replace(definition, doc="") if definition.doc else definition


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
