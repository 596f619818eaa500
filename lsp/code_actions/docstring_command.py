"""`nearcode.generateDocstring`: stream a checked docstring into place for the symbol at a position.

The docstring streams into a LiveRegion (live_region.py), which follows the user's typing. However
the generation ends without a docstring worth offering (cancelled, the daemon answered an error,
the daemon died mid-stream, the model's answer failed the signature check, the user typed into
the lines being written), the lines it touched are put back exactly as they were, and the result
says why.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import to_fs_path

from nearcode.lsp.code_actions import docstring as ds
from nearcode.lsp.code_actions.live_region import LiveRegion
from nearcode.lsp.code_actions.streaming import ActionContext, WorkProgress, generate
from nearcode.lsp.code_actions.symbols import Symbol, supported, symbol_at
from nearcode.shared.languages import language_for_path
from nearcode.shared.protocol.editor import DocstringResult, SignatureCheck

log = logging.getLogger("nearcode.lsp")

DOCSTRING_MAX_TOKENS = 200  # small models often echo the code before the docstring


@dataclass(frozen=True)
class Target:
    uri: str
    source: str
    language: str
    symbol: Symbol


def find_target(context: ActionContext, args: dict[str, Any]) -> Target:
    """The open document and the symbol at `args["position"]`, or a clear invalid-params error."""
    uri = args.get("uri")
    position = args.get("position") or (args.get("range") or {}).get("start")
    if not isinstance(uri, str) or not isinstance(position, dict):
        raise JsonRpcInvalidParams('nearcode: expected arguments [{"uri": …, "position": {"line", "character"}}]')
    if uri not in context.ls.workspace.text_documents:
        raise JsonRpcInvalidParams(f"nearcode: document {uri} is not open")
    document = context.ls.workspace.get_text_document(uri)
    language = document.language_id or language_for_path(to_fs_path(uri) or uri)
    if not supported(language):
        raise JsonRpcInvalidParams(f"nearcode: {language} is not supported for code actions")
    symbol = symbol_at(document.source, language, int(position.get("line", 0)), int(position.get("character", 0)))
    if symbol is None:
        raise JsonRpcInvalidParams("nearcode: no function, method or class at this position")
    return Target(uri, document.source, language, symbol)


def edit_json(uri: str, start_line: int, end_line: int, text: str) -> dict[str, Any]:
    """A WorkspaceEdit as JSON, for previews the client applies itself."""
    span = {"start": {"line": start_line, "character": 0}, "end": {"line": end_line, "character": 0}}
    return {"changes": {uri: [{"range": span, "newText": text}]}}


async def run_docstring(context: ActionContext, args: dict[str, Any]) -> DocstringResult:
    target = find_target(context, args)
    symbol = target.symbol
    replace = bool(args.get("replace", False))
    if symbol.existing_doc is not None and not replace:
        raise JsonRpcInvalidParams(f'nearcode: {symbol.name} already has a docstring (pass "replace": true to replace it)')
    if symbol.language == "python" and symbol.body_line <= symbol.start_line:
        raise JsonRpcInvalidParams(f"nearcode: put the body of {symbol.name} on its own line first")
    style = ds.detect_style(target.source, target.language)
    place = ds.placement(symbol, replace)
    lines = target.source.split("\n")
    original = "".join(line + "\n" for line in lines[place.start_line : place.end_line])
    stream = args.get("apply", "stream") != "preview" and context.can_apply_edits
    progress = WorkProgress(context, f"nearcode: docstring for {symbol.name}")
    work: asyncio.Task[tuple[ds.DocParts, ds.SignatureCheck, str]] | None = None

    def stop_streaming() -> None:  # the user typed into the docstring's lines: stop generating
        if work is not None:
            work.cancel()

    region = LiveRegion(context, target.uri, place.start_line, place.end_line, original, stop_streaming) if stream else None
    try:
        work = asyncio.create_task(_generate_checked(context, target, style, region, progress))
        await progress.begin("asking the local model", on_cancel=work)
        return await _finish(target, style, place, region, progress, work)
    finally:
        if region is not None:
            region.close()


async def _finish(
    target: Target, style: str, place: ds.DocPlacement, region: LiveRegion | None, progress: WorkProgress,
    work: asyncio.Task[tuple[ds.DocParts, ds.SignatureCheck, str]],
) -> DocstringResult:
    """The result, however the generation ended; the region's lines put back unless a docstring
    worth offering is in place."""
    symbol = target.symbol
    try:
        parts, check, finish = await work
    except asyncio.CancelledError:
        restored = await asyncio.shield(_restore(region))
        reason = region.conflict if region is not None and region.conflict else "cancelled"
        progress.end(reason)
        if work.cancelled() and not _current_task_cancelling():
            return DocstringResult(offered=False, reason=reason, restored=restored)
        raise
    except Exception as exc:  # the daemon answered an error, died mid-stream, or sent garbage
        log.warning("docstring generation failed: %s", exc)
        restored = await _restore(region)
        progress.end("failed")
        return DocstringResult(offered=False, reason=f"the generation failed: {exc}", restored=restored)
    result = DocstringResult(
        offered=False, style=style, symbol=symbol.name, params=list(symbol.params), finish_reason=finish,
        signature_check=SignatureCheck(unknown_dropped=list(check.unknown), missing_at_first=list(check.missing)),
    )
    final_check = ds.check_signature(parts, symbol)
    if not parts.summary or not final_check.ok:
        restored = await _restore(region)
        reason = "the model gave no summary" if not parts.summary else f"undocumented parameters: {', '.join(final_check.missing)}"
        progress.end(f"not offered: {reason}")
        return result.model_copy(update={"reason": reason, "restored": restored})
    text = ds.render_doc(parts, style, symbol)
    applied = region is not None and await region.show(text, final=True)
    if region is not None and not applied:
        restored = await _restore(region)
        reason = region.conflict or "the editor did not take the edit"
        progress.end(f"not applied: {reason}")
        return result.model_copy(update={"reason": reason, "restored": restored, "docstring": text})
    progress.end("docstring inserted" if applied else "docstring ready")
    line = region.start_line if region is not None else place.start_line
    return result.model_copy(update={
        "offered": True,
        "applied": applied,
        "docstring": text,
        "line": line,
        "streamed_edits": region.edits_applied if region else 0,
        "edit": None if applied else edit_json(target.uri, place.start_line, place.end_line, text),
    })


async def _restore(region: LiveRegion | None) -> bool:
    """Put the region's lines back; True when the document holds them as they were."""
    if region is None:
        return True
    try:
        return await region.restore()
    except Exception:
        log.warning("could not restore the lines of %s", region.uri, exc_info=True)
        return False


async def _generate_checked(
    context: ActionContext, target: Target, style: str, region: LiveRegion | None, progress: WorkProgress
) -> tuple[ds.DocParts, ds.SignatureCheck, str]:
    symbol = target.symbol

    async def on_text(text: str) -> None:
        partial = ds.parse_doc(ds.clean_model_text(text))
        progress.report(f"{len(text)} characters")
        if region is not None and ds.described(partial.summary):
            await region.show(ds.render_doc(_visible(partial, symbol), style, symbol))

    result = await generate(
        context, ds.docstring_messages(symbol, style), f"{target.uri}#docstring", DOCSTRING_MAX_TOKENS, on_text
    )
    parts = ds.parse_doc(ds.clean_model_text(result.text))
    check = ds.check_signature(parts, symbol)
    repaired = ds.repair(parts, symbol)
    if check.missing:
        progress.report(f"asking again for {', '.join(check.missing)}")
        follow_up = await generate(
            context, ds.missing_params_messages(symbol, check.missing), f"{target.uri}#docstring", 80
        )
        found = ds.parse_param_lines(follow_up.text)
        repaired = ds.repair(ds.DocParts(repaired.summary, {**repaired.params, **found}, repaired.returns), symbol)
    return repaired, check, result.finish_reason


def _visible(parts: ds.DocParts, symbol: Symbol) -> ds.DocParts:
    """While streaming: only parameters that exist, so a wrong name never flashes in the editor."""
    params = {name: text for name, text in parts.params.items() if name in symbol.params and ds.described(text)}
    return ds.DocParts(parts.summary, params, parts.returns if ds.described(parts.returns) else "")


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())
