"""
The pipelined poster on the wire: the request it writes, and every answer shape HTTP/1.1 allows,
against a scripted server on a real socket.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from enso_provider.hooks.enso import EnsoHook
from enso_provider.hooks.pipeline import AnswerError, PipelinedPoster

TOKEN = "wire-token-5"


class ScriptedServer:
    """Accepts connections; for each request read, sends the next scripted answer (bytes pieces)."""

    def __init__(self, answers: list[list[bytes] | Callable[[socket.socket], None]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buffer = b""
                while self.answers:
                    while b"\r\n\r\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buffer += chunk
                    if b"\r\n\r\n" not in buffer:
                        break
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = int(
                        next(
                            line.split(b":", 1)[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        )
                    )
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.requests.append((head, rest[:length]))
                    buffer = rest[length:]
                    answer = self.answers.pop(0)
                    if callable(answer):
                        answer(conn)
                        break
                    for piece in answer:
                        conn.sendall(piece)
                    if any(b"Connection: close" in piece for piece in answer):
                        break

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve(monkeypatch) -> Iterator[Callable[..., tuple[ScriptedServer, PipelinedPoster]]]:
    made: list[tuple[ScriptedServer, PipelinedPoster]] = []

    def make(*answers: list[bytes] | Callable[[socket.socket], None], slots: int = 1):
        server = ScriptedServer(list(answers))
        conn = {"conn_type": "enso", "host": f"http://127.0.0.1:{server.port}", "password": TOKEN}
        conn["extra"] = {"timeout": 5}
        monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", json.dumps(conn))
        pipeline = EnsoHook().open_pipeline(slots)
        assert pipeline is not None
        made.append((server, pipeline))
        return server, pipeline

    yield make
    for server, pipeline in made:
        pipeline.close()
        server.close()


OK = b'{"status":"success","data":{"summary":{"success":1,"failed":0,"total":1},"failedRecords":[]}}'


def answer(body: bytes = OK, status: bytes = b"200 OK", headers: bytes = b"") -> list[bytes]:
    return [b"HTTP/1.1 %b\r\nContent-Length: %d\r\n%b\r\n%b" % (status, len(body), headers, body)]


def test_the_request_is_one_post_with_the_sessions_headers_and_the_token(serve):
    server, pipeline = serve(answer())
    pipeline.send(0, b'{"events":[]}')
    status, body, _ = pipeline.receive(0)
    assert (status, body) == (200, OK)
    head, sent = server.requests[0]
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /events/batch HTTP/1.1"
    fields = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert fields["host"] == f"127.0.0.1:{server.port}"
    assert fields["authorization"] == f"Bearer {TOKEN}"
    assert fields["content-type"] == "application/json"
    assert fields["accept-encoding"] == "identity"
    assert fields["content-length"] == str(len(sent))
    assert sent == b'{"events":[]}'


def test_keep_alive_answers_arrive_in_pieces_and_the_connection_is_reused(serve):
    whole = answer(headers=b"Retry-After: 3\r\nX-A: 1\r\nx-a: 2\r\n")[0]
    server, pipeline = serve([whole[i : i + 1] for i in range(len(whole))], answer(b"{}"))
    pipeline.send(0, b"1")
    status, body, headers = pipeline.receive(0)
    assert (status, body) == (200, OK)
    assert headers["retry-after"] == "3"
    assert headers["X-A"] == "1, 2"
    pipeline.send(0, b"2")
    assert pipeline.receive(0)[:2] == (200, b"{}")
    assert server.connections == 1


def test_chunked_answers_with_extensions_and_trailers(serve):
    chunked = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5;ext=1\r\n",
        b'{"sta\r\n',
        b"%x\r\n%b\r\n0\r\nX-Trailer: t\r\n\r\n" % (len(OK) - 5, OK[5:]),
    ]
    _, pipeline = serve(chunked)
    pipeline.send(0, b"x")
    assert pipeline.receive(0)[:2] == (200, OK)


def test_interim_answers_are_skipped(serve):
    _, pipeline = serve([b"HTTP/1.1 100 Continue\r\n\r\n", *answer(status=b"201 Created")])
    pipeline.send(0, b"x")
    assert pipeline.receive(0)[:2] == (201, OK)


def test_connection_close_and_http_1_0_bodies_read_to_the_end(serve):
    closing = answer(headers=b"Connection: close\r\n")
    to_the_end = [b"HTTP/1.0 503 Busy\r\nRetry-After: 1\r\n\r\nbusy", b""]

    def old_server(conn: socket.socket) -> None:
        for piece in to_the_end:
            conn.sendall(piece)

    server, pipeline = serve(closing, old_server, answer())
    pipeline.send(0, b"1")
    assert pipeline.receive(0)[0] == 200
    pipeline.send(0, b"2")  # a new connection: the server said close
    status, body, headers = pipeline.receive(0)
    assert (status, body, headers["Retry-After"]) == (503, b"busy", "1")
    pipeline.send(0, b"3")
    assert pipeline.receive(0)[0] == 200
    assert server.connections == 3


@pytest.mark.parametrize(
    "bad",
    [
        [b"SPDY/3 200 OK\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort"],
    ],
)
def test_answers_it_cannot_take_are_errors_and_drop_the_connection(serve, bad):
    _, pipeline = serve(bad, answer())
    pipeline.send(0, b"x")
    with pytest.raises(AnswerError):
        pipeline.receive(0)
    assert pipeline._connections[0] is None
    pipeline.send(0, b"y")  # the next request opens a new connection
    assert pipeline.receive(0)[0] == 200


def test_a_server_that_hangs_up_before_answering(serve):
    _, pipeline = serve(lambda conn: None, answer())
    pipeline.send(0, b"x")
    with pytest.raises(AnswerError, match="closed the connection"):
        pipeline.receive(0)


def test_a_connection_the_server_closed_while_idle_is_opened_again(serve):
    """A keep-alive timeout on the server's side: the next batch goes on a new connection, not lost."""
    closing_quietly = answer()  # no Connection: close header, then the server hangs up

    def answer_then_hang_up(conn: socket.socket) -> None:
        for piece in closing_quietly:
            conn.sendall(piece)

    server, pipeline = serve(answer_then_hang_up, answer())
    pipeline.send(0, b"1")
    assert pipeline.receive(0)[0] == 200
    idle = pipeline._connections[0]
    assert idle is not None
    assert select.select([idle.sock], [], [], 10)[0]  # the server's hang-up has reached this side
    pipeline.send(0, b"2")
    assert pipeline.receive(0)[0] == 200
    assert server.connections == 2


@pytest.mark.parametrize("size", [b"0x1f", b"+5", b"-5", b"1_0"])
def test_chunk_sizes_are_read_strictly(serve, size):
    _, pipeline = serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%b\r\n" % size])
    pipeline.send(0, b"x")
    with pytest.raises(AnswerError, match="chunk size"):
        pipeline.receive(0)


@pytest.mark.parametrize(("value", "error"), [("a\r\nInjected: 1", "line break"), ("\u0100", "latin-1")])
def test_a_header_that_cannot_be_written_means_no_pipeline(monkeypatch, value, error):
    """Never a header injected, never a run failed: the session's pools send instead."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_DEFAULT",
        json.dumps({"conn_type": "enso", "host": "http://127.0.0.1:9", "password": TOKEN}),
    )
    hook = EnsoHook()
    hook.get_conn().headers["X-Odd"] = value
    with pytest.raises((ValueError, UnicodeError), match=error):
        PipelinedPoster(hook, "http://127.0.0.1:9/events/batch", 1)
    assert hook.open_pipeline(2) is None
