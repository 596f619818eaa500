"""The settings the server pulls from the client (`workspace/configuration`), and the rule for
where each may come from.

Machine-scoped settings (privacy mode, cloud endpoint, whether generated tests may run, engine,
model, logging of document text: `scope: "machine"` in nearcode/shared/protocol/settings.py)
decide what runs and where code goes, so only the user's own (machine or user level) settings may
set them. The server asks twice: once without a scope (the user's settings) and once scoped to the
first workspace folder. From the scoped answer it takes only the other settings: a repository's
own settings file (VS Code's .vscode/settings.json, any client's per-folder configuration) must
not turn the cloud on, point it at a host of its choosing, or make generated code run.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from nearcode.shared.protocol.settings import Settings

log = logging.getLogger("nearcode.lsp")

SECTION = "nearcode"


def client_pulls_configuration(ls: LanguageServer) -> bool:
    workspace = ls.client_capabilities.workspace
    return bool(workspace and workspace.configuration)


def split_scoped(scoped: Any, machine_level: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The settings a folder-scoped answer may set, and the machine keys it tried to change."""
    if not isinstance(scoped, dict):
        return {}, []
    if isinstance(scoped.get(SECTION), dict):
        scoped = scoped[SECTION]
    machine = Settings.machine_keys()
    kept = {key: value for key, value in scoped.items() if key not in machine}
    ignored = sorted(key for key in scoped if key in machine and scoped[key] != machine_level.get(key))
    return kept, ignored


async def pull_settings(ls: LanguageServer, current: Settings) -> tuple[Settings, list[str]]:
    """`current` updated from the client's configuration; also the machine keys a workspace tried
    to set (ignored). Unchanged when the client does not answer `workspace/configuration`."""
    if not client_pulls_configuration(ls):
        return current, []
    folders = list(ls.workspace.folders.values())
    items = [types.ConfigurationItem(section=SECTION)]
    if folders:
        items.append(types.ConfigurationItem(scope_uri=folders[0].uri, section=SECTION))
    try:
        answers = await ls.workspace_configuration_async(types.ConfigurationParams(items=items))
    except Exception:
        log.debug("the client did not answer workspace/configuration", exc_info=True)
        return current, []
    answers = list(answers or [])
    machine_level = answers[0] if answers and isinstance(answers[0], dict) else {}
    if isinstance(machine_level.get(SECTION), dict):
        machine_level = machine_level[SECTION]
    settings, problem = current.merged(machine_level)
    if problem:
        log.warning(problem)
    ignored: list[str] = []
    if len(answers) > 1:
        kept, ignored = split_scoped(answers[1], machine_level)
        settings, problem = settings.merged(kept)
        if problem:
            log.warning(problem)
    if ignored:
        log.warning("ignored workspace values of machine settings: %s", ", ".join(ignored))
    return settings, ignored
