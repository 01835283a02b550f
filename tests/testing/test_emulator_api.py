"""The emulator answers /events/batch as the API reference documents, record by record."""

from __future__ import annotations

import http.client
import socket
from typing import Any

import orjson
import pytest
import requests

from enso_provider.testing import EmulatorStats, EnsoEmulator
from enso_provider.testing.validation import timestamp_is_valid, value_is_valid

NAN_TIMESTAMP = "NaN-NaN-NaN NaN:NaN:NaN.NaN"
STORAGE_ERROR = (
    'Cannot parse input: expected \'"\' before: \'N NaN:NaN:NaN.NaN","metadata":null,"status":"active",'
    '"CustomerEntityId":"ent_6CsgzAdRgTlzT_9O","JobId":"job_xI_wWRvcLpZzhiJF",'
    '"OrganisationId":"org_k0JGnR6VZsLd\': '
    "(while reading the value of key timestamp): (at row 1)\n: While executing WaitForAsyncInsert. "
)
# The partial-failure response of the API reference, verbatim.
REFERENCE_RESPONSE = {
    "status": "success",
    "message": "Success",
    "data": {
        "summary": {"success": 0, "failed": 3, "total": 3},
        "failedRecords": [
            {"index": 2, "error": "Customer entity not found", "code": 2002, "statusCode": 404},
            {"index": 0, "error": STORAGE_ERROR, "code": "27", "statusCode": 400},
            {"index": 1, "error": STORAGE_ERROR, "code": "27", "statusCode": 400},
        ],
    },
}


def failures(response: requests.Response) -> dict[int, tuple[Any, int]]:
    assert response.status_code == 200, response.text
    return {f["index"]: (f["code"], f["statusCode"]) for f in response.json()["data"]["failedRecords"]}


def test_reference_example_reproduces_the_documented_response() -> None:
    known = "ent_6CsgzAdRgTlzT_9O"
    events = [
        {"CustomerEntityId": known, "metric": "m", "value": 1, "timestamp": NAN_TIMESTAMP, "metadata": {}},
        {"CustomerEntityId": known, "metric": "m", "value": 2, "timestamp": NAN_TIMESTAMP, "metadata": {}},
        {"CustomerEntityId": "ent_unknown", "metric": "m", "value": 3, "timestamp": "2023-11-07T05:31:56Z"},
    ]
    for e in events:
        e["JobId"] = "job_xI_wWRvcLpZzhiJF"
    with EnsoEmulator(customers=[known], token="t", organisation_id="org_k0JGnR6VZsLdxyz") as enso:
        response = requests.post(
            f"{enso.url}/events/batch",
            json={"events": events},
            headers={"Authorization": "Bearer t"},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.json() == REFERENCE_RESPONSE
        assert enso.events == []
        assert enso.stats.nan_timestamps == 2


def test_valid_batch_is_stored_in_arrival_order(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    events = [make_event(i, CustomerEntityId=f"cust_{i % 3 + 1}") for i in range(5)]
    response = api.batch(events)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "success",
        "message": "Success",
        "data": {"summary": {"success": 5, "failed": 0, "total": 5}, "failedRecords": []},
    }
    assert enso_emulator.events == events
    assert enso_emulator.event_ids == {f"evt_{i}" for i in range(5)}


@pytest.mark.parametrize(
    ("fields", "code", "status"),
    [
        pytest.param({"CustomerEntityId": None}, 2001, 400, id="entity-null"),
        pytest.param({"CustomerEntityId": ""}, 2001, 400, id="entity-empty"),
        pytest.param({"CustomerEntityId": 12}, 2001, 400, id="entity-not-a-string"),
        pytest.param({"CustomerEntityId": ["cust_1"]}, 2001, 400, id="entity-unhashable"),
        pytest.param({"CustomerEntityId": "cust_404"}, 2002, 404, id="entity-unknown"),
        pytest.param({"timestamp": NAN_TIMESTAMP}, "27", 400, id="timestamp-nan"),
        pytest.param({"timestamp": "2023-02-30T00:00:00Z"}, "27", 400, id="timestamp-no-such-day"),
        pytest.param({"timestamp": "yesterday"}, "27", 400, id="timestamp-words"),
        pytest.param({"timestamp": 1699335116}, "27", 400, id="timestamp-number"),
        pytest.param({"timestamp": None}, "27", 400, id="timestamp-null"),
        pytest.param({"metric": ""}, "metric_required", 400, id="metric-empty"),
        pytest.param({"metric": None}, "metric_required", 400, id="metric-null"),
        pytest.param({"value": "12"}, "invalid_value", 400, id="value-string"),
        pytest.param({"value": None}, "invalid_value", 400, id="value-null"),
        pytest.param({"value": True}, "invalid_value", 400, id="value-bool"),
        pytest.param({"value": {"n": 1}}, "invalid_value", 400, id="value-object"),
    ],
)
def test_invalid_record_fails_alone(
    api: Any, make_event: Any, fields: dict[str, Any], code: Any, status: int
) -> None:
    response = api.batch([make_event(0), make_event(1, **fields), make_event(2)])
    assert failures(response) == {1: (code, status)}
    assert response.json()["data"]["summary"] == {"success": 2, "failed": 1, "total": 3}


def test_missing_fields_fail(api: Any, make_event: Any) -> None:
    missing_entity = make_event(0)
    del missing_entity["CustomerEntityId"]
    missing_metric = make_event(1)
    del missing_metric["metric"]
    missing_value = make_event(2)
    del missing_value["value"]
    response = api.batch([missing_entity, missing_metric, missing_value, "not an object", None])
    assert failures(response) == {
        0: (2001, 400),
        1: ("metric_required", 400),
        2: ("invalid_value", 400),
        3: ("invalid_event", 400),
        4: ("invalid_event", 400),
    }


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"1e999"])
def test_non_finite_number_literal_rejects_the_whole_request(
    api: Any, make_event: Any, literal: bytes
) -> None:
    # What Python's json.dumps writes for nan/inf is not JSON: the body is refused as a whole.
    body = orjson.dumps({"events": [make_event(0)]}).replace(b'"value":1.5', b'"value":' + literal)
    response = api.post("/events/batch", body)
    assert response.status_code == 400
    assert response.json()["code"] == 2003


def test_storage_error_message_has_the_storage_form(api: Any, make_event: Any) -> None:
    response = api.batch([make_event(0, timestamp="2023-11-07T25:00:00Z")])
    error = response.json()["data"]["failedRecords"][0]["error"]
    assert error.startswith("Cannot parse input: expected '\"' before: '")
    assert "(while reading the value of key timestamp)" in error


@pytest.mark.parametrize(
    "timestamp",
    [
        "2023-11-07T05:31:56Z",
        "2023-11-07T05:31:56.123456Z",
        "2023-11-07T05:31:56.123Z",
        "2023-11-07T05:31:56+02:00",
        "2023-11-07T05:31:56.5-05:30",
        "2023-11-07T05:31:56+0200",
        "2023-11-07 05:31:56",
        "2024-02-29T23:59:59Z",
    ],
)
def test_iso_timestamps_are_accepted(api: Any, make_event: Any, timestamp: str) -> None:
    assert failures(api.batch([make_event(0, timestamp=timestamp)])) == {}


def test_timestamp_rules() -> None:
    assert timestamp_is_valid("2023-12-31T23:59:59.999999999Z")
    for bad in ["2023-13-01T00:00:00Z", "2023-04-31T00:00:00Z", "2023-11-07", "2023-11-07T05:31:60Z", ""]:
        assert not timestamp_is_valid(bad), bad
    assert value_is_valid(0)
    assert value_is_valid(-2.5)
    assert not value_is_valid(float("nan"))
    assert not value_is_valid(float("-inf"))
    assert not value_is_valid(False)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-events"),
        pytest.param({"events": []}, id="empty"),
        pytest.param({"events": {"0": {}}}, id="not-a-list"),
        pytest.param({"events": None}, id="null"),
        pytest.param([{"CustomerEntityId": "cust_1"}], id="array-body"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"", id="empty-body"),
    ],
)
def test_request_without_events_is_2003(enso_emulator: EnsoEmulator, api: Any, body: Any) -> None:
    response = api.post("/events/batch", body)
    assert response.status_code == 400
    assert response.json()["code"] == 2003
    assert response.json()["message"] == "events array is required"
    assert enso_emulator.stats.batches == 0


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_missing_or_unknown_token_is_401(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any, token: Any
) -> None:
    response = api.batch([make_event(0)], token=token)
    assert response.status_code == 401
    assert response.json()["status"] == "error"
    assert "wrong-token" not in response.text
    assert enso_emulator.events == []
    assert enso_emulator.stats.auth_failures == 1


def test_non_bearer_scheme_is_401(enso_emulator: EnsoEmulator, make_event: Any) -> None:
    response = requests.post(
        f"{enso_emulator.url}/events/batch",
        json={"events": [make_event(0)]},
        headers={"Authorization": "Basic test-token"},
        timeout=5,
    )
    assert response.status_code == 401


def test_duplicate_event_ids_count_as_success_and_are_stored_once(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    first = api.batch([make_event(0), make_event(1), make_event(1, value=99)])
    assert first.json()["data"]["summary"] == {"success": 3, "failed": 0, "total": 3}
    again = api.batch([make_event(0), make_event(2)])
    assert again.json()["data"]["summary"] == {"success": 2, "failed": 0, "total": 2}
    assert [e["eventId"] for e in enso_emulator.events] == ["evt_0", "evt_1", "evt_2"]
    assert enso_emulator.events[1]["value"] == 1.5  # the first one stored wins
    stats = enso_emulator.stats
    assert (stats.duplicates, stats.events_accepted, stats.events_stored) == (2, 5, 3)


def test_events_without_ids_merge_when_identical(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    a, b, c = make_event(0), make_event(0), make_event(0, value=2)
    for e in (a, b, c):
        del e["eventId"]
    assert api.batch([a, b, c]).json()["data"]["summary"]["success"] == 3
    assert len(enso_emulator.events) == 2
    assert enso_emulator.stats.duplicates == 1


def test_job_id_is_accepted_in_both_spellings_and_stored_as_JobId(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    lower = make_event(0)
    lower["jobId"] = lower.pop("JobId")
    assert failures(api.batch([lower, make_event(1, JobId="job_2")])) == {}
    assert [e["JobId"] for e in enso_emulator.events] == ["job_1", "job_2"]
    assert all("jobId" not in e for e in enso_emulator.events)


def test_customers_can_be_added_later(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    assert failures(api.batch([make_event(0, CustomerEntityId="c9")])) == {0: (2002, 404)}
    enso_emulator.add_customers("c9")
    assert failures(api.batch([make_event(0, CustomerEntityId="c9")])) == {}
    enso_emulator.remove_customers("c9")
    assert failures(api.batch([make_event(1, CustomerEntityId="c9")])) == {0: (2002, 404)}


def test_stats_count_requests_events_and_statuses(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    api.batch([make_event(i) for i in range(4)])
    api.batch(
        [make_event(10), make_event(11, CustomerEntityId="nope"), make_event(12, timestamp=NAN_TIMESTAMP)]
    )
    api.batch([make_event(20)], token="bad")
    api.post("/events/batch", {"events": []})
    stats = enso_emulator.stats
    assert isinstance(stats, EmulatorStats)
    assert stats.as_dict() == {
        "connections": 1,  # one keep-alive session
        "requests": 4,
        "batch_requests": 4,
        "batches": 2,
        "events_received": 7,
        "events_accepted": 5,
        "events_failed": 2,
        "events_stored": 5,
        "largest_batch": 4,
        "duplicates": 0,
        "nan_timestamps": 1,
        "auth_failures": 1,
        "logins": 0,
        "responses": {200: 2, 400: 1, 401: 1},
        "faults": {},
    }
    assert stats["largest_batch"] == 4
    with pytest.raises(KeyError):
        stats["nope"]


def test_admin_endpoints(enso_emulator: EnsoEmulator, api: Any, make_event: Any) -> None:
    api.batch([make_event(0), make_event(1)])
    url = enso_emulator.url
    events = requests.get(f"{url}/_emulator/events", timeout=5).json()
    assert events == {"count": 2, "events": enso_emulator.events}
    stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
    assert stats["events_accepted"] == 2
    assert stats["responses"] == {"200": 1}

    assert requests.post(f"{url}/_emulator/customers", json={"customers": ["c7"]}, timeout=5).ok
    assert "c7" in enso_emulator.customers
    assert requests.post(f"{url}/_emulator/faults", json={"kind": "status", "status": 502}, timeout=5).ok
    assert requests.post(f"{url}/_emulator/faults", json={"kind": "nope"}, timeout=5).status_code == 400
    assert api.batch([make_event(5)]).status_code == 502

    assert requests.post(f"{url}/_emulator/reset", timeout=5).json() == {"status": "success"}
    assert enso_emulator.events == []
    assert enso_emulator.stats.requests == 0
    # Configuration survives a reset.
    assert failures(api.batch([make_event(0, CustomerEntityId="c7")])) == {}


def test_reset_keeps_configuration_and_clears_faults(
    enso_emulator: EnsoEmulator, api: Any, make_event: Any
) -> None:
    api.batch([make_event(0)])
    enso_emulator.fail_next(2, 503)
    enso_emulator.fail_records(["evt_1"])
    enso_emulator.reset()
    assert enso_emulator.pending_faults() == 0
    assert enso_emulator.events == []
    assert enso_emulator.stats.events_stored == 0
    response = api.batch([make_event(0), make_event(1)])
    assert failures(response) == {}
    assert len(enso_emulator.events) == 2


def test_unknown_path_and_method(enso_emulator: EnsoEmulator) -> None:
    assert requests.get(f"{enso_emulator.url}/nope", timeout=5).status_code == 404
    assert requests.get(f"{enso_emulator.url}/events/batch", timeout=5).status_code == 405


def test_store_events_false_keeps_ids_and_counts(make_event: Any) -> None:
    with EnsoEmulator(customers=["cust_1"], store_events=False) as enso:
        body = {"events": [make_event(0), make_event(1), make_event(1)]}
        headers = {"Authorization": "Bearer test-token"}
        response = requests.post(f"{enso.url}/events/batch", json=body, headers=headers, timeout=5)
        assert response.json()["data"]["summary"]["success"] == 3
        assert enso.events == []
        assert enso.event_ids == {"evt_0", "evt_1"}
        assert enso.stats.events_stored == 2
        assert enso.stats.duplicates == 1


def test_limits_answer_413(make_event: Any) -> None:
    with EnsoEmulator(customers=["cust_1"], max_batch_events=2, max_body_bytes=2000) as enso:
        headers = {"Authorization": "Bearer test-token"}
        url = f"{enso.url}/events/batch"
        assert requests.post(url, json={"events": [make_event(0)] * 2}, headers=headers, timeout=5).ok
        too_many = requests.post(url, json={"events": [make_event(0)] * 3}, headers=headers, timeout=5)
        assert too_many.status_code == 413
        too_big = requests.post(
            url, json={"events": [make_event(0, metadata={"x": "y" * 3000})]}, headers=headers
        )
        assert too_big.status_code == 413


def test_keep_alive_chunked_and_expect_continue(enso_emulator: EnsoEmulator, make_event: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", enso_emulator.port, timeout=5)
    headers = {"Authorization": "Bearer test-token", "Content-Type": "application/json"}
    for i in range(3):  # three requests, one connection
        conn.request("POST", "/events/batch", orjson.dumps({"events": [make_event(i)]}), headers)
        response = conn.getresponse()
        assert response.status == 200
        response.read()
    assert enso_emulator.stats.connections == 1
    # A chunked body (a generator), as requests sends for an iterator.
    body = orjson.dumps({"events": [make_event(3)]})
    conn.request("POST", "/events/batch", iter([body[:10], body[10:]]), headers, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    assert response.read()
    assert not response.will_close
    conn.close()

    # curl sends "Expect: 100-continue" and waits for the interim response.
    with socket.create_connection(("127.0.0.1", enso_emulator.port), timeout=5) as sock:
        body = orjson.dumps({"events": [make_event(4)]})
        sock.sendall(
            b"POST /events/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" in reply
    assert len(enso_emulator.events) == 5


def test_bad_request_line_is_400(enso_emulator: EnsoEmulator) -> None:
    with socket.create_connection(("127.0.0.1", enso_emulator.port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def test_connection_json_and_env() -> None:
    with EnsoEmulator(customers=["c1"], token="tok", client_key="ck", client_secret="cs") as enso:
        assert orjson.loads(enso.connection_json()) == {
            "conn_type": "enso",
            "host": enso.url,
            "password": "tok",
        }
        assert orjson.loads(enso.connection_json("client_credentials", timeout=5)) == {
            "conn_type": "enso",
            "host": enso.url,
            "login": "ck",
            "password": "cs",
            "extra": {"timeout": 5},
        }
        env = enso.env("my_enso", auth="client_credentials")
        assert list(env) == ["AIRFLOW_CONN_MY_ENSO"]
        assert orjson.loads(env["AIRFLOW_CONN_MY_ENSO"])["login"] == "ck"
        assert enso.url.startswith("http://127.0.0.1:")
        assert enso.port > 0
        assert "tok" not in repr(enso)
        assert "cs" not in repr(enso)
        with pytest.raises(ValueError, match="auth"):
            enso.connection_json("basic")
    with EnsoEmulator(token=None) as enso, pytest.raises(ValueError, match="client_credentials"):
        enso.connection_json()


def test_start_stop_and_restart() -> None:
    enso = EnsoEmulator(customers=["c1"])
    assert not enso.running
    enso.start()
    with pytest.raises(RuntimeError):
        enso.start()
    # A keep-alive connection left open does not hold stop() up.
    conn = http.client.HTTPConnection("127.0.0.1", enso.port, timeout=5)
    conn.request("GET", "/_emulator/stats")
    conn.getresponse().read()
    enso.stop()
    enso.stop()  # idempotent
    assert not enso.running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{enso.url}/_emulator/stats", timeout=5)
    conn.close()
    with enso:
        assert requests.get(f"{enso.url}/_emulator/stats", timeout=5).ok
