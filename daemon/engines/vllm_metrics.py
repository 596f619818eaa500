"""vLLM's Prometheus `/metrics`, read for `nearcode status`: prefix-cache hit rate and load.

vLLM (V1) counts prefix-cache lookups in tokens: `vllm:prefix_cache_queries` (prompt tokens looked
up) and `vllm:prefix_cache_hits` (of those, found in the cache). prometheus_client exposes a counter
as `<name>_total`; both spellings are accepted. Every sample carries labels (model_name, engine):
values of one name are summed over them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(?P<value>\S+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """Sample name -> value summed over label sets (comments, histograms' buckets kept by name)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if math.isnan(value):
            continue
        values[match["name"]] = values.get(match["name"], 0.0) + value
    return values


def _counter(values: dict[str, float], name: str) -> float | None:
    for key in (f"{name}_total", name):
        if key in values:
            return values[key]
    return None


@dataclass(frozen=True)
class VllmLoad:
    """What `nearcode status` shows from vLLM: its prefix cache and its queue."""

    prefix_cache_queries: int | None = None  # prompt tokens looked up in the prefix cache
    prefix_cache_hits: int | None = None  # of those, found
    requests_running: int | None = None
    requests_waiting: int | None = None
    generation_tokens: int | None = None
    kv_cache_usage: float | None = None  # share of KV-cache blocks in use (0-1)

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        if not self.prefix_cache_queries or self.prefix_cache_hits is None:
            return None
        return self.prefix_cache_hits / self.prefix_cache_queries

    def as_status(self) -> dict[str, float | int | None]:
        rate = self.prefix_cache_hit_rate
        return {
            "prefix_cache_hit_rate": round(rate, 4) if rate is not None else None,
            "prefix_cache_queries": self.prefix_cache_queries,
            "prefix_cache_hits": self.prefix_cache_hits,
            "requests_running": self.requests_running,
            "requests_waiting": self.requests_waiting,
            "generation_tokens": self.generation_tokens,
            "kv_cache_usage": self.kv_cache_usage,
        }


def vllm_load(text: str) -> VllmLoad:
    values = parse_prometheus(text)

    def whole(value: float | None) -> int | None:
        return None if value is None else int(value)

    return VllmLoad(
        prefix_cache_queries=whole(_counter(values, "vllm:prefix_cache_queries")),
        prefix_cache_hits=whole(_counter(values, "vllm:prefix_cache_hits")),
        requests_running=whole(values.get("vllm:num_requests_running")),
        requests_waiting=whole(values.get("vllm:num_requests_waiting")),
        generation_tokens=whole(_counter(values, "vllm:generation_tokens")),
        kv_cache_usage=values.get("vllm:kv_cache_usage_perc"),
    )
