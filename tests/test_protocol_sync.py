"""One protocol: the Python models are the source, and nothing the editors carry may drift from them.

Fast (no model, no server): the generated TypeScript and Lua files are current, and the VS Code
extension's package.json declares every server setting with the model's type, default, limits and
scope ("machine" for what decides where code goes: a workspace must not set it).
"""

from __future__ import annotations

import json
import subprocess
import sys

from nearcode.shared.protocol.export import setting_specs
from tests.support import REPO


def test_generated_editor_files_are_current() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "nearcode.shared.protocol.export", "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr


def test_package_json_declares_every_server_setting_as_the_model_does() -> None:
    declared = json.loads((REPO / "vscode-extension" / "package.json").read_text())["contributes"]["configuration"]["properties"]
    problems = []
    for spec in setting_specs():
        entry = declared.get(f"nearcode.{spec['key']}")
        if entry is None:
            problems.append(f"{spec['key']}: missing")
            continue
        for field in ("type", "default", "minimum", "maximum", "enum"):
            if spec.get(field) != entry.get(field):
                problems.append(f"{spec['key']}.{field}: model {spec.get(field)!r}, package.json {entry.get(field)!r}")
        machine = entry.get("scope") == "machine"
        if machine != (spec["scope"] == "machine"):
            problems.append(f"{spec['key']}: scope {entry.get('scope')!r}, the model says {spec['scope']!r}")
    assert not problems, "\n".join(problems)


def test_the_settings_that_decide_where_code_goes_are_machine_scoped() -> None:
    machine = {spec["key"] for spec in setting_specs() if spec["scope"] == "machine"}
    assert {"privacyMode", "cloudEndpoint", "logDocumentText", "engine", "model"} <= machine


def test_an_event_is_one_line_whatever_the_model_writes() -> None:
    """U+2028, U+2029 and NEL are legal raw in JSON strings, but line readers split on them (the
    fuzzer cut a delta event in two that way): event_line escapes them, and the text survives."""
    from nearcode.shared.protocol.daemon_api import DeltaEvent, event_line, parse_event

    text = "a\u2028b\u2029c\x85d\r\ne\x0bf"
    line = event_line(DeltaEvent(text=text)).decode()
    assert line.endswith("\n") and len(line.splitlines()) == 1, line
    event = parse_event(line.strip())
    assert isinstance(event, DeltaEvent) and event.text == text
