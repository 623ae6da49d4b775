"""The API's HTTP protocol (``api.http_protocol``): a response's head and body leave in one write, the bytes are
uvicorn's own, and a stream's chunks still leave as they are sent. A real uvicorn server on a loopback socket."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.http_protocol import Coalescing, HttpProtocol

_RELEASE = threading.Event()


async def _order(_request: Request) -> JSONResponse:
    return JSONResponse({"order_id": "0b7c", "status": "accepted"}, status_code=202)


async def _feed(_request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await asyncio.to_thread(_RELEASE.wait, 10)  # the client has read the first chunk
        yield b"data: second\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


_APP = Starlette(routes=[Route("/order", _order, methods=["POST"]), Route("/feed", _feed)])


@contextmanager
def _serving(protocol: type[asyncio.Protocol]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(_APP, http=protocol, log_level="warning", date_header=False, server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def _exchange(port: int, request: bytes) -> bytes:
    """What the server sends for ``request`` until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        return received


_POST = b"POST /order HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"


def test_the_answer_is_byte_for_byte_what_uvicorn_sends() -> None:
    with _serving(HttpToolsProtocol) as port:
        stock = _exchange(port, _POST)
    with _serving(HttpProtocol) as port:
        ours = _exchange(port, _POST)
    assert stock.startswith(b"HTTP/1.1 202 Accepted\r\n") and stock.endswith(b'"status":"accepted"}')
    assert ours == stock


def test_a_streams_chunk_reaches_the_client_before_the_next_is_made() -> None:
    _RELEASE.clear()
    with _serving(HttpProtocol) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /feed HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        received = b""
        while b"data: first" not in received:  # a held chunk would time this out
            received += client.recv(65536)
        assert b"data: second" not in received
        _RELEASE.set()
        while chunk := client.recv(65536):
            received += chunk
    assert received.index(b"data: first") < received.index(b"data: second")


class _Recording:
    """A transport that records each write and the close."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def write(self, data: bytes) -> None:
        self.calls.append(data)

    def close(self) -> None:
        self.calls.append("close")

    def is_closing(self) -> bool:
        return "close" in self.calls

    def get_write_buffer_size(self) -> int:
        return 0


def test_writes_in_one_turn_go_out_in_one_write_and_before_a_close() -> None:
    async def scenario() -> list[Any]:
        recording = _Recording()
        transport = Coalescing(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(memoryview(b"body"))
        assert recording.calls == [] and transport.get_write_buffer_size() == 23
        await asyncio.sleep(0)
        transport.write(b"next")
        transport.close()
        transport.write(b"after the close")
        await asyncio.sleep(0)
        return recording.calls

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next", "close"]
