"""Local-only at the system level: every connect/sendto/sendmsg of every process of a session, seen
by strace -f, goes to a unix socket or loopback. The session: a daemon whose engine is a vLLM
stand-in child (tests/standin_engine.py run through the vLLM engine's own supervisor and network
isolation), and a language server that completes, writes a docstring and generates tests that
are then run (sandboxed) after the user agrees.

Both the daemon and the language server run in network namespaces with only loopback
(tests/netns.py): whatever regresses, no packet can leave the machine. The checks are about what
was tried: the only non-loopback attempt allowed is the generated test's own, made from inside
its sandbox, and it must have died there (ENETUNREACH). The vLLM child must not reach a listener
in the daemon's own namespace either: it has a namespace of its own.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_actions import open_document, run_command, start_editor_client
from tests.netns import in_namespace
from tests.standin import ENGINE, free_port
from tests.support import (
    NEARCODE,
    daemon_http,
    end_session,
    env_for,
    new_runtime_dir,
    start_daemon,
    stop_daemon,
)

# The real daemon and language server (the model's answers are a stand-in's): the real tier.
pytestmark = pytest.mark.real

TRACE = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o"]
UNREACHABLE = "192.0.2.1"  # TEST-NET-1: never routed; in these namespaces not even a route exists
TESTS = f'''```python
import socket, subprocess, sys


def test_add():
    assert add(1, 2) == 3


def test_tries_the_network():
    # A child Python: the in-process guard is not there, only the sandbox's namespace.
    probe = "import socket; socket.create_connection(('{UNREACHABLE}', 9), timeout=2)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "Network is unreachable" in done.stderr, done.stderr
```'''
ANSWERS = [
    {"match": "Write 2 short", "text": TESTS},
    {"match": "docstring", "text": '"""Add two numbers.\n\nArgs:\n    a: The first.\n    b: The second.\n\nReturns:\n    The sum.\n"""'},
    {"match": "", "text": "return a + b"},
]


@dataclass
class Connection:
    pid: int
    call: str
    family: str
    address: str
    port: int
    result: str


def connections(log: Path) -> list[Connection]:
    """Every connect/sendto/sendmsg with an address in an strace -f log."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"^(\d+)\s+(connect|sendto|sendmsg)\((.*)\)\s+=\s+(.*)$", line)
        if not match:
            continue
        pid, call, args, result = match.groups()
        family = re.search(r"sa_family=(AF_\w+)", args)
        if family is None:
            continue  # a connected socket: no address given
        address = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"|sun_path=(@?"[^"]*")', args)
        text = next((g for g in address.groups() if g), "") if address else ""
        port = re.search(r"sin6?_port=htons\((\d+)\)", args)
        found.append(Connection(int(pid), call, family.group(1), text, int(port.group(1)) if port else 0, result))
    return found


def is_local(connection: Connection) -> bool:
    if connection.family in ("AF_UNIX", "AF_NETLINK", "AF_UNSPEC"):
        return True
    return connection.address.startswith("127.") or connection.address in ("::1", "::ffff:127.0.0.1")


@pytest.fixture
def traced_daemon(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, Path, int]]:
    """A daemon (vLLM engine, stand-in child) under strace in its own loopback-only namespace."""
    assert shutil.which("strace"), "strace is needed (Debian package strace; `make test` installs it as root: .ci/system-packages)"
    script = tmp_path / "answers.json"
    script.write_text(json.dumps(ANSWERS))
    probe_file, log = tmp_path / "child-probe.json", tmp_path / "daemon.strace"
    listen = free_port()
    child = (f"{sys.executable} {ENGINE} --port {{port}} --script {script} --served-model-name {{served_model_name}} "
             f"--probe-port {listen} --probe-file {probe_file}")  # fmt: skip
    runtime = new_runtime_dir()
    env = {**env_for(runtime), "XDG_STATE_HOME": str(tmp_path / "state")}
    argv = [*TRACE, str(log), *NEARCODE, "daemon", "--engine", "vllm", "--vllm-model", "standin",
            "--vllm-command", child, "--family", "qwen2.5-coder"]  # fmt: skip
    process = start_daemon(env, command=in_namespace(argv, listen=listen), log=tmp_path / "daemon.out")
    try:
        yield env, log, probe_file, listen
    finally:
        stop_daemon(env)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
        end_session(process)  # the bridge and the stand-in too, whatever state the test left
        subprocess.run(["rm", "-rf", runtime], check=False)


async def test_every_process_of_a_session_stays_on_loopback(
    traced_daemon: tuple[dict[str, str], Path, Path, int], tmp_path: Path
) -> None:
    env, daemon_log, probe_file, listen = traced_daemon
    lsp_log = tmp_path / "lsp.strace"
    project = tmp_path / "shop"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname='shop'\n")
    source = "def add(a, b):\n    return a + b\n"
    (project / "shop.py").write_text(source)
    config = ClientServerConfig(server_command=in_namespace([*TRACE, str(lsp_log), *NEARCODE, "lsp", "--stdio"]), server_env=env)
    client, editor = await start_editor_client(env, config=config)
    try:
        uri = (project / "shop.py").as_uri()
        open_document(client, editor, uri, source)
        completion = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))  # fmt: skip
        assert completion is not None
        docstring = await run_command(client, "nearcode.generateDocstring", {"uri": uri, "position": {"line": 0, "character": 4}})
        assert docstring["offered"], docstring
        tests = await run_command(client, "nearcode.generateTests", {"uri": uri, "position": {"line": 0, "character": 4}})
        assert tests["run"]["consent"] == "run" and tests["run"]["sandbox"] == "bubblewrap", tests["run"]
        assert tests["run"]["outcome"] == "passed", tests["run"]  # the network test saw "unreachable"
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
        assert status["engine"] == "vllm" and status["localOnly"] is True, status
    finally:
        await client.shutdown_session()
    with daemon_http(env) as http:
        model = http.get("/api/model").json()
    assert model["engine_metadata"]["network"] == "network namespace with only loopback", model["engine_metadata"]
    # The stand-in child could not reach the listener in the daemon's own namespace.
    probe = json.loads(probe_file.read_text())["probe"]
    assert probe != "connected" and "Refused" in probe, probe

    seen = connections(daemon_log) + connections(lsp_log)
    assert any(c.family == "AF_UNIX" for c in connections(lsp_log)), "strace saw the language server reach the daemon"
    assert any(c.address == "127.0.0.1" and c.port == listen for c in connections(daemon_log)), \
        "strace saw the vLLM child's probe (the child is traced too)"  # fmt: skip
    outside = [c for c in seen if not is_local(c)]
    attempts = [c for c in outside if c.address == UNREACHABLE]
    assert attempts, "strace saw the sandboxed test's attempt"
    assert all("ENETUNREACH" in c.result for c in attempts), attempts
    assert [c for c in outside if c.address != UNREACHABLE] == [], "a process tried to reach another machine"
