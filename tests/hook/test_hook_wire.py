"""
The hook's one HTTP path against hostile servers on a real socket: only a 2xx is an answer, every
attempt has a deadline over the whole answer, bodies are capped, errors say what happened, and
credentials never leak.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from enso_provider.exceptions import (
    EnsoAuthError,
    EnsoConfigError,
    EnsoConnectionError,
    EnsoRedirectError,
    EnsoRequestError,
    EnsoResponseError,
)
from enso_provider.hooks.enso import EnsoHook
from tests.hook.wire import OK, Script, ScriptedServer, Trickle, answer, reset, silence, summary

TOKEN = "wire/tok+en=5"


def event(n: int) -> dict:
    return {
        "CustomerEntityId": "c1",
        "metric": "api_calls",
        "value": n,
        "timestamp": "2024-01-01T00:00:00Z",
        "eventId": f"ev-{n}",
    }


@pytest.fixture
def serve(monkeypatch) -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(*answers: Script, token: str = TOKEN, **extra) -> ScriptedServer:
        server = ScriptedServer(*answers)
        servers.append(server)
        monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", server.connection(token, **extra))
        return server

    yield make
    for server in servers:
        server.close()


def no_wait(_: float) -> None:
    pass


def hook() -> EnsoHook:
    h = EnsoHook()
    h._sleep = no_wait
    return h


# -- only a 2xx is an answer --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [b"301 Moved Permanently", b"302 Found", b"307 Temporary Redirect"])
def test_a_redirect_is_never_followed_nor_counted(serve, status):
    elsewhere = ScriptedServer(answer())
    try:
        location = b"Location: %b/events/batch\r\n" % elsewhere.url.encode()
        # A redirect whose body looks like a success: still not an answer.
        server = serve(answer(OK, status, location), max_retries=3)
        with pytest.raises(EnsoRedirectError, match="never followed") as info:
            hook().send_events([event(1)])
        assert len(server.requests) == 1  # not retried as if it were transient
        assert elsewhere.connections == 0  # the token never went elsewhere
        report = info.value.report
        assert (report.sent, report.success) == (0, 0)
    finally:
        elsewhere.close()


def test_an_informational_answer_where_a_final_one_was_due_is_malformed(serve):
    serve(b"HTTP/1.1 103 Early Hints\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\n\r\n", max_retries=1)
    with pytest.raises(EnsoResponseError, match="informational HTTP 103"):
        hook().send_batch([event(1)])


# -- deadlines and caps ---------------------------------------------------------------------------------


def test_headers_trickled_a_byte_at_a_time_meet_the_deadline(serve):
    slow = Trickle(answer(), every=0.05)  # about 6 s for the whole answer
    serve(slow, max_retries=0, timeout=1, deadline=0.5)
    with pytest.raises(EnsoConnectionError, match=r"0\.5s deadline"):
        hook().send_batch([event(1)])
    assert slow.done.wait(10)
    assert slow.sent < len(slow.data)  # the client hung up mid-answer


def test_an_endless_stream_of_100_continue_meets_the_deadline(serve):
    flood = Trickle(b"HTTP/1.1 100 Continue\r\n\r\n" * 400, every=0.002)
    serve(flood, max_retries=0, timeout=1, deadline=0.5)
    with pytest.raises(EnsoConnectionError, match="deadline"):
        hook().send_batch([event(1)])
    assert flood.done.wait(10)
    assert flood.sent < len(flood.data)


def test_a_trickled_body_meets_the_deadline(serve):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(OK)
    slow_body = Trickle(OK, every=0.05)

    def script(conn: socket.socket) -> None:
        conn.sendall(head)
        slow_body(conn)

    serve(script, max_retries=0, timeout=1, deadline=0.5)
    with pytest.raises(EnsoConnectionError, match="deadline"):
        hook().send_batch([event(1)])
    assert slow_body.done.wait(10)
    assert slow_body.sent < len(OK)


def test_an_answer_announcing_more_than_the_cap_is_not_read(serve):
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n" + b"x" * 65536
    server = serve([huge] + [b"x" * 65536] * 1600, max_retries=0, max_response_bytes=65536)
    with pytest.raises(EnsoResponseError, match="more than the 65536 allowed"):
        hook().send_batch([event(1)])
    assert server.cut_short.wait(10)  # the server could not send its 100 MB


def test_a_chunked_answer_over_the_cap_fails_while_read(serve):
    chunk = b"%x\r\n%b\r\n" % (16384, b"x" * 16384)
    server = serve(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"] + [chunk] * 4000,
        max_retries=0,
        max_response_bytes=65536,
    )
    with pytest.raises(EnsoResponseError, match="larger than the 65536 bytes allowed"):
        hook().send_batch([event(1)])
    assert server.cut_short.wait(10)


# -- errors say what happened ------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use(monkeypatch, host: str, **extra) -> None:
    extra.setdefault("timeout", 2)
    conn = {"conn_type": "enso", "host": host, "password": TOKEN, "extra": {"max_retries": 0, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", json.dumps(conn))


def test_refused_is_reported_as_refused_not_as_a_timeout(monkeypatch):
    use(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(EnsoConnectionError, match="connection refused") as info:
        hook().send_batch([event(1)])
    assert "timed out" not in str(info.value)
    ok, message = EnsoHook().test_connection()
    assert not ok
    assert "connection refused" in message


def test_a_name_that_does_not_resolve_is_a_dns_failure(monkeypatch):
    use(monkeypatch, "http://enso-test.invalid")
    with pytest.raises(EnsoConnectionError, match="DNS lookup failed"):
        hook().send_batch([event(1)])
    assert "DNS lookup failed" in EnsoHook().test_connection()[1]


def test_tls_to_a_plain_http_server_is_a_tls_failure(monkeypatch):
    # A plain HTTP server answers the TLS hello with an HTTP error page.
    listener = socket.create_server(("127.0.0.1", 0))

    def plain() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=plain, daemon=True)
    thread.start()
    try:
        use(monkeypatch, f"https://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(EnsoConnectionError, match="TLS"):
            hook().send_batch([event(1)])
        assert "TLS" in EnsoHook().test_connection()[1]
    finally:
        listener.close()


def test_silence_is_a_read_timeout(serve):
    serve(silence, max_retries=0, timeout=0.3, deadline=20)
    with pytest.raises(EnsoConnectionError, match="read timed out"):
        hook().send_batch([event(1)])


def test_a_reset_is_a_reset(serve):
    serve(reset, max_retries=0)
    with pytest.raises(EnsoConnectionError, match="reset or closed"):
        hook().send_batch([event(1)])


# -- credentials ------------------------------------------------------------------------------------


def login_answer(token: str) -> bytes:
    return answer(json.dumps({"data": {"accessToken": token}}).encode())


def test_an_access_token_with_a_line_break_is_refused_without_being_shown(serve, monkeypatch):
    server = serve(login_answer("jwt-secret-value\n"))
    conn = json.loads(server.connection("client-secret-1", max_retries=0))
    conn["login"] = "client-key"
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", json.dumps(conn))
    with pytest.raises(EnsoAuthError, match="control character") as info:
        hook().send_batch([event(1)])
    text = f"{info.value} {info.value.body} {info.value!r}"
    assert "jwt-secret-value" not in text
    assert "client-secret-1" not in text


def test_a_static_token_outside_latin_1_is_refused_without_being_shown(serve):
    serve(answer(), token="tok-\u20ac-secret")
    with pytest.raises(EnsoConfigError, match="outside Latin-1") as info:
        hook().send_batch([event(1)])
    assert "\u20ac" not in str(info.value)
    assert "tok-" not in str(info.value)


def test_every_echoed_form_of_the_token_is_scrubbed(serve):
    escaped = TOKEN.replace("/", "\\/")
    encoded = "wire%2Ftok%2Ben%3D5"
    body = json.dumps({"message": f"bad token {TOKEN}"})[:-1] + f', "echo": "{escaped}", "url": "{encoded}"}}'
    serve(answer(body.encode(), b"400 Bad Request"))
    with pytest.raises(EnsoRequestError) as info:
        hook().send_batch([event(1)])
    text = f"{info.value} {info.value.body}"
    for form in (TOKEN, escaped, encoded):
        assert form not in text
    assert "***" in text


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("http://user:hunter2-secret@127.0.0.1:9", "user name or password"),
        ("http://hunter2-secret@127.0.0.1:9", "user name or password"),
        ("http://127.0.0.1:9/?key=hunter2-secret", "query or a fragment"),
        ("http://127.0.0.1:9/#hunter2-secret", "query or a fragment"),
    ],
)
def test_a_host_with_userinfo_a_query_or_a_fragment_is_refused_unshown(monkeypatch, host, problem):
    use(monkeypatch, host)
    with pytest.raises(EnsoConfigError, match=problem) as info:
        _ = EnsoHook().base_url
    assert "hunter2" not in str(info.value)
    ok, message = EnsoHook().test_connection()
    assert not ok
    assert problem in message
    assert "hunter2" not in message


# -- malformed answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        summary("\u00b3", 0, 3),  # a Unicode digit
        summary(1, 0, "1.0"),  # a count as text that is not one
        summary(True, 0, 1),  # a boolean
        summary(1, 0, 2),  # does not add up
        summary(0, 1, 1, [{"index": 5, "error": "x", "code": 2002, "statusCode": 404}]),  # out of range
        summary(0, 1, 1, [{"index": "\u0663", "error": "x", "code": 2002, "statusCode": 404}]),
        summary(0, 1, 1, [{"index": 0, "error": "x", "code": [1], "statusCode": 404}]),
        summary(0, 1, 1, [{"index": 0, "error": "x", "code": 2002, "statusCode": "\u00b3"}]),
    ],
)
def test_malformed_answers_are_response_errors_with_the_partial_report(serve, body):
    # The first batch is accepted; the second gets the malformed answer on each of its 2 attempts.
    serve(summary(1, 0, 1), body, body, max_retries=1)
    with pytest.raises(EnsoResponseError, match="after 2 attempt") as info:
        hook().send_events([event(1), event(2)], batch_size=1, concurrency=1)
    report = info.value.report
    assert report is not None
    assert (report.success, report.sent) == (1, 1)
