"""The daemon's request path (FimService + Scheduler) in the test's own event loop, behind the one
DaemonClient method the completion pipeline uses (`stream_fim`): no HTTP, no process, any engine.

For fast tests of the language server's decisions (lsp/coordinator.py) on top of the real daemon
logic and a scripted engine (tests/scripted_engine.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.daemon.streams import ServiceError
from nearcode.shared.protocol.daemon_api import ErrorEvent, FimRequest, StreamEvent
from tests.scripted_engine import ScriptedEngine


class InProcessDaemon:
    def __init__(self, engine: ScriptedEngine) -> None:
        self.engine = engine
        self.scheduler = Scheduler(engine)
        self.service = FimService(self.scheduler, fim_templates()["qwen2.5-coder"], PromptBudget(), DaemonStats())
        self.requests: list[FimRequest] = []

    async def stream_fim(self, request: FimRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        try:
            async for event in self.service.stream(request):
                yield event
        except ServiceError as exc:
            yield ErrorEvent(message=str(exc))
