"""A scripted HTTP server on a real socket: each request read gets the next scripted answer."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

#: An answer: raw bytes sent at once, a list of pieces sent one after another, or a function of the socket.
Script = bytes | list[bytes] | Callable[[socket.socket], None]

OK = b'{"status":"success","data":{"summary":{"success":1,"failed":0,"total":1},"failedRecords":[]}}'


def answer(body: bytes = OK, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 %b\r\nContent-Length: %d\r\n%b\r\n%b" % (status, len(body), headers, body)


def summary(success: Any, failed: Any, total: Any, records: list[dict[str, Any]] | None = None) -> bytes:
    data = {"summary": {"success": success, "failed": failed, "total": total}, "failedRecords": records or []}
    return answer(json.dumps({"status": "success", "data": data}).encode())


class Trickle:
    """Send ``data`` a byte at a time, ``every`` seconds apart, until the client goes away."""

    def __init__(self, data: bytes, every: float) -> None:
        self.data = data
        self.every = every
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        try:
            for i in range(len(self.data)):
                conn.sendall(self.data[i : i + 1])
                self.sent += 1
                time.sleep(self.every)
        except OSError:
            pass
        finally:
            self.done.set()


def reset(conn: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an answer."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def silence(conn: socket.socket) -> None:
    """Never answer: wait until the client closes the connection."""
    conn.settimeout(30)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


class ScriptedServer:
    """
    Accepts connections; for each request read, sends the next scripted answer.

    ``sent`` counts the bytes the server managed to send before the client went away, so a test can
    tell that the client stopped reading (a deadline, a size cap) without timing anything.
    """

    def __init__(self, *answers: Script) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0
        self.sent = 0
        self.cut_short = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append((head, rest[:length]))
                buffer = rest[length:]
                if not self.answers:
                    return
                script = self.answers.pop(0)
                try:
                    if callable(script):
                        script(conn)
                        return
                    for piece in [script] if isinstance(script, bytes) else script:
                        conn.sendall(piece)
                        self.sent += len(piece)
                except OSError:
                    self.cut_short.set()
                    return

    def close(self) -> None:
        self.listener.close()

    def connection(self, token: str = "wire-token", **extra: Any) -> str:
        """An ``enso`` connection (JSON) to this server."""
        extra.setdefault("timeout", 5)
        extra.setdefault("backoff_factor", 0.001)
        extra.setdefault("backoff_max", 0.002)
        return json.dumps({"conn_type": "enso", "host": self.url, "password": token, "extra": extra})
