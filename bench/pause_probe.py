#!/usr/bin/env python3
"""Where the time of an answer in a typing pause goes: direct /api/fim requests to a fresh daemon.

A function of the standard library's pprint.py is the document (its text never enters this
repository). Printed per request: total and first-token milliseconds, prompt and cached tokens,
generated tokens. Rows: a cold read; the same prompt again (all cached: decoding alone); after a
typed line (the prompt's tail and the suffix are read again); four documents at once (how a batch
of four decodes on this machine), and four at once with a 12-token cap; a keystroke in another
document while a cold prompt is read in the background (what a read-ahead on open costs the next
keystroke: the engine stops a read only between its prompt batches).

  .venv/bin/python bench/pause_probe.py [--model quality]
"""
from __future__ import annotations

import asyncio
import inspect
import json
import pprint
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from daemonctl import OwnDaemon

REPO = Path(__file__).resolve().parent.parent
NEARCODE = REPO / ".venv" / "bin" / "nearcode"
SOURCE = Path(inspect.getsourcefile(pprint) or "").read_text()
_BODY = SOURCE.index("\n", SOURCE.index("def pformat(")) + 1
PREFIX = SOURCE[:_BODY] + "    "
SUFFIX = SOURCE[_BODY:][SOURCE[_BODY:].index("\n\n") :]
TYPED_LINE = "    sio = _StringIO()\n    "


async def fim(client: httpx.AsyncClient, prefix: str, doc: str = "a.py", max_tokens: int = 64,
              priority: str = "interactive") -> dict[str, Any]:
    t0, first, text = time.perf_counter(), None, ""
    body = {"prefix": prefix[-24000:], "suffix": SUFFIX[:6000], "language": "python", "path": doc,
            "document": f"file:///{doc}", "client": doc, "max_tokens": max_tokens, "context_mode": "file",
            "priority": priority}
    async with client.stream("POST", "http://localhost/api/fim", json=body) as response:
        async for line in response.aiter_lines():
            event = json.loads(line)
            if event["type"] == "delta":
                first = first or time.perf_counter() - t0
                text += event["text"]
            elif event["type"] == "done":
                keys = ("prompt_tokens", "cached_tokens", "generated_tokens")
                return {"ms": round((time.perf_counter() - t0) * 1000), "first_ms": round((first or 0) * 1000),
                        **{k: event[k] for k in keys}, "finish": event["finish_reason"]}
    return {"error": "no final event"}


async def probe(daemon: OwnDaemon) -> None:
    info = json.loads((daemon.runtime / "daemon.json").read_text())
    transport = httpx.AsyncHTTPTransport(uds=info["path"])
    async with httpx.AsyncClient(transport=transport, headers={"Authorization": f"Bearer {info['token']}"},
                                 timeout=120) as client:
        print("cold read", await fim(client, PREFIX))
        print("same prompt (cached)", await fim(client, PREFIX))
        print("after a typed line", await fim(client, PREFIX + TYPED_LINE))
        docs = [f"d{i}.py" for i in range(4)]
        for doc in docs:
            await fim(client, PREFIX, doc)
        for cap in (64, 12):
            rows = await asyncio.gather(*(fim(client, PREFIX + TYPED_LINE, doc, cap) for doc in docs))
            for row in rows:
                print(f"four at once, cap {cap}", row)
            for doc in docs:
                await fim(client, PREFIX, doc)
        for k in range(3):  # other documents' text, never read before: a cold read each
            other = SOURCE[k * 3000 : k * 3000 + 2500]
            reading = asyncio.create_task(fim(client, other, f"open{k}.py", 4, priority="background"))
            await asyncio.sleep(1.5)
            print("keystroke during a background read", await fim(client, PREFIX + TYPED_LINE + "s" * (k + 1), max_tokens=12))
            await reading


def main() -> int:
    model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else ""
    daemon = OwnDaemon.fresh(NEARCODE)
    subprocess.Popen([str(NEARCODE), "daemon", *(["--model", model] if model else [])], env=daemon.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            if daemon.api_status():
                break
            time.sleep(0.5)
        else:
            print("the daemon did not start", file=sys.stderr)
            return 1
        asyncio.run(probe(daemon))
    finally:
        print(daemon.stop(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
