"""A loopback server that answers each HTTP request with scripted raw bytes.

For testing the client against bytes the package did not write: real engines' captures
(``tests/data/engines``), and what gateways do in the wild (drips, truncations, HTML).
Each request takes the next script (the last one repeats); a script is a sequence of
``bytes`` to write and ``float`` seconds to wait, after which the connection is closed.
A ``Forever`` item keeps writing its bytes every ``every`` seconds until the server stops.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CAPTURES = Path(__file__).parent / "data" / "engines" / "llamacpp"


@dataclass(frozen=True)
class Forever:
    """Write ``data`` every ``every`` seconds until the server stops."""

    data: bytes
    every: float


Script = Sequence["bytes | float | Forever"]


def capture(name: str) -> bytes:
    """The raw response bytes of a real llama.cpp exchange."""
    return (CAPTURES / f"{name}.response.bin").read_bytes()


def http(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    """A whole response with a Content-Length."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse(*events: str) -> bytes:
    """SSE events, each in its own chunk."""
    return b"".join(chunk(f"data: {e}\n\n".encode()) for e in events)


END = b"0\r\n\r\n"


@dataclass
class RawServer:
    """Serve scripts on 127.0.0.1; ``requests`` holds each request's raw bytes."""

    scripts: list[Script]
    requests: list[bytes] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # here, not in the thread: the test may close it first
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._served = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            script = self.scripts[min(self._served, len(self.scripts) - 1)]
            self._served += 1
            threading.Thread(target=self._answer, args=(conn, script), daemon=True).start()

    def _answer(self, conn: socket.socket, script: Script) -> None:
        with conn:
            self.requests.append(_read_request(conn))
            try:
                for item in script:
                    if isinstance(item, float | int):
                        if self._stop.wait(item):
                            return
                    elif isinstance(item, Forever):
                        while not self._stop.wait(item.every):
                            conn.sendall(item.data)
                    else:
                        conn.sendall(item)
            except OSError:
                return  # the client went away

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


@contextmanager
def serving(*scripts: Script) -> Iterator[RawServer]:
    """A running :class:`RawServer` for these scripts."""
    with RawServer(list(scripts)) as server:
        yield server
