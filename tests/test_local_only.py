"""Local-only mode is provably local: the guard blocks and counts every non-loopback attempt, and a
whole session (completions, code actions, a refused cloud request) makes none, in the language
server and in the daemon alike; at the system-call level (strace) across every process of a
session, child processes and the vLLM stand-in included, nothing but loopback and unix sockets is
ever tried, except by the sandboxed generated tests, whose attempt dies in their empty namespace.

The guard's own probes run in a network namespace with only loopback (tests/netns.py): should the
guard regress, an attempt reaches the socket call and fails there ("reached the socket call"),
and no packet ever leaves the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from nearcode.shared import privacy
from tests.lsp_actions import code_actions, open_document, run_command, start_editor_client
from tests.netns import in_namespace
from tests.support import FIB, daemon_status

PROBE = """
import json, socket, sys
sys.path.insert(0, sys.argv[1])
from nearcode.shared import privacy
guard = privacy.install_network_guard("probe", sys.argv[2], tuple(sys.argv[3:]))
results = {}
for name, attempt in {
    "tcp_documentation_net": lambda: socket.create_connection(("192.0.2.1", 9), timeout=0.5),
    # 0.0.0.0 is not loopback to the guard, but Linux connects it to this machine: an allowed
    # "cloud host" that keeps every packet local
    "tcp_cloud_host": lambda: socket.create_connection(("0.0.0.0", 9), timeout=0.5),
    "udp_sendto": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.51.100.7", 53)),
    "dns_lookup": lambda: socket.getaddrinfo("example.com", 443),
    "loopback": lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.5),
    "localhost_lookup": lambda: socket.getaddrinfo("localhost", 80),
}.items():
    try:
        attempt()
        results[name] = "ok"
    except privacy.NetworkBlocked:
        results[name] = "blocked"
    except OSError as exc:
        results[name] = type(exc).__name__  # reached the OS: refused, unreachable...
with open("/proc/net/dev") as dev, open("/proc/net/route") as route:
    interfaces = sorted(line.split(":")[0].strip() for line in dev.readlines()[2:])
    routes = len(route.readlines()) - 1
print(json.dumps({"results": results, "guard": guard.snapshot(), "interfaces": interfaces, "routes": routes}))
"""


def _probe(mode: str, *hosts: str) -> dict[str, object]:
    repo = str(Path(__file__).resolve().parents[1])
    argv = in_namespace([sys.executable, "-c", PROBE, repo, mode, *hosts])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    report = dict(json.loads(out.stdout))
    # Where the probe ran: a namespace with loopback alone and no route anywhere else.
    assert report["interfaces"] == ["lo"] and report["routes"] == 0, report
    return report


def test_the_probes_cannot_leave_the_machine() -> None:
    """The same attempts without the guard: they reach the socket call and fail there."""
    repo = str(Path(__file__).resolve().parents[1])
    unguarded = PROBE.replace('guard = privacy.install_network_guard("probe", sys.argv[2], tuple(sys.argv[3:]))',
                              "guard = privacy.NetworkGuard('unguarded')")  # fmt: skip
    out = subprocess.run(in_namespace([sys.executable, "-c", unguarded, repo, "local-only"]), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    results = json.loads(out.stdout)["results"]
    assert results["tcp_documentation_net"] == "OSError" or results["tcp_documentation_net"].endswith("Error"), results
    assert results["tcp_documentation_net"] != "ok" and results["udp_sendto"] != "ok", results
    assert results["dns_lookup"] != "ok", results
    assert results["loopback"] == "ConnectionRefusedError", "loopback exists in the namespace"


def test_guard_blocks_and_counts_everything_but_loopback() -> None:
    report = _probe(privacy.LOCAL_ONLY)
    results, guard = report["results"], report["guard"]
    assert isinstance(results, dict) and isinstance(guard, dict)
    assert results["tcp_documentation_net"] == results["tcp_cloud_host"] == "blocked"
    assert results["udp_sendto"] == "blocked"
    assert results["dns_lookup"] == "blocked"
    assert results["loopback"] != "blocked" and results["localhost_lookup"] == "ok"
    assert guard["non_loopback_attempts"] == 4 and guard["blocked"] == 4
    assert guard["local_connections"] >= 1


def test_cloud_allowed_lets_only_the_cloud_host_through() -> None:
    report = _probe(privacy.CLOUD_ALLOWED, "0.0.0.0")
    results, guard = report["results"], report["guard"]
    assert isinstance(results, dict) and isinstance(guard, dict)
    assert results["tcp_cloud_host"] == "ConnectionRefusedError"  # let through (nothing listens on port 9)
    assert results["tcp_documentation_net"] == "blocked"
    assert results["udp_sendto"] == "blocked" and results["dns_lookup"] == "blocked"
    assert guard["non_loopback_attempts"] == 5 and guard["blocked"] == 3  # the cloud host: lookup + connect


def test_loopback_names() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "api.localhost"):
        assert privacy.is_loopback(host), host
    for host in ("10.0.0.1", "192.168.1.2", "example.com", "0.0.0.0", "::"):
        assert not privacy.is_loopback(host), host


async def test_a_whole_session_makes_no_non_loopback_attempt(daemon_env: dict[str, str], tmp_path: Path) -> None:
    client, editor = await start_editor_client(daemon_env)  # default settings: local-only
    try:
        uri = (tmp_path / "fib.py").as_uri()
        open_document(client, editor, uri, FIB)
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=3, character=8),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
        assert result is not None
        actions = await code_actions(client, uri, 0, 4, end=(4, 12))
        assert actions and not [a for a in actions if "cloud" in str(a.kind)], "no cloud action in local-only mode"
        docstring = await run_command(client, "nearcode.generateDocstring", {"uri": uri, "position": {"line": 0, "character": 4}})
        assert "offered" in docstring
        selection = {"uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 4, "character": 0}}, "task": "explain"}
        for command in ("nearcode.askCloud", "nearcode.previewCloudPayload"):
            with pytest.raises(Exception) as refused:
                await run_command(client, command, selection)
            message = str(refused.value)
            assert "local-only" in message and '"cloud-allowed"' in message
            assert "cloudEndpoint" in message and "NEARCODE_CLOUD_API_KEY" in message
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="nearcode.status"))
        lsp_network = status["network"]
        assert lsp_network["guard_installed"] and lsp_network["mode"] == "local-only"
        assert lsp_network["local_connections"] >= 1, "the guard saw the connection to the daemon"
        assert lsp_network["non_loopback_attempts"] == 0, lsp_network["recent_non_loopback"]
        daemon_network = daemon_status(daemon_env)["network"]
        assert daemon_network["guard_installed"] and daemon_network["mode"] == "local-only"
        assert daemon_network["non_loopback_attempts"] == 0, daemon_network["recent_non_loopback"]
    finally:
        await client.shutdown_session()
