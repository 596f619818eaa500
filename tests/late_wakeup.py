"""A read of a unix socket cancelled in the loop iteration in which data arrives: the race in anyio's
UNIXSocketStream (the daemon client's transport) that lsp/event_loop.py keeps out of the log.

Run as a script it is the real language server (`nearcode lsp --stdio`) with one more command,
`nearcode.test.cancelledRead`, which arranges that race in the server's own event loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any

import anyio

CANCELLED_READ_COMMAND = "nearcode.test.cancelledRead"


async def cancel_a_read_as_data_arrives() -> bool:
    """True when it happened as arranged: the read was cancelled by a callback queued before the
    selector saw the socket readable, so anyio's queued `set_result(None)` ran on a cancelled future."""
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="nc-", dir="/tmp") as folder:
        path = os.path.join(folder, "s")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        stream = await anyio.connect_unix(path)
        peer, _ = listener.accept()  # already queued: connect_unix has returned
        try:
            read = asyncio.create_task(stream.receive())
            for _ in range(3):
                await asyncio.sleep(0)  # the read now waits for the socket (add_reader)
            peer.send(b"x")  # readable at the next select, whose reader callback is queued ...
            loop.call_soon(read.cancel)  # ... after this one, which cancels the read's future first
            for _ in range(3):
                await asyncio.sleep(0)
            return read.cancelled()
        finally:
            await stream.aclose()
            peer.close()
            listener.close()


async def _cancelled_read(ls: Any, *args: Any) -> bool:
    return await cancel_a_read_as_data_arrives()


if __name__ == "__main__":
    from nearcode.lsp.server import run_stdio, server

    server.command(CANCELLED_READ_COMMAND)(_cancelled_read)
    run_stdio()
