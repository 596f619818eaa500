"""Run a command in a network namespace of its own, with only a loopback interface: no network.

vLLM on the CPU serves on a unix socket (`--uds`), but inside it torch.distributed's gloo backend
opens a dozen TCP listeners on 127.0.0.1 even for a single process (one per process group),
unauthenticated: any local user could connect to them. In a network namespace of its own, the
child's 127.0.0.1 is its own: nothing on the machine can reach those listeners, and the child
cannot reach the network (no telemetry, no downloads), whatever its settings say. Unix sockets
are files, so the daemon still reaches vLLM's socket in the private runtime directory.

  python -m nearcode.daemon.engines.netns -- PROGRAM ARGS...

Unprivileged users get the namespace through a user namespace (mapping only their own uid and
gid). Where namespaces are not allowed (some containers, hardened kernels), the command runs
without one and the first line of output says so; the daemon reports it in its status.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
ISOLATED = "nearcode-netns: isolated"  # first line of output: what the daemon reports
NOT_ISOLATED = "nearcode-netns: not isolated"


def enter_private_network() -> None:
    """unshare(2) a network namespace (inside a user namespace unless root) and bring loopback up."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET if uid == 0 else CLONE_NEWUSER | CLONE_NEWNET
    if libc.unshare(flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    if uid != 0:
        # The same ids inside: files keep their owners; capabilities last until exec.
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        current = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", current | IFF_UP))


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: python -m nearcode.daemon.engines.netns -- PROGRAM ARGS...", file=sys.stderr)
        return 2
    command = argv[1:]
    try:
        enter_private_network()
        print(ISOLATED, flush=True)
    except OSError as exc:
        print(f"{NOT_ISOLATED}: {exc}", flush=True)
    os.execvp(command[0], command)
    return 127  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
