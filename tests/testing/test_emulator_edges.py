"""Rough edges a new user hit: the CLI's default port, any customer, and a prompt exit with many events."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
from typing import Any

import orjson
import requests

from enso_provider.testing import EnsoEmulator
from enso_provider.testing.__main__ import _parser

AIRFLOW_API_SERVER_PORT = 8080


def _start(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "enso_provider.testing", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert banner.startswith("Enso emulator listening on http://127.0.0.1:"), banner
    return proc, banner.split("listening on ", 1)[1].split()[0], banner


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_cli_default_port_is_a_free_one_not_airflows(make_event: Any) -> None:
    assert _parser().get_default("port") == 0
    proc, url, _ = _start("--customers", "c1", "--token", "t")
    try:
        port = int(url.rsplit(":", 1)[1])
        assert port not in (0, AIRFLOW_API_SERVER_PORT)
        body = {"events": [make_event(0, CustomerEntityId="c1")]}
        response = requests.post(
            f"{url}/events/batch", json=body, headers={"Authorization": "Bearer t"}, timeout=5
        )
        assert response.json()["data"]["summary"]["success"] == 1
    finally:
        _stop(proc)


def test_any_customer_accepts_every_non_empty_id(make_event: Any) -> None:
    with EnsoEmulator(any_customer=True, token="t") as enso:
        events = [
            make_event(0, CustomerEntityId="never-configured"),
            make_event(1, CustomerEntityId="cust_999"),
            make_event(2, CustomerEntityId=""),
            make_event(3, CustomerEntityId=None),
        ]
        response = requests.post(
            f"{enso.url}/events/batch",
            json={"events": events},
            headers={"Authorization": "Bearer t"},
            timeout=5,
        )
        data = response.json()["data"]
        assert data["summary"] == {"success": 2, "failed": 2, "total": 4}
        assert {(f["index"], f["code"]) for f in data["failedRecords"]} == {(2, 2001), (3, 2001)}
        assert {e["CustomerEntityId"] for e in enso.events} == {"never-configured", "cust_999"}
        assert "any customer" in repr(enso)


def test_without_any_customer_unknown_ids_are_2002(make_event: Any) -> None:
    with EnsoEmulator(customers=["c1"], token="t") as enso:
        response = requests.post(
            f"{enso.url}/events/batch",
            json={"events": [make_event(0, CustomerEntityId="never-configured")]},
            headers={"Authorization": "Bearer t"},
            timeout=5,
        )
        assert response.json()["data"]["failedRecords"][0]["code"] == 2002


def test_cli_any_customer(make_event: Any) -> None:
    proc, url, banner = _start("--any-customer", "--token", "t")
    try:
        assert "(customers: any)" in banner
        body = {"events": [make_event(0, CustomerEntityId="whoever")]}
        response = requests.post(
            f"{url}/events/batch", json=body, headers={"Authorization": "Bearer t"}, timeout=5
        )
        assert response.json()["data"]["summary"] == {"success": 1, "failed": 0, "total": 1}
    finally:
        _stop(proc)


def _nested_events(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "CustomerEntityId": "c1",
            "metric": "m",
            "value": n,
            "timestamp": "2024-05-01T10:00:00Z",
            "metadata": {"tags": ["a", "b"], "dims": {"sku": f"s{n}", "zone": {"az": "1a"}}},
            "eventId": f"e{n}",
        }
        for n in range(start, start + count)
    ]


def test_stored_events_are_not_held_as_objects_the_collector_walks() -> None:
    # What made a stop with ~600k stored events take seconds: each nested event was several
    # container objects that every full collection and the interpreter's teardown walked.
    stored = 5_000
    with EnsoEmulator(customers=["c1"], token="t") as enso:
        gc.collect()
        before = len(gc.get_objects())
        session = requests.Session()
        for start in range(0, stored, 1_000):
            body = orjson.dumps({"events": _nested_events(start, 1_000)})
            session.post(
                f"{enso.url}/events/batch", data=body, headers={"Authorization": "Bearer t"}, timeout=10
            )
        session.close()
        gc.collect()
        grown = len(gc.get_objects()) - before
        assert enso.stats.events_stored == stored
        # As dicts, 5,000 events of this shape would be 20,000 tracked containers.
        assert grown < stored // 5, grown
        events = enso.events
        assert len(events) == stored
        assert events[7]["metadata"] == {"tags": ["a", "b"], "dims": {"sku": "s7", "zone": {"az": "1a"}}}
        admin = requests.get(f"{enso.url}/_emulator/events", timeout=10).json()
        assert admin["count"] == stored
        assert admin["events"][-1]["eventId"] == f"e{stored - 1}"


def test_cli_exits_cleanly_on_sigterm_holding_many_events() -> None:
    proc, url, _ = _start("--customers", "c1", "--token", "t")
    session = requests.Session()
    for start in range(0, 20_000, 2_000):
        body = orjson.dumps({"events": _nested_events(start, 2_000)})
        session.post(f"{url}/events/batch", data=body, headers={"Authorization": "Bearer t"}, timeout=30)
    session.close()
    assert requests.get(f"{url}/_emulator/stats", timeout=5).json()["events_stored"] == 20_000
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Traceback" not in err
