"""A real webhook receiver on 127.0.0.1 that can be slow, fail, or answer with garbage.

``Receiver`` is an HTTP server in a thread: each POST is recorded, then answered with the next
status of ``answers`` (then 204). ``hold`` makes it keep requests without answering until
released (or for ``hold_seconds``). ``RawReceiver`` answers every connection with fixed bytes,
whatever they are: what a broken or hostile receiver sends.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from servers import HOST, TIMEOUT, wait_until


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: list[int] = []
        #: Extra headers per answer status (a redirect's Location, say).
        self.answer_headers: dict[int, dict[str, str]] = {}
        self.hold_seconds = 0.0
        self.released = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                    status = receiver.answers.pop(0) if receiver.answers else 204
                    hold = receiver.hold_seconds
                if hold:
                    receiver.released.wait(hold)
                self.send_response(status)
                for name, value in receiver.answer_headers.get(status, {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hooks/secret-part"

    def events(self) -> list[str]:
        with self.lock:
            return [document["event"] for document in self.received]

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.received) >= count, f"{count} webhook requests", timeout=TIMEOUT)
        return list(self.received)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class RawReceiver:
    """Accepts connections and answers each with ``reply`` (then closes), counting them."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.connections = 0
        self.socket = socket.socket()
        self.socket.bind((HOST, 0))
        self.socket.listen(16)
        self.socket.settimeout(0.2)
        self.port: int = self.socket.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            with connection:
                self.connections += 1
                connection.settimeout(1.0)
                try:
                    connection.recv(65536)
                    connection.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.running = False
        self.thread.join(TIMEOUT)
        self.socket.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.close()
