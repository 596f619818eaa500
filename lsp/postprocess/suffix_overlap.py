"""Remove what would duplicate the text after the cursor.

Mid-line, the model often re-emits the closing characters already there (`print(x|)` -> `x)`); they
are cut only when the suggestion closes more brackets than it opens, so `foo(x)` inside `print(|)`
stays whole. Multi-line, trailing lines equal to the lines after the cursor are cut, and a
suggestion that only repeats the next line is dropped.
"""

from nearcode.lsp.postprocess.base import Candidate, PostContext

_PAIRS = {")": "(", "]": "[", "}": "{"}


def suffix_overlap(candidate: Candidate, ctx: PostContext) -> Candidate:
    candidate = _line_overlap(candidate, ctx.line_suffix)
    if candidate.dropped or ctx.mode != "multi":
        return candidate
    return _lines_overlap(candidate, ctx)


def _line_overlap(candidate: Candidate, line_suffix: str) -> Candidate:
    closing = line_suffix.strip()
    if not closing:
        return candidate
    text = candidate.text.rstrip()
    first_line_end = text.find("\n")
    head = text if first_line_end < 0 else text[:first_line_end]
    if head.strip() == closing:
        return candidate.drop("repeats the text after the cursor")
    # The longest end of the first line that is a start of the text after the cursor.
    for size in range(min(len(head), len(closing)), 0, -1):
        overlap = closing[:size]
        if head.endswith(overlap) and _over_closes(head, overlap):
            rest = "" if first_line_end < 0 else text[first_line_end:]
            return candidate.cut(head[: len(head) - size] + rest, "overlaps the text after the cursor")
    return candidate


def _over_closes(text: str, overlap: str) -> bool:
    """True when `text` closes more brackets than it opens, by at least those in `overlap`."""
    closers_in_overlap = sum(1 for c in overlap if c in _PAIRS)
    if closers_in_overlap == 0:
        # Quotes, colons, semicolons: cut only a pure repeat of the characters.
        return all(c in "\"'`;:," for c in overlap.strip()) and bool(overlap.strip())
    balance = sum(1 for c in text if c in "([{") - sum(1 for c in text if c in _PAIRS)
    return -balance >= closers_in_overlap


def _lines_overlap(candidate: Candidate, ctx: PostContext) -> Candidate:
    following = [line.rstrip() for line in ctx.following_lines if line.strip()]
    lines = candidate.text.split("\n")
    if not following or len(lines) < 2:
        return candidate
    # Find the first suggestion line (after the first) where the document's next lines begin.
    for i in range(1, len(lines)):
        tail = [line.rstrip() for line in lines[i:] if line.strip()]
        if tail and tail == following[: len(tail)]:
            return candidate.cut("\n".join(lines[:i]).rstrip(), "duplicates the lines after the cursor")
    return candidate
