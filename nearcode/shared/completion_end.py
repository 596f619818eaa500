"""Where a completion ends: the one home of the line-limit and block-end rules.

The daemon applies them while tokens stream (to stop the engine the moment the answer is complete,
daemon/fim_service.py); the language server's post-processing filters apply the same functions to
text from any source (lsp/postprocess/limit_lines.py, block_scope.py). Pure functions, golden-tested
in tests/postprocess/golden/.
"""

from __future__ import annotations

from dataclasses import dataclass


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def block_indent_at(line_prefix: str) -> int:
    """The indentation of the block the cursor is in: the line's own when only whitespace precedes
    the cursor (a new line in a block), else the indentation of the code before the cursor."""
    return len(line_prefix) if not line_prefix.strip() else indentation(line_prefix)


def block_end(text: str, block_indent: int) -> int | None:
    """Index of the newline before the first line, after the first, that has code and is indented
    less than `block_indent`: the completion has left the cursor's block there. None if it has not.

    A line whose characters so far are only whitespace is not judged yet (it may still dedent or
    not), so the answer on a prefix of a stream never contradicts the answer on the whole stream.
    """
    start = text.find("\n")
    while start >= 0:
        line_start = start + 1
        end = text.find("\n", line_start)
        line = text[line_start:] if end < 0 else text[line_start:end]
        if line.strip() and indentation(line) < block_indent:
            return start
        start = end
    return None


def line_limit_end(text: str, max_lines: int) -> int | None:
    """Index of the newline that ends line `max_lines`, or None while there are no more lines."""
    index = -1
    for _ in range(max_lines):
        index = text.find("\n", index + 1)
        if index < 0:
            return None
    return index


@dataclass
class StreamingEnd:
    """Applies the rules to a stream of text pieces: `feed` returns the text that may be passed on
    now, and whether the completion is over. Leading whitespace of a new line is held back until
    the line shows its indentation: passed on early, a dedented line could not be taken back."""

    max_lines: int | None = None
    block_indent: int | None = None
    text: str = ""
    emitted: int = 0
    ended_by: str = ""  # "line limit" or "block end" once over

    def feed(self, piece: str) -> tuple[str, bool]:
        self.text += piece
        ends = []
        if self.max_lines is not None and (cut := line_limit_end(self.text, self.max_lines)) is not None:
            ends.append((cut, "line limit"))
        if self.block_indent is not None and (cut := block_end(self.text, self.block_indent)) is not None:
            ends.append((cut, "block end"))
        if ends:
            cut, self.ended_by = min(ends)
            return self._emit(cut), True
        safe = len(self.text)
        if self.block_indent is not None:
            last_line = self.text.rfind("\n")
            if last_line >= 0 and not self.text[last_line + 1 :].strip():
                safe = last_line  # the newline and what follows wait for the line's first code
        return self._emit(safe), False

    def _emit(self, upto: int) -> str:
        upto = max(upto, self.emitted)
        out, self.emitted = self.text[self.emitted : upto], upto
        return out

    def flush(self) -> str:
        """The stream ended by itself: what was held back goes out (trailing whitespace included)."""
        return self._emit(len(self.text))
