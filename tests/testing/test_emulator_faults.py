"""Faults scheduled from a test reach the client over a real socket, and never store events."""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

import orjson
import pytest
import requests

from enso_provider.testing import EnsoEmulator


def test_status_fault_with_retry_after(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    enso_emulator.fail_next(1, 429, retry_after="2")
    response = api.batch([make_event(0)])
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"status": "error", "message": "Too Many Requests", "statusCode": 429}
    assert enso_emulator.events == []
    assert api.batch([make_event(0)]).status_code == 200
    assert len(enso_emulator.events) == 1
    stats = enso_emulator.stats
    assert stats.faults == {"status": 1}
    assert stats.responses == {200: 1, 429: 1}
    assert stats.batches == 1


def test_status_fault_with_http_date_and_html_page(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    enso_emulator.fail_next(1, 502, retry_after=date, html=True)
    response = api.batch([make_event(0)])
    assert response.status_code == 502
    assert response.headers["Retry-After"] == date
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<html>")
    assert "502 Bad Gateway" in response.text


def test_status_and_malformed_faults_with_a_body_of_your_own(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    enso_emulator.inject("status", status=418, body='{"message": "teapot"}')
    enso_emulator.inject("malformed", after=1, body=b"<xml/>", content_type="application/xml")
    first = api.batch([make_event(0)])
    assert (first.status_code, first.json()) == (418, {"message": "teapot"})
    second = api.batch([make_event(0)])
    assert (second.status_code, second.headers["Content-Type"], second.content) == (
        200,
        "application/xml",
        b"<xml/>",
    )
    assert enso_emulator.events == []


@pytest.mark.parametrize("status", [500, 503, 504])
def test_server_errors(enso_emulator: EnsoEmulator, api: Any, make_event: Any, status: int) -> None:
    enso_emulator.inject("status", status=status)
    assert api.batch([make_event(0)]).status_code == status
    assert "Retry-After" not in api.batch([make_event(0)]).headers


@pytest.mark.parametrize(("after", "failing"), [(0, 0), (1, 1), (2, 2)], ids=["first", "middle", "last"])
def test_after_targets_one_batch(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any, after: int, failing: int
) -> None:
    enso_emulator.inject("status", after=after, status=503)
    statuses = [api.batch([make_event(i)]).status_code for i in range(3)]
    assert statuses == [503 if i == failing else 200 for i in range(3)]
    assert sorted(e["eventId"] for e in enso_emulator.events) == [
        f"evt_{i}" for i in range(3) if i != failing
    ]


def test_count_and_overlapping_faults_apply_in_order(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    enso_emulator.inject("status", count=2, status=500)
    enso_emulator.inject("status", status=429)  # due at once too: waits its turn
    enso_emulator.inject("status", after=4, status=502)
    assert enso_emulator.pending_faults() == 4
    statuses = [api.batch([make_event(0)]).status_code for _ in range(6)]
    assert statuses == [500, 500, 429, 200, 502, 200]
    assert enso_emulator.pending_faults() == 0


def test_faults_act_before_auth(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    enso_emulator.fail_next(1, 503)
    assert api.batch([make_event(0)], token="wrong").status_code == 503
    assert api.batch([make_event(0)], token="wrong").status_code == 401


def test_hang_outlasts_the_client_timeout_and_stores_nothing(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    enso_emulator.hang_next(1, seconds=30)
    with pytest.raises(requests.ReadTimeout):
        api.batch([make_event(0)], timeout=0.3)
    assert api.batch([make_event(1)]).status_code == 200
    assert [e["eventId"] for e in enso_emulator.events] == ["evt_1"]
    assert enso_emulator.stats.faults == {"hang": 1}


def test_short_hang_then_answers_504(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    enso_emulator.hang_next(1, seconds=0.2)
    started = time.monotonic()
    response = api.batch([make_event(0)])
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 504
    assert enso_emulator.events == []


def test_stop_does_not_wait_for_a_hang(make_event: Any) -> None:
    enso = EnsoEmulator(customers=["cust_1"]).start()
    enso.hang_next(1, seconds=60)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            requests.post(
                f"{enso.url}/events/batch",
                json={"events": [make_event(0)]},
                headers={"Authorization": "Bearer test-token"},
                timeout=30,
            )
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 10
    while enso.stats.faults.get("hang") != 1:  # wait until the request has reached the hang
        assert time.monotonic() < deadline, "the request never reached the emulator"
        time.sleep(0.005)
    started = time.monotonic()
    enso.stop()
    thread.join(10)
    assert time.monotonic() - started < 5
    assert errors  # the client saw its connection end
    assert enso.events == []


def test_reset_closes_the_connection_without_a_response(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    enso_emulator.reset_next(1)
    conn = http.client.HTTPConnection("127.0.0.1", enso_emulator.port, timeout=5)
    body = orjson.dumps({"events": [make_event(0)]})
    conn.request("POST", "/events/batch", body, {"Authorization": "Bearer test-token"})
    with pytest.raises(ConnectionResetError):
        conn.getresponse()
    conn.close()
    enso_emulator.reset_next(1)
    with pytest.raises(requests.ConnectionError):
        api.batch([make_event(0)])
    assert api.batch([make_event(1)]).status_code == 200
    assert [e["eventId"] for e in enso_emulator.events] == ["evt_1"]
    assert enso_emulator.stats.faults == {"reset": 2}


@pytest.mark.parametrize(
    ("variant", "content_type", "body"),
    [
        ("truncated", "application/json", b'{"status":"success","message":"Success","data":{"summ'),
        ("not_json", "text/plain", b"OK"),
        ("wrong_shape", "application/json", b'{"status":"success","data":null}'),
        ("empty", "application/json", b""),
    ],
)
def test_malformed_success(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any, variant: str, content_type: str, body: bytes
) -> None:
    enso_emulator.malformed_next(1, variant=variant)
    response = api.batch([make_event(0)])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.content == body
    assert enso_emulator.events == []
    assert api.batch([make_event(0)]).json()["data"]["summary"]["success"] == 1


def test_latency_delays_every_batch(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    enso_emulator.set_latency(0.15)
    for i in range(2):
        started = time.monotonic()
        assert api.batch([make_event(i)]).status_code == 200
        assert time.monotonic() - started >= 0.15
    enso_emulator.set_latency(0)
    with pytest.raises(ValueError, match="negative"):
        enso_emulator.set_latency(-1)


def test_fail_records_fails_transiently_then_succeeds(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    enso_emulator.fail_records(["evt_1", "evt_2"], status_code=503, times=2)
    batch = [make_event(i) for i in range(4)]
    for _ in range(2):
        data = api.batch(batch).json()["data"]
        assert data["summary"] == {"success": 2, "failed": 2, "total": 4}
        assert [(f["index"], f["code"], f["statusCode"]) for f in data["failedRecords"]] == [
            (1, "transient_failure", 503),
            (2, "transient_failure", 503),
        ]
    assert api.batch(batch).json()["data"]["summary"] == {"success": 4, "failed": 0, "total": 4}
    assert sorted(e["eventId"] for e in enso_emulator.events) == [f"evt_{i}" for i in range(4)]
    assert enso_emulator.stats.duplicates == 4  # evt_0 and evt_3, resent twice


def test_fail_records_comes_after_validation(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    enso_emulator.fail_records("evt_0", status_code=500)
    data = api.batch([make_event(0), make_event(1, CustomerEntityId="nope")]).json()["data"]
    assert [(f["index"], f["code"], f["statusCode"]) for f in data["failedRecords"]] == [
        (1, 2002, 404),
        (0, "transient_failure", 500),
    ]


def test_bad_fault_arguments(enso_emulator: EnsoEmulator) -> None:
    with pytest.raises(ValueError, match="kind"):
        enso_emulator.inject("explode")
    with pytest.raises(ValueError, match="option"):
        enso_emulator.inject("reset", seconds=1)
    with pytest.raises(ValueError, match="status="):
        enso_emulator.inject("status")
    with pytest.raises(ValueError, match="count"):
        enso_emulator.inject("reset", count=0)
    with pytest.raises(ValueError, match="variant"):
        enso_emulator.malformed_next(variant="nope")
    enso_emulator.reset_next(3)
    enso_emulator.clear_faults()
    assert enso_emulator.pending_faults() == 0


def test_faults_are_thread_safe_under_concurrent_clients(
    enso_emulator: EnsoEmulator, make_event: Any
) -> None:
    enso_emulator.fail_next(7, 503)
    statuses: list[int] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        with requests.Session() as session:
            for i in range(25):
                events = [make_event(worker * 1000 + i * 10 + j) for j in range(10)]
                response = session.post(
                    f"{enso_emulator.url}/events/batch",
                    json={"events": events},
                    headers={"Authorization": "Bearer test-token"},
                    timeout=10,
                )
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(503) == 7
    assert statuses.count(200) == 200 - 7
    stats = enso_emulator.stats
    assert stats.events_stored == len(enso_emulator.events) == (200 - 7) * 10
    assert stats.batch_requests == 200
