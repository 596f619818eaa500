"""The session's life: `initialize`, `initialized` (the daemon started or found, its engine loaded),
settings pulled and changed, workspace folders, `shutdown`.

Handlers only: lsp/server.py registers them on the server (lsp/server_state.py).
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from nearcode.lsp.client_settings import pull_settings
from nearcode.lsp.daemon_client import DaemonUnavailable
from nearcode.lsp.server_state import NearcodeServer
from nearcode.shared import privacy

log = logging.getLogger("nearcode.lsp")


def on_initialize(ls: NearcodeServer, params: types.InitializeParams) -> None:
    ls.settings, problem = ls.settings.merged(params.initialization_options)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if problem:
        log.warning(problem)
    text_caps = params.capabilities.text_document
    ls.client_has_inline = bool(text_caps and text_caps.inline_completion)
    ls.insight.use_position_encoding(ls.workspace.position_encoding)
    args: list[str] = []
    if ls.settings.model:
        args += ["--model", ls.settings.model]
    if ls.settings.engine != "auto":
        args += ["--engine", ls.settings.engine]
    ls.daemon.daemon_args = tuple(args)


async def on_initialized(ls: NearcodeServer, params: types.InitializedParams) -> None:
    await _pull_settings(ls)
    ls.send_status("loading", "starting the nearcode daemon")
    try:
        await ls.daemon.connect()
        await wait_while_engine_loads(ls)
        await ls.refresh_model_name()
        await ls.workspace_sync.register()
        ls.send_status("ready")
    except DaemonUnavailable as exc:
        ls.report_problem("daemon-start", str(exc))


async def wait_while_engine_loads(ls: NearcodeServer, poll_s: float = 1.0) -> None:
    """A daemon whose engine loads slowly (vLLM, ~30 s) answers meanwhile with state "loading" and
    the phase ("loading vllm: loading the weights (12 s)"): passed on to the editor's status line."""
    first_pid = ls.daemon.endpoint.pid if ls.daemon.endpoint else None
    while True:
        status = await ls.daemon.get_json("/api/status")
        if first_pid is not None and status.get("pid") != first_pid:
            # It exited while loading (a start failure ends the daemon) and a new one was started:
            # say so rather than start one after another.
            raise DaemonUnavailable("the daemon exited while its engine was loading; see `nearcode status` "
                                    "and the daemon log")
        if status.get("state", "ready") != "loading":
            if status.get("state") == "failed":
                raise DaemonUnavailable(str(status.get("state_message", "the engine failed to start")))
            return
        ls.send_status("loading", str(status.get("state_message", "")))
        await asyncio.sleep(poll_s)


async def _pull_settings(ls: NearcodeServer) -> None:
    """Settings the client answers for (workspace/configuration), machine keys from its user level only."""
    ls.settings, ignored = await pull_settings(ls, ls.settings)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if ignored:
        ls.window_show_message(types.ShowMessageParams(
            types.MessageType.Warning,
            f"nearcode: ignored {', '.join(ignored)} from this workspace's settings: only your user settings may set them",
        ))


async def on_configuration(ls: NearcodeServer, params: types.DidChangeConfigurationParams) -> None:
    ls.settings, problem = ls.settings.merged(params.settings)
    privacy.apply_settings(ls.settings.privacy_mode, ls.settings.cloud_endpoint)
    if problem:
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"nearcode: {problem}"))
    await _pull_settings(ls)
    ls.warn_if_model_differs()
    ls.send_status()


async def on_workspace_folders(ls: NearcodeServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    await ls.workspace_sync.register()  # pygls has already applied the change to ls.workspace


async def on_shutdown(ls: NearcodeServer, params: None) -> None:
    ls.insight.close()
    await ls.workspace_sync.release()

