"""
Pipelined first attempts: the caller's thread posts a batch and reads its answer later.

Sender threads cost the mapping thread its speed: each answer a thread wakes up for needs the GIL
back from a thread that is busy mapping. Here the thread that maps also sends: a request is written
on one of ``slots`` keep-alive connections and its answer is read only when that connection is needed
again, by which time it has arrived. Only a clean 2xx is handled here; anything else (an error
status, a network error, a malformed body) goes to the hook's retry path with the same body, so the
retry rules live in one place.

Requests are written and answers read on plain sockets: one POST shape, one answer shape, so the
general client (``http.client`` spends ~0.2 ms a request on building and parsing headers) is not
needed. The answer reader still takes what HTTP/1.1 allows a server to send: ``Content-Length`` or
chunked bodies, interim 1xx answers, ``Connection: close``, and a body read to the end of the stream.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH

if TYPE_CHECKING:
    from enso_provider.hooks.enso import EnsoHook

_MAX_HEAD = 64 * 1024  # status line and headers of one answer
_MAX_BODY = 64 * 1024 * 1024
_READ = 256 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_LENGTH = re.compile(r"[0-9]{1,15}")


class AnswerError(OSError):
    """The server's answer is not HTTP/1.1 this reader can take (a network error, for the retries)."""


class _Connection:
    """One keep-alive connection and what has been read from it but not yet consumed."""

    __slots__ = ("buffer", "closed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False  # the server said Connection: close, or ended the stream

    def fill(self) -> None:
        chunk = self.sock.recv(_READ)
        if not chunk:
            raise AnswerError("the server closed the connection before answering in full")
        self.buffer += chunk

    def read_line(self, limit: int) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if len(self.buffer) > limit:
                raise AnswerError("an answer line is too long")
            self.fill()

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_to_end(self) -> bytes:
        while True:
            chunk = self.sock.recv(_READ)
            if not chunk:
                break
            self.buffer += chunk
            if len(self.buffer) > _MAX_BODY:
                raise AnswerError("the answer is too large")
        data = bytes(self.buffer)
        self.buffer.clear()
        self.closed = True
        return data


class PipelinedPoster:
    """
    ``slots`` HTTP/1.1 connections, each with at most one request in flight.

    :param hook: the hook whose settings, session headers and credentials are used.
    :param url: the batch endpoint.
    :param slots: connections, i.e. the most requests in flight.
    """

    def __init__(self, hook: EnsoHook, url: str, slots: int) -> None:
        self.hook = hook
        parts = urlsplit(url)
        self.path = requests.utils.requote_uri(parts.path or "/")
        if parts.query:
            self.path = f"{self.path}?{requests.utils.requote_uri(parts.query)}"
        self.host = parts.hostname or ""
        self.https = parts.scheme == "https"
        self.port = parts.port or (443 if self.https else 80)
        session = hook.get_conn()
        self.headers = {str(k): str(v) for k, v in session.headers.items()}
        # Answers are read here as sent: a compressing proxy must not compress them.
        self.headers["Accept-Encoding"] = "identity"
        self.headers["Connection"] = "keep-alive"
        self.connect_timeout, self.timeout = hook.settings.timeout
        verify = True if session.verify is None else session.verify
        self.context = _ssl_context(verify) if self.https else None
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.https else 80
        authority = host if self.port == default_port else f"{host}:{self.port}"
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {authority}"]
        own = {"host", "authorization", "content-length", "transfer-encoding"}  # written per request
        lines += [f"{name}: {value}" for name, value in self.headers.items() if name.lower() not in own]
        self._head = _header_bytes(lines)
        self._connections: list[_Connection | None] = [None] * slots
        self.generations: list[int] = [0] * slots

    @classmethod
    def open(cls, hook: EnsoHook, url: str, slots: int) -> PipelinedPoster | None:
        """
        A pipeline for ``url``, or None where the session's pools must send: behind a proxy, or with
        a header that cannot be written as is (not Latin-1, or holding a line break).
        """
        if requests.utils.select_proxy(url, hook.get_conn().proxies):
            return None
        try:
            return cls(hook, url, slots)
        except (ValueError, UnicodeError):
            return None

    def _connection(self, slot: int) -> _Connection:
        conn = self._connections[slot]
        if conn is not None and (conn.buffer or _readable(conn.sock)):
            # Between answers a connection has nothing to say: readable means the server closed it
            # while idle (its keep-alive timeout), or sent what was not asked for. Start afresh.
            self.drop(slot)
            conn = None
        if conn is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.context is not None:
                    sock = self.context.wrap_socket(sock, server_hostname=self.host)
                sock.settimeout(self.timeout)
            except BaseException:
                sock.close()
                raise
            conn = self._connections[slot] = _Connection(sock)
        return conn

    def send(self, slot: int, body: bytes) -> None:
        """Write one request on ``slot``'s connection (its previous answer must have been read)."""
        authorization, self.generations[slot] = self.hook._authorization()
        # Credentials with control characters are refused when the hook reads them; checked again
        # here, where a line break would end the header.
        if "\r" in authorization or "\n" in authorization:
            raise ValueError("the Authorization header holds a line break")
        head = self._head + b"Authorization: %b\r\nContent-Length: %d\r\n\r\n" % (
            authorization.encode("latin-1"),
            len(body),
        )
        try:
            self._connection(slot).sock.sendall(head + body)
        except BaseException:
            self.drop(slot)
            raise

    def receive(self, slot: int) -> tuple[int, bytes, CaseInsensitiveDict[str]]:
        """Read ``slot``'s answer: status, body, headers (looked up case-insensitively)."""
        conn = self._connections[slot]
        if conn is None:
            raise AnswerError("no request is in flight on this connection")
        try:
            status, body, headers = _read_answer(conn)
        except BaseException:
            self.drop(slot)
            raise
        if conn.closed:
            self.drop(slot)
        return status, body, headers

    def drop(self, slot: int) -> None:
        """Close ``slot``'s connection (after an error; the next request opens a new one)."""
        conn = self._connections[slot]
        self._connections[slot] = None
        if conn is not None:
            conn.sock.close()

    def close(self) -> None:
        for slot in range(len(self._connections)):
            self.drop(slot)


def _readable(sock: socket.socket) -> bool:
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed under us: as good as readable, start afresh
        return True


def _header_bytes(lines: list[str]) -> bytes:
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError("a request header holds a line break")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _read_answer(conn: _Connection) -> tuple[int, bytes, CaseInsensitiveDict[str]]:
    while True:
        status, headers, version = _read_head(conn)
        if not 100 <= status < 200:
            break  # interim answers (100 Continue, 103 Early Hints) come before the real one
    connection = headers.get("Connection", "").lower()
    if (version == "HTTP/1.0" and "keep-alive" not in connection) or "close" in connection:
        conn.closed = True
    if status in (204, 304):
        return status, b"", headers
    encoding = headers.get("Transfer-Encoding", "").lower()
    if encoding:
        if encoding.replace(" ", "").split(",")[-1] != "chunked":
            raise AnswerError(f"unsupported Transfer-Encoding {encoding!r}")
        return status, _read_chunked(conn), headers
    length = headers.get("Content-Length")
    if length is not None:
        if not _LENGTH.fullmatch(length.strip()) or int(length) > _MAX_BODY:
            raise AnswerError(f"bad Content-Length {length!r}")
        return status, conn.read_exactly(int(length)), headers
    return status, conn.read_to_end(), headers


def _read_head(conn: _Connection) -> tuple[int, CaseInsensitiveDict[str], str]:
    line = conn.read_line(_MAX_HEAD)
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].isdigit():
        raise AnswerError(f"not an HTTP/1.x status line: {line[:80]!r}")
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    size = 0
    while True:
        raw = conn.read_line(_MAX_HEAD)
        if not raw:
            break
        size += len(raw)
        if size > _MAX_HEAD:
            raise AnswerError("the answer's headers are too long")
        name, sep, value = raw.partition(b":")
        if not sep:
            raise AnswerError(f"not a header line: {raw[:80]!r}")
        key = name.strip().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(parts[1]), headers, parts[0].decode("ascii")


def _read_chunked(conn: _Connection) -> bytes:
    body = bytearray()
    while True:
        size_line = conn.read_line(_MAX_HEAD).split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_line):
            raise AnswerError(f"bad chunk size {size_line[:20]!r}")
        size = int(size_line, 16)
        if size == 0:
            while conn.read_line(_MAX_HEAD):  # trailers, up to the empty line
                pass
            return bytes(body)
        if len(body) + size > _MAX_BODY:
            raise AnswerError("the answer is too large")
        body += conn.read_exactly(size)
        if conn.read_exactly(2) != b"\r\n":
            raise AnswerError("a chunk does not end with CRLF")


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS settings the session would use: its CA bundle, or no verification when turned off."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str) and os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    cafile = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
    return ssl.create_default_context(cafile=cafile)
