"""Definitions as the model reads them: stub-like source (signature, first doc line, no body).

A stub looks like code the model has seen (Python `.pyi` files, TypeScript declarations, C
headers), so it reads the names, parameters and types without being tempted to continue a body.
"""

from __future__ import annotations

from nearcode.daemon.context.index_api import Definition

_BRACE_LANGUAGES = ("typescript", "typescriptreact", "javascript", "javascriptreact", "go", "rust", "java", "c",
                    "cpp", "csharp", "kotlin", "swift", "php")


def render_definitions(definitions: list[Definition], language: str) -> str:
    """The first definition with the ones after it as its members (a class and its methods), or
    each on its own when they are unrelated."""
    if not definitions:
        return ""
    head, members = definitions[0], definitions[1:]
    if language == "python" or (language not in _BRACE_LANGUAGES and head.path.endswith((".py", ".pyi"))):
        return _python(head, members)
    return _braces(head, members, language)


def _python(head: Definition, members: list[Definition]) -> str:
    signature = head.signature.rstrip()
    if head.kind in ("class", "function", "method"):
        lines = [signature if signature.endswith(":") else signature + ":"]
        if head.doc:
            lines.append(f'    """{head.doc.strip()}"""')
        for member in members:
            lines.extend("    " + line for line in _python(member, []).split("\n"))
        if len(lines) == 1 or (head.kind != "class" and not members):
            lines.append("    ...")
        return "\n".join(lines)
    return signature + (f"  # {head.doc.strip()}" if head.doc else "")


def _braces(head: Definition, members: list[Definition], language: str) -> str:
    lines = []
    if head.doc:
        lines.append(f"// {head.doc.strip()}")
    signature = head.signature.rstrip().rstrip("{").rstrip()
    if head.kind == "class" and members:
        lines.append(signature + " {")
        for member in members:
            lines.extend("  " + line for line in _braces(member, [], language).split("\n"))
        lines.append("}")
    else:
        lines.append(signature + (";" if language not in ("go", "python") and head.kind in ("function", "method") else ""))
    return "\n".join(lines)
