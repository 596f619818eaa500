"""Speculative decoding on the real daemon with the real 0.5B model (real tier: `daemon_env`).

The session daemon runs the default (`auto`, which is n-gram drafting for the 0.5B). A completion
whose prompt repeats a long line makes NGRAM_MOD draft; asked again, its pool holds the first
answer, which it drafts back. The daemon's status must then report drafted and accepted tokens.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.support import NEARCODE, daemon_http, daemon_status

# A helper whose long body the model repeats in its twin below the cursor's line.
PREFIX = (
    "def scale_measurements(measurement_values, scale_factor):\n"
    "    scaled_values = [value * scale_factor for value in measurement_values if value is not None]\n"
    "    return scaled_values\n"
    "\n"
    "\n"
    "def scale_measurements_again(measurement_values, scale_factor):\n"
    "    "
)
REQUEST = {"prefix": PREFIX, "suffix": "\n", "mode": "single", "max_tokens": 40, "language": "python",
           "path": "scale.py", "document": "file:///scale.py", "client": "speculation-test",
           "context_mode": "file"}


def complete(env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    with daemon_http(env) as client, client.stream("POST", "/api/fim", json=REQUEST) as response:
        events = [json.loads(line) for line in response.iter_lines() if line]
    return "".join(e["text"] for e in events if e["type"] == "delta"), events[-1]


def test_status_reports_drafted_and_accepted_tokens(daemon_env: dict[str, str]) -> None:
    before = daemon_status(daemon_env)["speculation"]
    assert before["type"] == "ngram"  # the default for the 0.5B: speculation is on
    first, done = complete(daemon_env)
    assert done["type"] == "done" and "scale_factor" in first
    second, _ = complete(daemon_env)  # the pool now holds the first answer
    after = daemon_status(daemon_env)["speculation"]
    drafted, accepted = after["drafted"] - before["drafted"], after["accepted"] - before["accepted"]
    assert drafted >= accepted >= 0 and after["drafted"] >= after["accepted"] >= 0
    assert drafted > 0, f"nothing drafted for {first!r} and {second!r}"
    assert after["acceptance_rate"] == round(after["accepted"] / after["drafted"], 3)
    status = subprocess.run([*NEARCODE, "status"], env=daemon_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0
    assert f"speculation: ngram, {after['accepted']:,} of {after['drafted']:,} drafted tokens accepted" in status.stdout
