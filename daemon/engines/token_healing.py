"""Token healing: the prompt stops before the prefix's last token, and the answer must start with it.

A prompt that ends inside what would be one token in training text puts the model somewhere it
has rarely been. After `_config.` the model of the default preset writes `Wrapper(` rather than
`ConfigWrapper(` (in training text `.Config` is one token, so a `.` alone says the name is done
with), after `VersionInfo.` it writes `from_version_string` for `_from_version_string`, after a
half-typed name it guesses a word that ends where the user stopped. So the prompt is cut before the
last token of the prefix (as the engine's tokenizer splits it), and the engine is told that the
answer must start with that token's text (llama.cpp: a grammar, which costs nothing measurable per
token here); the engine returns the answer without it. The same as guidance's token healing and
llama.cpp's open pull request 7187; llama.cpp's server has no such option of its own.
"""

from __future__ import annotations

import re

# A healable piece: one token's text, printable ASCII with at most one leading space, ending in a
# word character or a dot: a name typed half-way (`ret`, ` xtr`) or an attribute access just begun
# (`.`, which training text merges with the name after it: `.Config`, `._`). Not whitespace or a line
# break (they end nothing half-way), and not a closing bracket or an operator: forced, `)` became
# `):` where the truth was `) -> None:`, ` +` and ` =` lost as often as they won (docs/benchmark.md).
_HEALABLE_END = re.compile(r"[A-Za-z0-9_.]")
_HEALABLE = re.compile(r" ?[\x21-\x7e]{0,23}" + _HEALABLE_END.pattern)
TAIL_CHARS = 64  # what is tokenized to find the last token: enough for its neighbours to be as in the prompt


def tail_of(prefix: str) -> str:
    """The end of the prefix the last token is read from (its last line, at most TAIL_CHARS)."""
    return prefix[-TAIL_CHARS:].rpartition("\n")[2]


def healable(piece: str) -> bool:
    return bool(_HEALABLE.fullmatch(piece))


def may_heal(prefix: str) -> bool:
    """Whether the prefix can end in a healable piece (a piece ends where the prefix does): when
    not, no request asks the engine's tokenizer (most keystrokes after a space or a bracket)."""
    return bool(prefix) and _HEALABLE_END.fullmatch(prefix[-1]) is not None


def cut_prompt(text: str, prefix_end: int, piece: str) -> str | None:
    """`text` without `piece` where the prefix ends; None when the prefix does not end with it."""
    if not piece or prefix_end <= 0 or not text[:prefix_end].endswith(piece):
        return None
    return text[: prefix_end - len(piece)] + text[prefix_end:]


def forced_start_grammar(start: str) -> str:
    """A GBNF grammar (llama.cpp) for any text that starts with `start` (a healable piece)."""
    literal = start.replace("\\", "\\\\").replace('"', '\\"')
    return f'root ::= "{literal}" [^\\x00]*'


class ForcedStart:
    """Strips the forced start off the first chunks of an answer (it may come in several tokens)."""

    def __init__(self, start: str) -> None:
        self.left = start

    def cut_from(self, text: str) -> str:
        if not self.left:
            return text
        cut = min(len(self.left), len(text))
        if text[:cut] != self.left[:cut]:  # not as forced (cannot happen under the grammar): left as is
            self.left = ""
            return text
        self.left = self.left[cut:]
        return text[cut:]
