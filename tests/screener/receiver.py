"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread.

Its behaviour is set per test: accept, fail with 500 a number of times first, answer a
fixed status, answer 404 off one path (a wrong URL), or hold each request until released
(slow past the client's timeout, or blocking while the test kills the client).  It
records every request it read.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A webhook endpoint; ``requests`` holds ``(headers, body)`` of every POST read."""

    def __init__(
        self,
        fail_first: int = 0,
        status: int = 200,
        hold: bool = False,
        hold_from: int = 0,
        only_path: str | None = None,
    ) -> None:
        self.fail_first = fail_first
        self.only_path = only_path  # when set, a POST to another path gets 404
        self.paths: list[str] = []  # the path (with query) of every POST read
        self.status = status
        self.hold = hold or hold_from > 0
        self.hold_from = hold_from  # requests after this many are held (0: all, with hold)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.received = threading.Event()  # set when a request has been read
        self.release = threading.Event()  # held requests answer once set
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                    receiver.paths.append(self.path)
                    n = len(receiver.requests)
                if n > receiver.hold_from:
                    receiver.received.set()
                if receiver.hold and n > receiver.hold_from:
                    receiver.release.wait(60)  # bounds a hang only; released by the test
                code = 500 if n <= receiver.fail_first else receiver.status
                wrong = receiver.only_path and self.path.split("?")[0] != receiver.only_path
                code = 404 if wrong else code
                try:
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:  # the client gave up (timed out or was killed)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def keys(self) -> list[str]:
        return [h["Idempotency-Key"] for h, _ in self.requests]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
