"""Bearer tokens, client-credential login, token lifetime and forced expiry."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
import requests

from enso_provider.testing import EnsoEmulator


class FakeClock:
    """A clock a test moves by hand, so token expiry needs no waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def login(enso: EnsoEmulator, key: str = "ck", secret: str = "cs") -> requests.Response:
    return requests.post(
        f"{enso.url}/auth/system-login", json={"clientKey": key, "clientSecret": secret}, timeout=5
    )


def send(enso: EnsoEmulator, token: str, make_event: Any, index: int = 0) -> requests.Response:
    return requests.post(
        f"{enso.url}/events/batch",
        json={"events": [make_event(index)]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def enso(clock: FakeClock) -> Any:
    with EnsoEmulator(
        customers=["cust_1"], token="static", client_key="ck", client_secret="cs", token_ttl=600, clock=clock
    ) as emulator:
        yield emulator


def test_login_returns_a_jwt_shaped_token_that_is_accepted(enso: EnsoEmulator, make_event: Any) -> None:
    response = login(enso)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    token = body["data"]["accessToken"]
    header, _, signature = token.split(".")
    assert orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "HS256"
    assert signature
    assert "=" not in token
    assert claims(token)["exp"] == 1_700_000_000 + 600
    assert send(enso, token, make_event).status_code == 200
    assert enso.stats.logins == 1


def test_issued_token_expires_after_its_lifetime(
    enso: EnsoEmulator, clock: FakeClock, make_event: Any
) -> None:
    token = login(enso).json()["data"]["accessToken"]
    clock.now += 599
    assert send(enso, token, make_event).status_code == 200
    clock.now += 1
    expired = send(enso, token, make_event, 1)
    assert expired.status_code == 401
    assert expired.json()["message"] == "Token expired"
    assert token not in expired.text
    assert expired.headers["WWW-Authenticate"].startswith("Bearer")
    # A fresh login works again; the static token never expires.
    fresh = login(enso).json()["data"]["accessToken"]
    assert fresh != token
    assert send(enso, fresh, make_event, 1).status_code == 200
    assert send(enso, "static", make_event, 2).status_code == 200
    assert [e["eventId"] for e in enso.events] == ["evt_0", "evt_1", "evt_2"]


def test_zero_ttl_token_is_never_accepted(make_event: Any) -> None:
    with EnsoEmulator(customers=["cust_1"], client_key="ck", client_secret="cs", token_ttl=0) as enso:
        token = login(enso).json()["data"]["accessToken"]
        assert send(enso, token, make_event).status_code == 401


def test_expire_tokens_invalidates_issued_tokens_only(enso: EnsoEmulator, make_event: Any) -> None:
    first = login(enso).json()["data"]["accessToken"]
    second = login(enso).json()["data"]["accessToken"]
    enso.expire_tokens()
    assert send(enso, first, make_event).status_code == 401
    assert send(enso, second, make_event).status_code == 401
    assert send(enso, "static", make_event).status_code == 200
    third = login(enso).json()["data"]["accessToken"]
    assert send(enso, third, make_event, 1).status_code == 200
    assert enso.stats.auth_failures == 2
    assert requests.post(f"{enso.url}/_emulator/expire-tokens", timeout=5).ok
    assert send(enso, third, make_event, 2).status_code == 401


@pytest.mark.parametrize(("key", "secret"), [("ck", "wrong"), ("wrong", "cs"), ("", "")])
def test_wrong_credentials_are_401(enso: EnsoEmulator, key: str, secret: str) -> None:
    response = login(enso, key, secret)
    assert response.status_code == 401
    assert "accessToken" not in response.text
    assert enso.stats.auth_failures == 1
    assert enso.stats.logins == 0


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"clientKey": "ck"}', b'{"clientKey": 1, "clientSecret": 2}']
)
def test_malformed_login_is_400(enso: EnsoEmulator, body: bytes) -> None:
    response = requests.post(f"{enso.url}/auth/system-login", data=body, timeout=5)
    assert response.status_code == 400


def test_login_without_configured_credentials_is_401() -> None:
    with EnsoEmulator(customers=["cust_1"]) as enso:
        assert login(enso).status_code == 401


def test_credentials_must_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="together"):
        EnsoEmulator(client_key="ck")


def test_login_faults(enso: EnsoEmulator) -> None:
    enso.inject("status", endpoint="login", status=503, retry_after=1)
    enso.inject("reset", endpoint="login", after=1)  # after counts from now: the second login
    first = login(enso)
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "1"
    with pytest.raises(requests.ConnectionError):
        login(enso)
    assert login(enso).status_code == 200
    assert enso.stats.faults == {"reset": 1, "status": 1}
    with pytest.raises(ValueError, match="endpoint"):
        enso.inject("reset", endpoint="nope")


def test_extra_static_tokens(make_event: Any) -> None:
    with EnsoEmulator(customers=["cust_1"], token=["a", "b"]) as enso:
        enso.add_token("c")
        for i, token in enumerate("abc"):
            assert send(enso, token, make_event, i).status_code == 200
        assert send(enso, "d", make_event).status_code == 401
