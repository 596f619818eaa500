"""Network namespaces for tests: traffic that cannot leave the machine, whatever the code under test
does (`unshare -n` as root, `unshare -rn` otherwise: a namespace with only loopback).

    python tests/netns.py [--address 10.254.0.1] -- ARGV...

run inside such a namespace brings loopback up, optionally gives it one more (non-loopback)
address, so a "remote" server can exist in the namespace, and execs ARGV.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
REMOTE_ADDRESS = "10.254.0.1"  # private, and in a namespace with only loopback: reaches nothing
_KEPT: list[socket.socket] = []  # listeners that must live until exec


def unshare_net() -> list[str]:
    """The command prefix that runs a program in a new network namespace with only loopback."""
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


def in_namespace(argv: list[str], address: str = "", listen: int = 0) -> list[str]:
    """`argv` in a new namespace with only loopback (plus `address`); with `listen`, a socket
    listens on 127.0.0.1:`listen` in it for as long as `argv` runs (its fd is inherited), so a
    connection from the namespace succeeds, and one from any other namespace does not."""
    extra = ["--address", address] if address else []
    extra += ["--listen", str(listen)] if listen else []
    return [*unshare_net(), sys.executable, str(HERE), *extra, "--", *argv]


def _setup(address: str, listen: int) -> None:
    sys.path.insert(0, str(HERE.parents[1]))
    from nearcode.shared.netns_bridge import loopback_up

    loopback_up()
    if address:
        siocsifaddr = 0x8916
        request = struct.pack("16sH2s4s8s", b"lo:nc", socket.AF_INET, b"\0\0", socket.inet_aton(address), b"\0" * 8)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock, siocsifaddr, request)
    if listen:
        listener = socket.socket()
        listener.bind(("127.0.0.1", listen))
        listener.listen(64)
        listener.set_inheritable(True)  # kept open across exec: the kernel accepts into its backlog
        _KEPT.append(listener)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default="")
    parser.add_argument("--listen", type=int, default=0)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    _setup(args.address, args.listen)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
