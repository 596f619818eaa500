"""Keeping child processes off the network and away from the user's secrets: the Linux namespace
tools, scrubbed environments, and a network namespace with only loopback for a model server.

The in-process guard (privacy.py) sees Python's own sockets only. A child process (the vLLM server,
generated tests) can run native code, so it is started where the network does not exist:

- **bubblewrap** (`bwrap`, Debian package `bubblewrap`) when it works here (it needs unprivileged
  user namespaces, or root), else util-linux **`unshare`** (same kernel features, fewer guard
  rails). Which one works is probed once by running it. Both run the child in a user namespace
  with no capabilities left, so root's own processes are as bound as anyone's (root's remaining
  exemption, from the process-count limit, is handled by the test sandbox with a pids cgroup).
- `scrubbed_environment` keeps an allow-list of variables (locale, paths) and nothing that names a
  key, token, secret, password or credential, nor any cloud provider's variables.
- `network_isolated_argv` runs a server in a namespace with only loopback; the daemon reaches it
  through a unix socket that `netns_bridge.py` forwards to the server's loopback port inside.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Names kept from the parent's environment (and only if they name no secret).
_KEPT_NAMES = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR",
                         "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "HF_HOME", "XDG_CACHE_HOME", "VIRTUAL_ENV"})  # fmt: skip
_KEPT_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "NVIDIA_", "CUDA_", "VLLM_", "NEARCODE_TEST_")
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE", "SESSION",
                   "PRIVATE", "CERT")  # fmt: skip
_CLOUD_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCP_", "GCLOUD_", "CLOUDSDK_", "OPENAI_", "ANTHROPIC_", "HF_TOKEN",
                   "HUGGING_FACE_HUB_TOKEN", "GITHUB_", "GH_", "GITLAB_", "NPM_", "DOCKER_", "KUBECONFIG",
                   "NEARCODE_CLOUD", "NEARCODE_TEAM", "SSH_", "GPG_", "GNUPG", "DBUS_", "XDG_RUNTIME_DIR")  # fmt: skip
# What a model server must be told so it stays off the network (Hugging Face hub, usage statistics).
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
}


def scrubbed_environment(parent: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's locale and paths, without a single secret; then `extra` (set by the caller)."""
    env = {}
    for name, value in parent.items():
        upper = name.upper()
        if not (name in _KEPT_NAMES or name.startswith(_KEPT_PREFIXES)):
            continue
        if any(marker in upper for marker in _SECRET_MARKERS) or upper.startswith(_CLOUD_PREFIXES):
            continue
        env[name] = value
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class IsolationTools:
    """What this machine offers for namespaces, found once (`isolation_tools()`)."""

    bwrap: str = ""  # path of a working bubblewrap
    bwrap_size: bool = False  # its --size option (tmpfs size limit, bubblewrap 0.8+)
    unshare: str = ""  # path of a working util-linux unshare (with a user namespace)
    problem: str = ""  # why neither works

    @property
    def available(self) -> bool:
        return bool(self.bwrap or self.unshare)

    @property
    def kind(self) -> str:
        return "bubblewrap" if self.bwrap else "unshare" if self.unshare else ""


def _works(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def isolation_tools() -> IsolationTools:
    """Probe bubblewrap and unshare by running each in the namespaces we use (cached: one probe
    per process)."""
    probe = [sys.executable, "-I", "-S", "-c", "pass"]
    bwrap = shutil.which("bwrap") or ""
    if bwrap and not _works([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
                             "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--", *probe]):  # fmt: skip
        bwrap = ""
    size = False
    if bwrap:
        help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False).stdout
        size = "--size" in help_text
    unshare = shutil.which("unshare") or ""
    if unshare and not _works([unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork",
                               "--kill-child", "--mount-proc", "--", *probe]):  # fmt: skip
        unshare = ""
    problem = "" if bwrap or unshare else (
        "neither bubblewrap nor unshare can create namespaces here (install the bubblewrap package, "
        "and allow unprivileged user namespaces)"
    )
    return IsolationTools(bwrap, size, unshare, problem)


def network_isolated_argv(argv: tuple[str, ...], socket_path: str, port: int) -> tuple[str, ...] | None:
    """`argv` (a server listening on 127.0.0.1:`port`) run in a network namespace that has only
    loopback, reachable from outside through the unix socket `socket_path`; None when this machine
    cannot create one. The filesystem stays as it is (the server needs its model and GPU)."""
    tools = isolation_tools()
    bridge = (sys.executable, "-I", "-S", str(Path(__file__).with_name("netns_bridge.py")),
              "--uds", socket_path, "--port", str(port), "--")  # fmt: skip
    if tools.bwrap:
        # No user switch here: the server keeps the daemon's user (its files, its GPU).
        # Its own PID namespace too: whatever the server forks dies with the namespace.
        return (tools.bwrap, "--dev-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "--",
                *bridge, *argv)  # fmt: skip
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        return (unshare, "--net", "--pid", "--fork", "--kill-child", "--", *bridge, *argv)
    if tools.unshare:
        return (tools.unshare, "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--",
                *bridge, *argv)  # fmt: skip
    return None
