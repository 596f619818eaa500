"""The language server's daemon client against the daemon's real HTTP app on a unix socket, in
this process with a scripted engine (fast tier: no model): requests in flight survive another
request's failure, a new token at the same address is picked up, a daemon that cannot start is
not started again for every request."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn

from nearcode import __version__
from nearcode.daemon.api import Services, build_app
from nearcode.daemon.fim_service import FimService
from nearcode.daemon.prompting.fim import PromptBudget
from nearcode.daemon.prompting.templates import fim_templates
from nearcode.daemon.scheduler import Scheduler
from nearcode.daemon.stats import DaemonStats
from nearcode.lsp.daemon_client import DaemonClient, DaemonUnavailable
from nearcode.shared import paths
from nearcode.shared.endpoint import Endpoint
from nearcode.shared.protocol.daemon_api import DoneEvent, FimRequest
from tests.scripted_engine import ScriptedEngine


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"nc-client-{secrets.token_hex(4)}"  # short: a socket lives here
    monkeypatch.setenv("NEARCODE_RUNTIME_DIR", str(folder))
    return paths.runtime_dir()


@asynccontextmanager
async def serving(engine: ScriptedEngine) -> AsyncIterator[Endpoint]:
    """The daemon's app on the runtime dir's socket, with a fresh token in the address file."""
    service = FimService(Scheduler(engine), fim_templates()["qwen2.5-coder"], PromptBudget(), DaemonStats())

    async def nothing() -> None:
        return None

    token = secrets.token_urlsafe(16)
    socket_path = paths.socket_path()
    socket_path.unlink(missing_ok=True)
    server = uvicorn.Server(uvicorn.Config(build_app(Services.around(service), dict, dict, nothing, token), uds=str(socket_path),
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # uvicorn has no started event to wait on
        if server.started:
            break
        await asyncio.sleep(0.01)
    endpoint = Endpoint(transport="unix", token=token, pid=os.getpid(), path=str(socket_path), version=__version__)
    endpoint.write(paths.address_file())
    try:
        yield endpoint
    finally:
        server.should_exit = True
        await task


async def complete(client: DaemonClient, prefix: str = "x = ") -> DoneEvent:
    events = [event async for event in client.stream_fim(FimRequest(prefix=prefix, mode="multi", max_tokens=100))]
    assert isinstance(events[-1], DoneEvent), events[-1]
    return events[-1]


async def test_a_failed_request_does_not_break_the_others_in_flight(runtime: Path) -> None:
    engine = ScriptedEngine(script=lambda r: " ".join(["word"] * 40), token_delay_s=0.01)
    async with serving(engine):
        client = DaemonClient(spawn=False)
        streams = [asyncio.create_task(complete(client, f"doc{i} = ")) for i in range(3)]
        await asyncio.sleep(0.1)  # all three streaming now
        client._forget()  # what a request that failed (timeout, lost connection) does
        finals = await asyncio.wait_for(asyncio.gather(*streams), 10)
        assert [f.finish_reason for f in finals] == ["stop", "stop", "stop"]
        await client.close()


async def test_a_new_token_at_the_same_address_is_picked_up(runtime: Path) -> None:
    client = DaemonClient(spawn=False)
    async with serving(ScriptedEngine()):
        await complete(client)
    async with serving(ScriptedEngine()):  # restarted: same socket path, new token (its old
        # connection closed with the old server: the request goes out on a new one, with the old token)
        assert (await complete(client)).finish_reason == "stop"
    await client.close()


async def test_a_daemon_that_cannot_start_is_not_started_for_every_request(runtime: Path) -> None:
    client = DaemonClient(spawn=True, daemon_args=("--model", "/nonexistent/nearcode-test.gguf"), start_timeout_s=30)
    with pytest.raises(DaemonUnavailable, match="could not start"):
        await complete(client)  # the first request starts one, which fails (a second or two)
    assert client.starts == 1
    # Someone typing on: within the back-off (2 s after a first failure) no request starts one;
    # each fails at once, saying when the next try is. No sleep counts on how fast a start fails.
    failures: list[str] = []
    for _ in range(10):
        with pytest.raises(DaemonUnavailable) as refused:
            await complete(client)
        failures.append(str(refused.value))
        await asyncio.sleep(0.02)
    assert client.starts == 1, f"{client.starts} daemons started for {len(failures) + 1} requests"
    assert "could not start" in failures[-1] and "Next try in" in failures[-1]
    client.daemon_args = ("--model", "/nonexistent/other.gguf")  # new settings: try again at once
    with pytest.raises(DaemonUnavailable):
        await complete(client)
    assert client.starts == 2
    await client.close()
