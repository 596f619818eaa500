"""A short run of the LSP fuzzer (tests/lsp_fuzz.py) against the real server and the session's
daemon. `make fuzz` runs a long one with its own daemon."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.lsp_fuzz import fuzz

SHORT_RUN_STEPS = int(os.environ.get("NEARCODE_FUZZ_STEPS", "400"))


async def test_random_sessions_and_malformed_frames(daemon_env: dict[str, str], tmp_path: Path) -> None:
    findings = await fuzz(daemon_env, SHORT_RUN_STEPS, seed=20261130, logs=tmp_path)
    report = findings.report()
    print(json.dumps(report, indent=1, ensure_ascii=True))
    assert report["server_crashes"] == 0
    assert report["document_mismatches"] == 0, findings.mismatches[:3]
    assert report["internal_errors"] == 0, findings.internal_errors[:3]
    assert report["invalid_params_for_valid_input"] == 0, findings.wrongly_refused[:3]
    assert report["unanswered_requests"] == 0
    assert not findings.errors_shown, findings.errors_shown[:3]
