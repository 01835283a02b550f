"""EnsoHook against the emulator over a real socket: auth modes, retries, typed errors, test_connection."""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from enso_provider.exceptions import (
    EnsoAuthError,
    EnsoConfigError,
    EnsoConnectionError,
    EnsoRequestError,
    EnsoResponseError,
    EnsoServerError,
)
from enso_provider.hooks.auth import TokenCache
from enso_provider.hooks.enso import USER_AGENT, EnsoHook
from enso_provider.testing import EnsoEmulator

TOKEN = "tok-s3cr3t-0123456789"
CLIENT_KEY = "client-key-1"
CLIENT_SECRET = "client-s3cr3t-9876543210"
CUSTOMERS = ["cust_1", "cust_2"]


def event(n: int, customer: str = "cust_1") -> dict:
    return {
        "CustomerEntityId": customer,
        "metric": "api_calls",
        "value": n,
        "timestamp": "2024-01-01T00:00:00Z",
        "eventId": f"ev-{n}",
    }


@pytest.fixture
def enso() -> Iterator[EnsoEmulator]:
    with EnsoEmulator(
        customers=CUSTOMERS,
        token=TOKEN,
        client_key=CLIENT_KEY,
        client_secret=CLIENT_SECRET,
        token_ttl=3600,
    ) as emulator:
        yield emulator


class Waits(list):
    """Records the waits a hook asks for, instead of spending them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_hook(
    monkeypatch: pytest.MonkeyPatch,
    enso: EnsoEmulator,
    *,
    auth: str = "token",
    conn_id: str = "enso_test",
    **extra,
) -> tuple[EnsoHook, Waits]:
    extra.setdefault("timeout", 5)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", enso.connection_json(auth=auth, **extra))
    hook = EnsoHook(enso_conn_id=conn_id)
    waits = Waits()
    hook._sleep = waits
    return hook, waits


def stored_ids(enso: EnsoEmulator) -> list[str]:
    return [e["eventId"] for e in enso.events]


# -- auth -----------------------------------------------------------------------------------------


def test_static_token_sends_a_batch(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso)
    result = hook.send_batch([event(1), event(2, "cust_2")])
    assert (result.success, result.failed, result.total) == (2, 0, 2)
    assert result.failed_records == ()
    assert stored_ids(enso) == ["ev-1", "ev-2"]
    assert enso.stats["auth_failures"] == 0


def test_user_agent_and_keep_alive(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso)
    session = hook.get_conn()
    assert session.headers["User-Agent"] == USER_AGENT
    for n in range(3):
        hook.send_batch([event(n)])
    assert hook.get_conn() is session
    assert enso.stats["connections"] == 1


def test_failed_records_keep_code_types(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso)
    bad_ts = dict(event(2), timestamp="NaN-NaN-NaN NaN:NaN:NaN.NaN", eventId="ev-x")
    result = hook.send_batch([event(1), dict(event(3), CustomerEntityId="nobody"), bad_ts])
    assert (result.success, result.failed, result.total) == (1, 2, 3)
    by_index = {r.index: r for r in result.failed_records}
    assert (by_index[1].code, by_index[1].status_code) == (2002, 404)
    assert (by_index[2].code, by_index[2].status_code) == ("27", 400)


def test_client_credentials_log_in_once_for_many_batches(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, auth="client_credentials")
    for n in range(3):
        assert hook.send_batch([event(n)]).success == 1
    assert enso.stats["logins"] == 1
    assert len(enso.events) == 3


def test_client_credentials_refresh_before_expiry(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, auth="client_credentials")
    now = [time.time()]
    hook.__dict__["_token_cache"] = TokenCache(hook._login, clock=lambda: now[0])
    hook.send_batch([event(1)])
    assert enso.stats["logins"] == 1
    now[0] += 3600 - 30  # inside the refresh margin before exp
    hook.send_batch([event(2)])
    assert enso.stats["logins"] == 2
    assert enso.stats["auth_failures"] == 0


def test_client_credentials_refresh_once_on_401(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, auth="client_credentials")
    hook.send_batch([event(1)])
    enso.expire_tokens()
    hook.send_batch([event(2)])
    assert enso.stats["logins"] == 2
    assert enso.stats["auth_failures"] == 1
    assert stored_ids(enso) == ["ev-1", "ev-2"]


def test_persistent_401_after_refresh_is_an_auth_error(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso, auth="client_credentials")
    hook.send_batch([event(1)])
    enso.inject("status", count=2, status=401)
    with pytest.raises(EnsoAuthError) as info:
        hook.send_batch([event(2)])
    assert info.value.status_code == 401
    assert waits == []
    assert stored_ids(enso) == ["ev-1"]


def test_wrong_token_fails_after_one_attempt(monkeypatch, enso):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_BAD", f'{{"conn_type": "enso", "host": "{enso.url}", "password": "wrong"}}'
    )
    hook = EnsoHook(enso_conn_id="enso_bad")
    with pytest.raises(EnsoAuthError) as info:
        hook.send_batch([event(1)])
    assert info.value.status_code == 401
    assert enso.stats["requests"] == 1
    assert "wrong" not in str(info.value)


def test_wrong_client_secret_is_an_auth_error(monkeypatch, enso):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_BAD",
        f'{{"conn_type": "enso", "host": "{enso.url}", "login": "{CLIENT_KEY}", "password": "nope"}}',
    )
    hook = EnsoHook(enso_conn_id="enso_bad")
    with pytest.raises(EnsoAuthError):
        hook.send_batch([event(1)])
    assert enso.stats["batch_requests"] == 0
    assert enso.events == []


def test_connection_without_password_is_a_config_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_EMPTY", '{"conn_type": "enso", "host": "http://127.0.0.1:1"}')
    with pytest.raises(EnsoConfigError, match="no Password"):
        EnsoHook(enso_conn_id="enso_empty").send_batch([event(1)])


def test_base_url_defaults_and_uri_form(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_A", '{"conn_type": "enso", "password": "x"}')
    monkeypatch.setenv("AIRFLOW_CONN_B", "enso://:x@127.0.0.1:8080/http")
    monkeypatch.setenv("AIRFLOW_CONN_C", "enso://:x@enso.example.com")
    monkeypatch.setenv("AIRFLOW_CONN_D", '{"conn_type": "enso", "host": "http://h:1/api/", "password": "x"}')
    assert EnsoHook(enso_conn_id="a").base_url == "https://api.getenso.ai"
    assert EnsoHook(enso_conn_id="b").base_url == "http://127.0.0.1:8080"
    assert EnsoHook(enso_conn_id="c").base_url == "https://enso.example.com"
    assert EnsoHook(enso_conn_id="d").base_url == "http://h:1/api"


def test_a_connection_that_is_not_an_http_url_is_a_config_error(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG", '{"conn_type": "postgres", "host": "db", "schema": "usage", "password": "x"}'
    )
    with pytest.raises(EnsoConfigError, match=r"'postgres'.*does not give an http"):
        EnsoHook(enso_conn_id="pg").send_batch([event(1)])


def test_bad_extra_is_a_config_error(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, timeout="soon")
    with pytest.raises(EnsoConfigError, match="timeout"):
        hook.send_batch([event(1)])


def test_arguments_win_over_extras(monkeypatch, enso):
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_X", enso.connection_json(timeout=7, max_retries=2))
    hook = EnsoHook(enso_conn_id="enso_x", timeout=3, connect_timeout=1)
    assert hook.settings.timeout == (1.0, 3.0)
    assert hook.settings.policy.max_retries == 2


# -- retries --------------------------------------------------------------------------------------

RETRY_CASES = {
    "429-seconds": dict(kind="status", status=429, retry_after="7"),
    "500-json": dict(kind="status", status=500),
    "502-html": dict(kind="status", status=502, html=True),
    "503": dict(kind="status", status=503),
    "reset": dict(kind="reset"),
    "malformed-200": dict(kind="malformed"),
}


@pytest.mark.parametrize("fault", list(RETRY_CASES.values()), ids=list(RETRY_CASES))
def test_transient_failures_end_with_exactly_one_copy(monkeypatch, enso, fault):
    hook, waits = make_hook(monkeypatch, enso, max_retries=3)
    enso.inject(count=2, **fault)
    result = hook.send_batch([event(1), event(2)])
    assert (result.success, result.failed) == (2, 0)
    assert stored_ids(enso) == ["ev-1", "ev-2"]
    assert enso.stats["duplicates"] == 0
    assert enso.stats["requests"] == 3
    assert len(waits) == 2
    if "retry_after" in fault:
        assert waits == [7.0, 7.0]


def test_read_timeout_is_retried(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso, timeout=0.3, max_retries=2)
    enso.inject("hang", count=1, seconds=2)
    result = hook.send_batch([event(1)])
    assert result.success == 1
    assert stored_ids(enso) == ["ev-1"]
    assert len(waits) == 1


def test_retry_after_as_http_date(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso)
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    enso.inject("status", count=1, status=429, retry_after=when)
    assert hook.send_batch([event(1)]).success == 1
    assert len(waits) == 1
    assert 18 <= waits[0] <= 20


def test_retry_after_is_capped(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso, retry_after_max=5)
    enso.inject("status", count=1, status=429, retry_after="3600")
    hook.send_batch([event(1)])
    assert waits == [5.0]


def test_backoff_grows_without_retry_after(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso, max_retries=4, backoff_factor=1, backoff_max=100)
    enso.inject("status", count=4, status=503)
    hook.send_batch([event(1)])
    # Equal jitter: each wait lies in [step/2, step] with step = 1, 2, 4, 8.
    for wait, step in zip(waits, [1, 2, 4, 8], strict=True):
        assert step / 2 <= wait <= step


def test_retries_run_out_with_a_typed_error(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, max_retries=2)
    enso.inject("status", count=10, status=503)
    with pytest.raises(EnsoServerError) as info:
        hook.send_batch([event(1)])
    assert info.value.status_code == 503
    assert "3 attempt" in str(info.value)
    assert enso.stats["requests"] == 3
    assert enso.events == []


def test_network_failures_run_out_as_connection_error(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, max_retries=1)
    enso.inject("reset", count=5)
    with pytest.raises(EnsoConnectionError):
        hook.send_batch([event(1)])


def test_malformed_answers_run_out_as_response_error(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, max_retries=1)
    enso.inject("malformed", count=5)
    with pytest.raises(EnsoResponseError):
        hook.send_batch([event(1)])


def test_total_wait_is_bounded(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso, max_retries=50, total_wait_max=10)
    enso.inject("status", count=100, status=429, retry_after="4")
    with pytest.raises(EnsoServerError):
        hook.send_batch([event(1)])
    assert sum(waits) <= 10
    assert waits[:2] == [4.0, 4.0]


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_whole_request_4xx_is_not_retried(monkeypatch, enso, status):
    hook, waits = make_hook(monkeypatch, enso)
    enso.inject("status", count=1, status=status)
    with pytest.raises(EnsoRequestError) as info:
        hook.send_batch([event(1)])
    assert info.value.status_code == status
    assert enso.stats["requests"] == 1
    assert waits == []


def test_missing_events_array_is_code_2003_without_retry(monkeypatch, enso):
    hook, waits = make_hook(monkeypatch, enso)
    with pytest.raises(EnsoRequestError) as info:
        hook.post_batch_body(b'{"events": []}', sent=0)
    assert info.value.code == 2003
    assert info.value.status_code == 400
    assert waits == []
    assert enso.stats["requests"] == 1


# -- test_connection --------------------------------------------------------------------------------


def test_test_connection_succeeds_and_creates_nothing(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso)
    ok, message = hook.test_connection()
    assert ok, message
    assert enso.url in message
    assert enso.events == []


def test_test_connection_with_client_credentials(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso, auth="client_credentials")
    ok, message = hook.test_connection()
    assert ok, message
    assert enso.stats["logins"] == 1


def test_test_connection_wrong_token(monkeypatch, enso):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_BAD", f'{{"conn_type": "enso", "host": "{enso.url}", "password": "not-it-1234"}}'
    )
    ok, message = EnsoHook(enso_conn_id="enso_bad").test_connection()
    assert not ok
    assert "401" in message
    assert "not-it-1234" not in message


def test_test_connection_wrong_client_secret(monkeypatch, enso):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_BAD",
        f'{{"conn_type": "enso", "host": "{enso.url}", "login": "{CLIENT_KEY}", "password": "no-1234"}}',
    )
    ok, message = EnsoHook(enso_conn_id="enso_bad").test_connection()
    assert not ok
    assert "client credentials" in message
    assert "no-1234" not in message


def test_test_connection_unreachable(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f'{{"conn_type": "enso", "host": "http://127.0.0.1:{port}", "password": "x"}}'
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_DOWN", down)
    ok, message = EnsoHook(enso_conn_id="enso_down").test_connection()
    assert not ok
    assert "Cannot reach Enso" in message


def test_test_connection_server_error(monkeypatch, enso):
    hook, _ = make_hook(monkeypatch, enso)
    enso.inject("status", count=1, status=500)
    ok, message = hook.test_connection()
    assert not ok
    assert "500" in message
    assert enso.stats["requests"] == 1


def test_test_connection_missing_password(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_EMPTY", '{"conn_type": "enso", "host": "http://127.0.0.1:1"}')
    ok, message = EnsoHook(enso_conn_id="enso_empty").test_connection()
    assert not ok
    assert "Password" in message


# -- secrets ----------------------------------------------------------------------------------------


def test_secrets_never_reach_logs_errors_or_reprs(monkeypatch, enso, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    token_hook, _ = make_hook(monkeypatch, enso, conn_id="enso_tok", max_retries=2)
    cred_hook, _ = make_hook(monkeypatch, enso, auth="client_credentials", conn_id="enso_cred", max_retries=2)
    for hook in (token_hook, cred_hook):
        enso.inject("status", count=1, status=503)
        hook.send_batch([event(1)])
        enso.expire_tokens()
        hook.send_batch([event(2)])
        enso.inject("status", count=5, status=502, html=True)
        with pytest.raises(EnsoServerError) as info:
            hook.send_batch([event(3)])
        texts += [str(info.value), repr(info.value), info.value.body, repr(hook), repr(hook.settings)]
        texts.append(repr(hook.__dict__))
        texts.append(str(hook.test_connection()))
        enso.clear_faults()
    # A server that echoes the credential back must not leak it either.
    enso.inject("status", count=1, status=418, body=f'{{"message": "bad token {TOKEN}"}}')
    with pytest.raises(EnsoRequestError) as info:
        token_hook.send_batch([event(4)])
    texts += [str(info.value), info.value.body]
    everything = caplog.text + "\n".join(texts)
    assert TOKEN not in everything
    assert CLIENT_SECRET not in everything
    assert "***" in str(info.value)
