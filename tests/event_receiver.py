"""A local HTTP endpoint that records the events the DAG-side callbacks post (the Django side's stand-in).

Each request is answered from a script of (status, delay) pairs, then 204s; the
tests read what arrived and check its signature the way the Django side will.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_client import callbacks


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event

    def signed_with(self, secret: str) -> bool:
        """The signature header is HMAC-SHA256(secret, timestamp + "." + body), recomputed here."""
        timestamp = self.headers[callbacks.TIMESTAMP_HEADER]
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(self.headers[callbacks.SIGNATURE_HEADER], f"sha256={expected}")


class _Server(ThreadingHTTPServer):
    # Handler threads are joined at close, so no socket outlives the test.
    daemon_threads = False
    block_on_close = True


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        #: (status, seconds to wait before answering) for the next requests, in order.
        self.script: list[tuple[int, float]] = []
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                status, delay = receiver.script.pop(0) if receiver.script else (204, 0.0)
                if delay:
                    receiver._release.wait(delay)
                try:
                    self.send_response(status)
                    if status in (301, 302, 307, 308):
                        self.send_header("Location", "/elsewhere/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/airflow-client/events/"
        # A short poll: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [request.event for request in self.received]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
