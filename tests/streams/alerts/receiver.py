"""A webhook receiver the alert tests run on 127.0.0.1: it records every request and answers as scripted (500 to
the next N requests, always 500 on some paths, 404 on paths ending -404), and goes down and comes back on one port."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    key: str
    rule: str
    signature: str
    body: bytes
    status: int


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.failing = 0  # answer 500 to this many requests next
        self.fail_once_taken: int | None = None  # answer 500 to everything once this many were taken
        self.broken_paths: set[str] = set()  # always 500 here
        self.delay_s = 0.0
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer(self.path)
                if receiver.delay_s:
                    threading.Event().wait(receiver.delay_s)
                received = Received(
                    self.path,
                    self.headers.get("Idempotency-Key", ""),
                    self.headers.get("Tradecore-Alert-Rule", ""),
                    self.headers.get("Tradecore-Signature", ""),
                    body,
                    status,
                )
                with receiver._lock:
                    receiver.requests.append(received)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        # Polled for a shutdown every 50 ms instead of socketserver's 500: each stop waited out the poll (half a second
        # a test, in the unit lane).
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Go down: connections are refused until ``start`` again (same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, path: str) -> int:
        with self._lock:
            if path in self.broken_paths:
                return 500
            if path.endswith("-404"):
                return 404
            if self.failing > 0:
                self.failing -= 1
                return 500
            taken = sum(1 for r in self.requests if r.status == 200)
            if self.fail_once_taken is not None and taken >= self.fail_once_taken:
                return 500
            return 200

    def taken(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]
