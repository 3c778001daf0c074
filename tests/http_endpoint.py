"""A real HTTP server on loopback for the notification tests: it records every request and
answers each with the next queued status (200 once the queue is empty), optionally slowly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Endpoint:
    server: ThreadingHTTPServer
    received: list[dict[str, Any]] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)
    delay: float = 0.0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def by_path(self) -> dict[str, dict[str, Any]]:
        """The requests by URL path (without the query): the last one wins."""
        return {urlsplit(r["path"]).path: r for r in self.received}


@contextmanager
def serve() -> Iterator[Endpoint]:
    state: Endpoint

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append({"path": self.path, "body": body,
                                   "headers": dict(self.headers.items())})
            time.sleep(state.delay)
            code = state.replies.pop(0) if state.replies else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Endpoint(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
