"""
A minimal threaded HTTP/1.1 server, fast enough that a benchmark never measures it.

``http.server`` parses headers with ``email.parser`` and writes a response in
several small writes; this server reads a request with two or three buffered
``readline`` calls and one ``read``, and answers with one ``sendall``. It knows
just what the emulator needs: ``Content-Length`` and chunked bodies,
``Expect: 100-continue`` (curl sends it), keep-alive, and an abrupt close (RST)
for fault injection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import BinaryIO, cast

log = logging.getLogger(__name__)

#: Longest request line or header line accepted.
MAX_LINE = 65536
#: Most headers accepted in one request.
MAX_HEADERS = 100

_REASONS = {s.value: s.phrase for s in HTTPStatus}
# SO_LINGER on, timeout 0: close() sends RST instead of FIN, the client sees a reset.
_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass
class Request:
    """
    One parsed HTTP request.

    :param method: the method, upper case (``POST``).
    :param path: the path without the query string.
    :param query: the query string, without ``?`` (empty if none).
    :param headers: header names in lower case mapped to their (last) value.
    :param body: the request body, de-chunked.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    """
    What to send back.

    :param status: the HTTP status code.
    :param body: the response body.
    :param content_type: the ``Content-Type`` header.
    :param headers: further headers, as ``(name, value)`` pairs.
    :param close: close the connection after the response.
    :param reset: send nothing and reset the connection (RST) instead.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    reset: bool = False

    def encode(self, close: bool) -> bytes:
        """
        Return the whole response, status line to body, for a single ``sendall``.

        :param close: add ``Connection: close``.
        """
        head = [
            f"HTTP/1.1 {self.status} {reason_phrase(self.status)}\r\n"
            f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
        ]
        head.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        if close:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        return "".join(head).encode("latin-1") + self.body


def reason_phrase(status: int) -> str:
    """
    Return the standard reason phrase of an HTTP status (``Unknown`` if none).

    :param status: the HTTP status code.
    """
    return _REASONS.get(status, "Unknown")


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.x request we can frame."""


App = Callable[[Request], Response]


def _read_line(rfile: BinaryIO) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line


def _read_chunked(rfile: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = _read_line(rfile)
        if not size_line:
            raise EOFError
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            # Trailers, if any, end with an empty line.
            while _read_line(rfile) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        chunk = rfile.read(size)
        if len(chunk) < size:
            raise EOFError
        parts.append(chunk)
        rfile.readline()  # the CRLF after each chunk


def read_request(rfile: BinaryIO, sock: socket.socket) -> tuple[Request, bool] | None:
    """
    Read one request from a connection.

    :param rfile: the buffered reader of the connection.
    :param sock: the socket, to answer ``Expect: 100-continue``.
    :return: the request and whether to keep the connection open after it, or
        ``None`` when the client closed the connection between requests.
    :raises BadRequest: when the request cannot be framed.
    :raises EOFError: when the client closed the connection inside a request.
    """
    line = _read_line(rfile)
    while line in (b"\r\n", b"\n"):  # tolerated between requests (RFC 9112, 2.2)
        line = _read_line(rfile)
    if not line:
        return None
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest("bad request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    headers: dict[str, str] = {}
    while True:
        hline = _read_line(rfile)
        if hline in (b"\r\n", b"\n"):
            break
        if not hline:
            raise EOFError
        name, sep, value = hline.partition(b":")
        if not sep or len(headers) >= MAX_HEADERS:
            raise BadRequest("bad header")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")

    if headers.get("expect", "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(rfile)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0:
            raise BadRequest("bad Content-Length")
        body = rfile.read(length) if length else b""
        if len(body) < length:
            raise EOFError

    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    path, _, query = target.partition("?")
    return Request(method.upper(), path, query, headers, body), keep_alive


class _ConnectionHandler(socketserver.BaseRequestHandler):
    """Serves the requests of one connection, one after another (keep-alive)."""

    server: HTTPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = cast("BinaryIO", sock.makefile("rb", buffering=65536))
        self.server.track(sock)
        try:
            self._serve(sock, rfile)
        except (OSError, EOFError):
            pass  # the client went away; nothing to answer
        finally:
            rfile.close()
            self.server.untrack(sock)

    def _serve(self, sock: socket.socket, rfile: BinaryIO) -> None:
        app = self.server.app
        while True:
            try:
                parsed = read_request(rfile, sock)
            except BadRequest as exc:
                body = b'{"status":"error","message":"Bad Request: %s"}' % str(exc).encode()
                sock.sendall(Response(400, body).encode(close=True))
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            try:
                response = app(request)
            except Exception:
                log.exception("Enso emulator: unhandled error on %s %s", request.method, request.path)
                response = Response(500, b'{"status":"error","message":"Internal Server Error"}')
            if response.reset:
                # Drop the reader's reference first: the socket only really closes
                # (and sends the RST) when no file object holds it.
                rfile.close()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                sock.close()
                return
            close = response.close or not keep_alive
            sock.sendall(response.encode(close))
            if close:
                return


class HTTPServer(socketserver.ThreadingTCPServer):
    """
    A thread per connection, each serving its requests through ``app``.

    :param address: ``(host, port)`` to bind; port 0 picks a free port.
    :param app: called with each request, returns the response.
    :param on_connection: called once for each accepted connection.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], app: App, on_connection: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.on_connection = on_connection
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _ConnectionHandler)

    def track(self, sock: socket.socket) -> None:
        """Remember an open connection, so that :meth:`close_connections` can end it."""
        with self._open_lock:
            self._open.add(sock)
        if self.on_connection is not None:
            self.on_connection()

    def untrack(self, sock: socket.socket) -> None:
        """Forget a connection that has ended."""
        with self._open_lock:
            self._open.discard(sock)

    def close_connections(self) -> None:
        """Shut down every open connection, waking the threads blocked reading them."""
        with self._open_lock:
            socks = list(self._open)
        for sock in socks:
            with contextlib.suppress(OSError):  # already closed by its own thread
                sock.shutdown(socket.SHUT_RDWR)
