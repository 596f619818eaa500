"""The current file's own far text for the context block: its head (module docs, imports,
constants) and an outline of its definitions, as last seen.

The prompt's near prefix and suffix cover only the lines around the cursor; what the rest of the
file says (what it imports, which classes and functions it has, their signatures) goes into the
stable context block, where the engine reads it once. It does not depend on the cursor, so it can
be read before the first request, when the file is opened.
"""

from __future__ import annotations

from collections.abc import Sequence

from nearcode.daemon.context.index_api import Definition
from nearcode.daemon.context.render import render_definitions
from nearcode.daemon.prompting.context_fit import Snippet

HEAD_MAX_LINES = 60  # the head ends at the first definition, or here
# The most of the context share the view takes: definitions from other files need the rest.
VIEW_MAX_SHARE = 0.4
HEAD_MAX_CHARS = 3000
OUTLINE_MAX_CHARS = 4000
_DEFINITION_STARTS = ("def ", "async def ", "class ", "@", "function ", "export ", "func ", "fn ", "pub ", "impl ",
                      "public ", "private ", "protected ", "interface ", "type ", "struct ", "enum ", "const ", "let ")


def head_of(text: str) -> tuple[str, int]:
    """The file's first lines up to its first top-level definition: (text, number of lines)."""
    lines = text[: HEAD_MAX_CHARS * 4].split("\n")  # a 5 MB file is not split whole for 60 lines
    end = min(len(lines), HEAD_MAX_LINES)
    for i, line in enumerate(lines[:end]):
        if line.startswith(_DEFINITION_STARTS) and not line.startswith(("export {", "export *", "const {")):
            end = i
            break
    head = "\n".join(lines[:end]).rstrip()
    if len(head) > HEAD_MAX_CHARS:
        head = head[:HEAD_MAX_CHARS]
        head = head[: head.rfind("\n")] if "\n" in head else head
    return head, end


def outline_of(definitions: Sequence[Definition], language: str) -> str:
    """Top-level definitions with their members, as stubs, in file order."""
    top = [d for d in definitions if "." not in d.qualified]
    pieces = []
    size = 0
    for d in sorted(top, key=lambda d: d.line):
        prefix = d.qualified + "."
        members = [m for m in definitions if m.qualified.startswith(prefix) and "." not in m.qualified[len(prefix):]]
        piece = render_definitions([d, *members], language)
        if size + len(piece) > OUTLINE_MAX_CHARS:
            break
        pieces.append(piece)
        size += len(piece)
    return "\n".join(pieces)


def file_view_part(
    shown_path: str, text: str, language: str, definitions: Sequence[Definition] = ()
) -> Snippet | None:
    """The view as one context part (first in the block: it changes least), or None for a file
    whose head and outline would say nothing."""
    head, head_lines = head_of(text)
    outline = outline_of(definitions, language) if definitions else ""
    body = "\n\n".join(piece for piece in (head, outline) if piece)
    if len(body.strip()) < 40:
        return None
    what = "imports and first lines" + (", and an outline of its definitions" if outline else "")
    return Snippet(shown_path, body, "file", 0, max(0, head_lines - 1),
                   f"this file's {what}, as last seen (the near prefix and suffix show only the lines around the cursor)",
                   key=f"file:{shown_path}", name="", max_share=VIEW_MAX_SHARE)
