"""Local-only mode, enforced inside the process: an audit hook on socket connections.

`install_network_guard` adds a `sys.addaudithook` hook that sees every Python-level
`socket.connect`, `socket.sendto`/`sendmsg` and name lookup (`socket.getaddrinfo`,
`gethostbyname`, `gethostbyaddr`). Unix sockets and loopback addresses always pass; anything else
is refused with PermissionError (the caller sees a failed connection) and counted, unless the mode
is "cloud-allowed" and the destination is the configured cloud host.

Installed in the language server (lsp/server.py) and in the daemon (daemon/server.py; its mode comes
from `NEARCODE_PRIVACY_MODE`, default local-only), and in the sandbox that runs generated tests
(lsp/code_actions/test_runner.py). Audit hooks cannot be removed, so there is one guard per process
whose policy can change. The hook sees Python only: child processes and native code are kept off
the network by namespaces instead (nearcode/shared/isolation.py: the sandbox of generated tests, the
vLLM child), and tests/test_local_only.py checks every process of a session at the system-call level.

`prompt_destination` says where a daemon sends prompts (its engine and URL), for the status the
editors show: "local-only" must describe the daemon actually in use, not a setting.

Stdlib only: the test runner loads this file into another interpreter with runpy.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOCAL_ONLY = "local-only"
CLOUD_ALLOWED = "cloud-allowed"
PRIVACY_MODE_ENV = "NEARCODE_PRIVACY_MODE"
ALLOWED_HOSTS_ENV = "NEARCODE_ALLOWED_HOSTS"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

_CONNECT_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_LOOKUP_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"})


class NetworkBlocked(PermissionError):
    """A connection or lookup refused by the local-only guard."""


@dataclass
class NetworkGuard:
    process: str
    mode: str = LOCAL_ONLY
    allowed_hosts: frozenset[str] = frozenset()  # cloud host names and addresses (cloud-allowed only)
    local_connections: int = 0
    non_loopback_attempts: int = 0  # every attempt, blocked or allowed
    blocked: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_policy(self, mode: str, cloud_hosts: tuple[str, ...] = ()) -> None:
        """Local-only blocks every non-loopback destination; cloud-allowed lets the cloud host through."""
        self.mode = mode if mode in (LOCAL_ONLY, CLOUD_ALLOWED) else LOCAL_ONLY
        self.allowed_hosts = frozenset(h.lower() for h in cloud_hosts if h) if self.mode == CLOUD_ALLOWED else frozenset()

    def allow(self, *hosts: str) -> None:
        """Let these names or addresses through too (the cloud host's resolved addresses)."""
        if self.mode == CLOUD_ALLOWED:
            self.allowed_hosts = self.allowed_hosts | {h.lower() for h in hosts if h}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "process": self.process,
                "mode": self.mode,
                "guard_installed": True,
                "local_connections": self.local_connections,
                "non_loopback_attempts": self.non_loopback_attempts,
                "blocked": self.blocked,
                "recent_non_loopback": list(self.recent),
            }

    def check_connect(self, address: Any) -> None:
        host = _host_of(address)
        if host is None or is_loopback(host):
            with self._lock:
                self.local_connections += 1
            return
        self._outside(host, "connect")

    def check_lookup(self, host: Any) -> None:
        if host is None:
            return  # getaddrinfo(None, port): the wildcard address for a listener, no lookup
        name = host.decode(errors="replace") if isinstance(host, bytes | bytearray) else str(host)
        if name == "" or is_loopback(name):
            return
        self._outside(name, "lookup")

    def _outside(self, host: str, what: str) -> None:
        allowed = host.lower() in self.allowed_hosts
        with self._lock:
            self.non_loopback_attempts += 1
            self.recent.append(f"{what} {host}{'' if allowed else ' (blocked)'}")
            if not allowed:
                self.blocked += 1
        if not allowed:
            raise NetworkBlocked(
                f"nearcode {self.mode}: blocked a {what} to {host} (only loopback is allowed; "
                'set privacyMode "cloud-allowed" and cloudEndpoint for the cloud hand-off)'
            )


def is_loopback(host: str) -> bool:
    host = host.strip("[]").split("%", 1)[0].lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(address: Any) -> str | None:
    """The host of a socket address; None for unix sockets and other non-IP families."""
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        return address[0]
    return None  # str/bytes: AF_UNIX path; anything else is not an IP destination


_guard: NetworkGuard | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event in the process: the cheap membership tests come first.
    guard = _guard
    if guard is None:
        return
    if event in _CONNECT_EVENTS:
        sock = args[0]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            guard.check_connect(args[1])
        elif getattr(sock, "family", None) == getattr(socket, "AF_UNIX", None):
            guard.check_connect(None)
    elif event in _LOOKUP_EVENTS:
        guard.check_lookup(args[0] if args else None)


def install_network_guard(process: str, mode: str = LOCAL_ONLY, cloud_hosts: tuple[str, ...] = ()) -> NetworkGuard:
    """The process's guard, installed on the first call; later calls only change its policy."""
    global _guard
    if _guard is None:
        _guard = NetworkGuard(process)
        sys.addaudithook(_audit)
    _guard.set_policy(mode, cloud_hosts)
    return _guard


def install_from_environment(process: str) -> NetworkGuard:
    """The daemon's guard: `NEARCODE_PRIVACY_MODE` (default local-only) and, for cloud-allowed,
    `NEARCODE_ALLOWED_HOSTS` (comma-separated hosts a remote engine may reach)."""
    mode = os.environ.get(PRIVACY_MODE_ENV, LOCAL_ONLY)
    hosts = tuple(h.strip() for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip())
    return install_network_guard(process, mode, hosts)


def network_guard() -> NetworkGuard | None:
    return _guard


def apply_settings(mode: str, cloud_endpoint: str) -> None:
    """Follow the language server's settings: the cloud host passes only in cloud-allowed mode."""
    if _guard is None:
        return
    host = urlsplit(cloud_endpoint).hostname if cloud_endpoint else None
    _guard.set_policy(mode, (host,) if host else ())


@dataclass(frozen=True)
class PromptDestination:
    local: bool  # the model runs on this machine (in the daemon, or a server on loopback)
    where: str  # "this machine", or the URL prompts are sent to


def prompt_destination(model_info: dict[str, Any]) -> PromptDestination:
    """Where the daemon described by `/api/model` sends prompts. The embedded engine keeps them in
    the process; every other engine names the server it talks to (`engine_metadata.url`), which is
    local only on a loopback address or a unix socket. Anything unknown is not called local."""
    engine = str(model_info.get("engine", ""))
    metadata = model_info.get("engine_metadata")
    url = str(metadata.get("url", "")) if isinstance(metadata, dict) else ""
    if engine == "llamacpp" and not url:
        return PromptDestination(True, "this machine")
    if not url:
        return PromptDestination(False, f"unknown (engine {engine or '?'} names no server)")
    parts = urlsplit(url)
    if parts.scheme in ("unix", "http+unix") or (parts.hostname is not None and is_loopback(parts.hostname)):
        return PromptDestination(True, f"this machine ({url})")
    return PromptDestination(False, url)


def network_status() -> dict[str, Any]:
    """The guard's counters for `nearcode.status` and the daemon's `/api/status`."""
    return _guard.snapshot() if _guard is not None else {"guard_installed": False}
