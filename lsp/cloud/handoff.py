"""`nearcode.askCloud` and `nearcode.previewCloudPayload`: the cloud hand-off, only on request.

Local-only mode (the default) refuses before anything is built. Otherwise the selection's payload
is built once (deny list, redaction), previewed or posted as is, and every request sent or refused
after building is written to the audit log.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.uris import to_fs_path

from nearcode.lsp.cloud import client
from nearcode.lsp.cloud.audit import AuditEntry, AuditLog
from nearcode.lsp.cloud.payload import PayloadRefused, build_payload
from nearcode.lsp.code_actions.streaming import ActionContext, WorkProgress
from nearcode.shared import privacy
from nearcode.shared.deny import workspace_root
from nearcode.shared.languages import language_for_path
from nearcode.shared.protocol.editor import CloudResult
from nearcode.shared.protocol.settings import Settings

REFUSED_CODE = -32600


def cloud_refusal(settings: Settings) -> str | None:
    """Why a cloud request may not run with these settings; None when it may."""
    if settings.privacy_mode != privacy.CLOUD_ALLOWED:
        return (
            "nearcode: the cloud hand-off is off: privacyMode is local-only (the default), so nothing "
            'leaves this machine and nothing was sent. To allow it, set the nearcode setting privacyMode to "cloud-allowed" '
            "and cloudEndpoint to an OpenAI-compatible base URL (e.g. https://api.openai.com/v1), and put the API key "
            f"in the environment variable {client.api_key_env_name()} (never in a settings file)."
        )
    if not settings.cloud_endpoint:
        return "nearcode: set the nearcode setting cloudEndpoint to an OpenAI-compatible base URL to use the cloud hand-off"
    return None


async def run_ask_cloud(context: ActionContext, args: dict[str, Any], preview_only: bool = False) -> CloudResult:
    refusal = cloud_refusal(context.settings)
    if refusal is not None:
        raise JsonRpcException(refusal, code=REFUSED_CODE)
    uri, text_range, task = args.get("uri"), args.get("range"), str(args.get("task") or "explain")
    if not isinstance(uri, str) or not isinstance(text_range, dict):
        raise JsonRpcInvalidParams('nearcode: expected arguments [{"uri": …, "range": …, "task": …}]')
    if uri not in context.ls.workspace.text_documents:
        raise JsonRpcInvalidParams(f"nearcode: document {uri} is not open")
    document = context.ls.workspace.get_text_document(uri)
    start = types.Position(**text_range["start"])
    end = types.Position(**text_range["end"])
    if (start.line, start.character) == (end.line, end.character):  # no selection: the current line
        start, end = types.Position(start.line, 0), types.Position(start.line + 1, 0)
    selection = document.source[document.offset_at_position(start) : document.offset_at_position(end)]
    path = Path(to_fs_path(uri) or uri)
    # The workspace folder, not the nearest package: a monorepo root's .nearcodeignore applies.
    root = workspace_root(path, context.workspace_folders) if path.is_absolute() else None
    relative = path.relative_to(root).as_posix() if root is not None else path.name
    endpoint, model, audit = context.settings.cloud_endpoint, client.cloud_model(), AuditLog()
    try:
        # Redaction is CPU work on text a repository may have crafted: never on the event loop.
        payload = await asyncio.to_thread(
            build_payload, task=task, selection=selection, relative_path=relative,
            language=document.language_id or language_for_path(str(path)),
            root=root, endpoint=endpoint, model=model,
        )  # fmt: skip
    except PayloadRefused as exc:
        audit.record(AuditEntry(endpoint, model, task, 0, {}, [relative], f"refused: {exc}"))
        raise JsonRpcException(str(exc), code=REFUSED_CODE) from exc
    if preview_only or args.get("preview"):
        return CloudResult(sent=False, **payload.preview())
    progress = WorkProgress(context, "nearcode: asking the cloud model")
    await progress.begin(f"sending {len(payload.body)} bytes to {payload.destination}")
    entry = AuditEntry(payload.destination, model, task, len(payload.body), payload.redactions,
                       list(payload.withheld_files), "sending")  # fmt: skip
    audit.record(entry)  # before anything leaves: a crash mid-request still leaves the record
    try:
        answer = await client.send(payload)
    except client.CloudError as exc:
        audit.update(entry, f"error: {exc}")
        progress.end("failed")
        raise JsonRpcException(str(exc), code=REFUSED_CODE) from exc
    except BaseException as exc:  # cancelled, or anything unexpected: the record says so
        audit.update(entry, f"error: {type(exc).__name__}")
        progress.end("failed")
        raise
    audit.update(entry, "completed", answer.response_bytes)
    progress.end("done")
    applied = False
    if task in ("complete", "improve") and args.get("apply", True) and context.can_apply_edits:
        code = _code_of(answer.text)
        edit_range = types.Range(start=end, end=end) if task == "complete" else types.Range(start=start, end=end)
        result = await context.ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(
                edit=types.WorkspaceEdit(changes={uri: [types.TextEdit(range=edit_range, new_text=code)]}),
                label=f"nearcode: cloud {task}",
            )
        )
        applied = bool(result.applied)
    preview = payload.preview()
    del preview["body"]
    return CloudResult(sent=True, applied=applied, text=answer.text, audit_log=str(audit.path), **preview)


def _code_of(text: str) -> str:
    fence = re.search(r"```[\w+-]*\n(.*?)```", text, re.S)
    return fence.group(1) if fence else text
