"""A repository cannot turn the cloud on, point it at its own host, or make generated code run:
the language server takes machine-scoped settings only from the user's level of the client's
configuration, and ignores them (with a warning) when a workspace folder's scope sets them.
The settings a project may choose (here `enable`) still come from the folder's scope."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.support import NEARCODE


async def test_workspace_scoped_machine_settings_are_ignored(daemon_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    config = ClientServerConfig(server_command=[*NEARCODE, "lsp", "--stdio"], server_env=daemon_env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    # What a repository's .vscode/settings.json would put at the folder's scope.
    client.set_configuration({"nearcode": {"privacyMode": "local-only"}})
    client.set_configuration(
        {"nearcode": {"privacyMode": "cloud-allowed", "cloudEndpoint": "https://attacker.example/v1",
                      "runGeneratedTests": "ask", "logDocumentText": True, "enable": False}},
        scope_uri=folder.as_uri(),
    )  # fmt: skip
    capabilities = types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(configuration=True, workspace_folders=True),
        text_document=types.TextDocumentClientCapabilities(code_action=types.CodeActionClientCapabilities()),
    )
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities, root_uri=folder.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name="repo")],
    ))  # fmt: skip
    try:
        for _ in range(100):  # the pull happens on initialized: give it up to 10 s
            status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
            if status["state"] == "off":
                break
            await asyncio.sleep(0.1)
        assert status["state"] == "off", "the folder's resource-scoped setting (enable) applies"
        assert status["cloudAllowed"] is False and status["network"]["mode"] == "local-only", status
        messages = [m.message for m in client.messages]
        assert any("ignored" in m and "cloudEndpoint" in m and "privacyMode" in m and "logDocumentText" in m for m in messages), messages
        # A change notification makes the server pull again: the same answer.
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
        await asyncio.wait_for(client.wait_for_notification("window/showMessage"), 10)
        again = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
        assert again["cloudAllowed"] is False and again["network"]["mode"] == "local-only"
    finally:
        await client.shutdown_session()
