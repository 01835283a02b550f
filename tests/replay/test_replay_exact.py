"""
A replay sends the event exactly as first built: a PostgreSQL numeric(44,30) value refused for a
customer that did not exist yet is replayed, once the customer exists, with every digit.
"""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.operators.replay import EnsoReplayRejectedOperator
from enso_provider.testing import EnsoEmulator
from tests.operator.usage_tables import DATABASE, postgres_connection
from tests.support import require_server

EXACT = Decimal("12345678901234.123456789012345678901234567890")  # 44 digits, 30 after the point
LATE = "cust_created_later"


def _context() -> dict[str, Any]:
    start = pendulum.datetime(2024, 5, 1, 10, tz="UTC")
    ti = SimpleNamespace(dag_id="exact", task_id="send", map_index=-1)
    return {
        "ti": ti,
        "run_id": "manual__1",
        "data_interval_start": start,
        "data_interval_end": start.add(hours=1),
    }


@pytest.fixture
def numeric_table(monkeypatch: pytest.MonkeyPatch) -> Any:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    conn = postgres_connection()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS usage_exact")
        cur.execute(
            "CREATE TABLE usage_exact (customer_entity_id text, metric text, value numeric(44,30), "
            "timestamp timestamptz)"
        )
        cur.execute(
            "INSERT INTO usage_exact VALUES (%s, 'storage_gb', %s, '2024-05-01T10:30:00Z')", (LATE, EXACT)
        )
    conn_json = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres"}
    monkeypatch.setenv("AIRFLOW_CONN_PG_EXACT", json.dumps({**conn_json, "schema": DATABASE}))
    yield
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS usage_exact")
    conn.close()


def _bodies(enso: EnsoEmulator, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every batch request body the emulator receives, as sent (its store reads numbers as doubles)."""
    seen: list[bytes] = []
    route = ("POST", "/events/batch")
    original = enso._routes[route]

    def recording(request: Any) -> Any:
        seen.append(bytes(request.body))
        return original(request)

    monkeypatch.setitem(enso._routes, route, recording)
    return seen


@pytest.mark.postgres
def test_a_replayed_numeric_value_is_sent_digit_for_digit(numeric_table, enso, monkeypatch, tmp_path) -> None:
    bodies = _bodies(enso, monkeypatch)
    rejected = tmp_path / "rejected.jsonl"
    send = EnsoBatchEventsOperator(
        task_id="send",
        sql="SELECT customer_entity_id, metric, value, timestamp FROM usage_exact",
        sql_conn_id="pg_exact",
        max_failures=None,
        rejected_records_path=str(rejected),
    )
    report = send.execute(_context())
    assert report["failed"] == 1  # 2002: the customer does not exist yet
    (first_body,) = bodies
    (first,) = json.loads(first_body, parse_float=Decimal)["events"]
    assert first["value"] == EXACT
    assert str(first["value"]) == "12345678901234.12345678901234567890123456789"  # no double in between
    (record,) = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert record["eventJson"].encode() in first_body

    enso.add_customers(LATE)
    replay = EnsoReplayRejectedOperator(
        task_id="replay", source_path=str(rejected), output_path=str(tmp_path / "still_rejected.jsonl")
    )
    replayed = replay.execute(_context())
    assert replayed["success"] == 1
    (_, second_body) = bodies
    (second,) = json.loads(second_body, parse_float=Decimal)["events"]
    assert second == first  # the same event, the same eventId, every digit
    assert second_body == first_body
    assert [e["eventId"] for e in enso.events] == [first["eventId"]]
