"""Inside a network namespace that has only loopback: bring loopback up, start a server, and
forward a unix socket (a file, so reachable from outside the namespace) to its loopback port.

    python -I -S netns_bridge.py --uds PATH --port PORT -- SERVER ARGV...

Started by nearcode/shared/isolation.py under bubblewrap or unshare for a model server (the vLLM
child) in local-only mode: the server keeps its usual `--host 127.0.0.1 --port N`, and nothing it
or its native code does can reach another machine. Stdlib only (run with -I -S); exits with the
server's exit code, and passes SIGTERM/SIGINT on to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import struct
import sys

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """`ip link set lo up` without iproute2 (a fresh namespace from unshare has lo down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _forward(port: int, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))


async def _main(uds: str, port: int, argv: list[str]) -> int:
    loopback_up()
    child = await asyncio.create_subprocess_exec(*argv)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, child.send_signal, signum)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(uds)
    old_mask = os.umask(0o077)  # the socket is the daemon's alone
    try:
        server = await asyncio.start_unix_server(lambda r, w: _forward(port, r, w), path=uds)
    finally:
        os.umask(old_mask)
    try:
        return await child.wait()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(uds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uds", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    sys.exit(asyncio.run(_main(args.uds, args.port, argv)))


if __name__ == "__main__":
    main()
