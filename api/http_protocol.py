"""The API's HTTP/1.1 protocol: uvicorn's httptools protocol, with a response's writes sent together.

uvicorn writes a response's head and its body to the socket separately, as the application sends them: two ``send``
system calls, two TCP segments (asyncio sets ``TCP_NODELAY``), two wake-ups of the client, for every response. On
loopback the kernel delivers each segment inside the sender's system call: the two were 20 % of the order route's
GIL-holding samples (py-spy, ``bench/order_entry.py --profile``; docs/PERFORMANCE.md, "Stop 38"). ``Coalescing``
holds what is written until the event loop's next turn and writes it in one call: an application sends a response's
head and body in one turn (Starlette's ``Response``), so they leave together; a stream's later chunks (the live feed)
leave one turn after they are written, as before. Nothing else changes: the bytes on the wire are the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class Coalescing:
    """An asyncio transport whose writes within one turn of the loop go to ``transport`` in one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))

    def _flush(self) -> None:
        if self._held and not self._transport.is_closing():
            self._transport.write(b"".join(self._held))
        self._held.clear()

    def close(self) -> None:
        self._flush()  # what was written before a close goes out before it, as the transport would send it
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through ``Coalescing``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Coalescing(transport, self.loop))  # type: ignore[arg-type]
