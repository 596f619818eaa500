"""Stop strings for servers that limit them: special tokens by id, the rest as text.

vLLM answers HTTP 400 to a request with more than 4 `stop` strings, and a Qwen FIM request has 8
special-token stops plus "\\n". A special token (an added token of the tokenizer, like
`<|endoftext|>`) is always one token that never merges with its neighbours, so stopping on its id
(`stop_token_ids`) is exact. Plain text like "\\n" is not: it hides inside tokens such as ")\\n"
or "\\n\\n", so it must stay a `stop` string. Anything still over the server's limit is matched
here, on the streamed text (`StopScanner`), so no stop is ever dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StopPlan:
    strings: tuple[str, ...]  # sent as `stop`
    token_ids: tuple[int, ...]  # sent as `stop_token_ids`
    client_side: tuple[str, ...]  # over the server's limit: matched on the streamed text

    @property
    def needs_scanner(self) -> bool:
        return bool(self.client_side)


def split_stops(
    stops: Sequence[str], special_token_ids: Mapping[str, int], max_strings: int | None
) -> StopPlan:
    """Special tokens by id, then text stops up to `max_strings` (None: no limit); the rest client-side."""
    token_ids: list[int] = []
    texts: list[str] = []
    for stop in dict.fromkeys(stops):  # de-duplicated, order kept
        token_id = special_token_ids.get(stop)
        if token_id is not None:
            if token_id not in token_ids:
                token_ids.append(token_id)
        elif stop:
            texts.append(stop)
    if max_strings is None:
        return StopPlan(tuple(texts), tuple(token_ids), ())
    # The shortest text stops go to the server: "\n" is the one that ends nearly every answer.
    texts.sort(key=len)
    return StopPlan(tuple(texts[:max_strings]), tuple(token_ids), tuple(texts[max_strings:]))


class StopScanner:
    """Cuts streamed text at the first client-side stop string, across chunk boundaries.

    Text that could be the start of a stop string is held back until the next chunk decides.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The part of `pending + text` that is safe to emit; sets `stopped` at a stop string."""
        if self.stopped:
            return ""
        buffer = self._pending + text
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buffer[:cut]
        keep = _partial_match_length(buffer, self._stops, self._hold)
        self._pending = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """What was held back, at the end of the stream (no stop string followed)."""
        rest, self._pending = self._pending, ""
        return "" if self.stopped else rest


def _partial_match_length(buffer: str, stops: tuple[str, ...], hold: int) -> int:
    """Length of the longest end of `buffer` that is a proper start of some stop string."""
    for length in range(min(hold, len(buffer)), 0, -1):
        tail = buffer[-length:]
        if any(stop.startswith(tail) and stop != tail for stop in stops):
            return length
    return 0
