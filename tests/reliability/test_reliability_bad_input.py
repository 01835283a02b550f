"""
The bad-input corpus through the operator against the emulator: every kind gets its precise code
(or is accepted, exactly as expected), nothing malformed is ever sent, and nothing crashes the task.
NaN and infinity also come through real databases (SQLite, PostgreSQL), the way they arrive in use.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from enso_provider.events import REJECTION_CODES
from tests.data.bad_rows import ACCEPT, CASES, ENSO_2002, EXTRA_CUSTOMERS, BadRow
from tests.reliability.reliability_kit import ReliabilityEmulator, run_operator, task_context
from tests.reliability.secret_watch import SecretWatch
from tests.support import require_server

CONTEXT = task_context(dag_id="reliability_bad_input")
GROUPS: dict[tuple[tuple[str, Any], ...], list[BadRow]] = defaultdict(list)
for _case in CASES:
    GROUPS[_case.options].append(_case)


def group_id(options: tuple[tuple[str, Any], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in options) or "defaults"


def test_the_corpus_is_broad_and_well_formed() -> None:
    kinds = [case.kind for case in CASES]
    assert len(kinds) == len(set(kinds))
    assert len(kinds) >= 40
    for case in CASES:
        assert len(case.changes) == len(case.expect), case.kind
        for expect in case.expect:
            assert expect in (ACCEPT, ENSO_2002) or expect in REJECTION_CODES, case.kind


@pytest.mark.parametrize("options", list(GROUPS), ids=[group_id(o) for o in GROUPS])
def test_each_bad_row_gets_its_precise_code(
    enso: ReliabilityEmulator,
    tmp_path: Path,
    secret_watch: SecretWatch,
    options: tuple[tuple[str, Any], ...],
) -> None:
    cases = GROUPS[options]
    enso.add_customers(*EXTRA_CUSTOMERS)
    rows: list[Any] = []
    owners: list[tuple[BadRow, int]] = []
    for case in cases:
        for n, row in enumerate(case.rows()):
            rows.append(row)
            owners.append((case, n))
    rejected = tmp_path / "rejected.jsonl"
    outcome = run_operator(
        CONTEXT,
        events=rows,
        metadata_columns=["case"],
        max_failures=None,
        rejected_records_path=str(rejected),
        **dict(options),
    )
    assert outcome.state == "success", repr(outcome.error)
    report = outcome.returned
    assert report is not None
    secret_watch.add(report, rejected.read_text() if rejected.exists() else "")
    # The report is XCom: strict JSON, no NaN anywhere in it.
    json.dumps(report, allow_nan=False)

    records = [orjson.loads(line) for line in rejected.read_text().splitlines()] if rejected.exists() else []
    by_index = {r["index"]: r for r in records}
    assert len(by_index) == len(records), "a row was reported twice"
    stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in enso.events:
        stored[event["metadata"]["case"]].append(event)

    wrong: list[str] = []
    for index, (case, n) in enumerate(owners):
        wrong += verdict(case, case.expect[n], by_index.get(index))
    for case in cases:
        wrong += stored_as_expected(case, stored.get(case.kind, []))
    assert not wrong, "\n".join(wrong)

    expected = [e for case in cases for e in case.expect]
    local = sum(1 for e in expected if e not in (ACCEPT, ENSO_2002))
    refused = expected.count(ENSO_2002)
    assert (report["total"], report["success"], report["failed"], report["invalid"]) == (
        len(rows),
        expected.count(ACCEPT),
        refused,
        local,
    )
    # Nothing malformed reached Enso: its only refusals are the unknown customers.
    stats = enso.stats
    assert stats.nan_timestamps == 0
    assert stats.events_failed == refused
    assert stats.events_accepted == stats.events_stored == expected.count(ACCEPT)


def verdict(case: BadRow, expect: str, record: dict[str, Any] | None) -> list[str]:
    name = f"{case.kind!r}"
    if expect == ACCEPT:
        return [f"{name}: expected acceptance, got {record and record['code']!r}"] if record else []
    if record is None:
        return [f"{name}: expected {expect}, but the row was accepted"]
    if expect == ENSO_2002:
        ok = record["rejectedBy"] == "enso" and record["code"] == 2002 and record["statusCode"] == 404
        return (
            [] if ok else [f"{name}: expected Enso's 2002, got {record['code']!r} ({record['rejectedBy']})"]
        )
    problems = []
    if (record["code"], record["rejectedBy"], record["statusCode"]) != (expect, "local", 400):
        problems.append(f"{name}: expected local {expect}, got {record['code']!r} ({record['rejectedBy']})")
    if case.says and case.says not in record["error"]:
        problems.append(f"{name}: the message {record['error']!r} does not say {case.says!r}")
    return problems


def stored_as_expected(case: BadRow, events: list[dict[str, Any]]) -> list[str]:
    accepted = case.expect.count(ACCEPT)
    if len(events) != accepted:
        return [f"{case.kind!r}: {len(events)} stored events, expected {accepted}"]
    problems = []
    for event in events:
        for key, want in case.stored.items():
            got = event.get(key)
            if key == "metadata":
                got = {k: got.get(k) for k in want} if isinstance(got, dict) else got
            if got != want:
                problems.append(f"{case.kind!r}: stored {key}={got!r}, expected {want!r}")
    if accepted > 1 and len({e["eventId"] for e in events}) != accepted:
        problems.append(f"{case.kind!r}: repeated rows share an eventId")
    return problems


def test_the_corpus_under_the_default_policy_fails_the_task_cleanly(
    enso: ReliabilityEmulator, secret_watch: SecretWatch
) -> None:
    """max_failures=0: the bad rows fail the task (no retry) after the good ones are delivered."""
    enso.add_customers(*EXTRA_CUSTOMERS)
    rows = [row for case in GROUPS[()] for row in case.rows()]
    outcome = run_operator(CONTEXT, events=rows, metadata_columns=["case"])
    secret_watch.add(outcome.error)
    assert outcome.state == "fail", repr(outcome.error)
    assert "breached the failure policy" in str(outcome.error)
    accepted = sum(case.expect.count(ACCEPT) for case in GROUPS[()])
    assert enso.stats.events_stored == accepted
    assert enso.stats.nan_timestamps == 0


# -- through real databases ------------------------------------------------------------------------

SQL_COLUMNS = "customer_entity_id, metric, value, timestamp, note"
# (customer, value, timestamp text, expected): values the database itself turns into NaN/inf/NULL.
SQLITE_ROWS: list[tuple[Any, ...]] = [
    ("cust_01", 1.0, "2024-05-01T10:00:00Z", ACCEPT),
    ("cust_01", float("nan"), "2024-05-01T10:00:00Z", "invalid_value"),  # SQLite stores NaN as NULL
    ("cust_01", float("inf"), "2024-05-01T10:00:00Z", "invalid_value"),
    ("cust_01", float("-inf"), "2024-05-01T10:00:00Z", "invalid_value"),
    ("cust_01", 2.0, "NaT", "invalid_timestamp"),
    ("cust_01", 3.0, "NaN", "invalid_timestamp"),
    ("cust_01", 4.0, None, "invalid_timestamp"),
    ("cust_01", 5.0, "2024-05-01 12:00:00", ACCEPT),  # naive: UTC unless a timezone is given
    (None, 6.0, "2024-05-01T10:00:00Z", "missing_customer_entity_id"),
    ("   ", 7.0, "2024-05-01T10:00:00Z", "missing_customer_entity_id"),
]


@pytest.fixture
def sqlite_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "bad.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE usage (customer_entity_id TEXT, metric TEXT, value REAL, timestamp TEXT, note TEXT)"
    )
    conn.executemany(
        "INSERT INTO usage VALUES (?, 'api_calls', ?, ?, ?)",
        [(c, v, ts, f"row{n}") for n, (c, v, ts, _) in enumerate(SQLITE_ROWS)],
    )
    conn.commit()
    conn.close()
    monkeypatch.setenv("AIRFLOW_CONN_BAD_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return "bad_sqlite"


def test_nan_and_infinity_from_sqlite_are_rejected_locally(
    enso: ReliabilityEmulator, sqlite_usage: str, tmp_path: Path
) -> None:
    check_sql_source(enso, sqlite_usage, SQLITE_ROWS, tmp_path, {})


# PostgreSQL has real NaN and infinities: float8, numeric and timestamps.
POSTGRES_ROWS: list[tuple[str, str, str, str]] = [
    # (customer SQL, value SQL, timestamp SQL, expected)
    ("'cust_01'", "1.5::float8", "'2024-05-01 10:00:00+00'::timestamptz", ACCEPT),
    ("'cust_01'", "'NaN'::float8", "'2024-05-01 10:00:00+00'::timestamptz", "invalid_value"),
    ("'cust_01'", "'Infinity'::float8", "'2024-05-01 10:00:00+00'::timestamptz", "invalid_value"),
    ("'cust_01'", "'-Infinity'::float8", "'2024-05-01 10:00:00+00'::timestamptz", "invalid_value"),
    ("'cust_01'", "'NaN'::numeric", "'2024-05-01 10:00:00+00'::timestamptz", "invalid_value"),
    ("'cust_01'", "3::numeric", "NULL::timestamptz", "invalid_timestamp"),
    ("'cust_01'", "4::numeric", "'2024-05-01 12:00:00'::timestamp::timestamptz", ACCEPT),
    ("NULL", "5::numeric", "'2024-05-01 10:00:00+00'::timestamptz", "missing_customer_entity_id"),
]


@pytest.fixture
def postgres_usage(monkeypatch: pytest.MonkeyPatch) -> str:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD_POSTGRES",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "login": "postgres",
                "schema": "test",
            }
        ),
    )
    return "bad_postgres"


def test_nan_and_infinity_from_postgres_are_rejected_locally(
    enso: ReliabilityEmulator, postgres_usage: str, tmp_path: Path
) -> None:
    # A query of literals: nothing to create, so nothing shared with other tests on this server.
    selects = [
        f"SELECT {c} AS customer_entity_id, 'api_calls' AS metric, {v} AS value, {ts} AS timestamp, "
        f"'row{n}' AS note"
        for n, (c, v, ts, _) in enumerate(POSTGRES_ROWS)
    ]
    sql = " UNION ALL ".join(selects) + " ORDER BY note"
    check_sql_source(enso, postgres_usage, POSTGRES_ROWS, tmp_path, {"sql": sql})


def test_infinite_postgres_timestamps_arrive_as_text_and_are_rejected(
    enso: ReliabilityEmulator, postgres_usage: str, tmp_path: Path
) -> None:
    # psycopg cannot load an infinite timestamptz at all (its DataError stops the fetch, before any
    # mapping): cast such a column to text, and the provider rejects the row with its code.
    rows = [
        ("'cust_01'", "1", "'2024-05-01 10:00:00+00'::timestamptz::text", ACCEPT),
        ("'cust_01'", "2", "'infinity'::timestamptz::text", "invalid_timestamp"),
        ("'cust_01'", "3", "'-infinity'::timestamptz::text", "invalid_timestamp"),
    ]
    sql = " UNION ALL ".join(
        f"SELECT {c} AS customer_entity_id, 'api_calls' AS metric, {v} AS value, {ts} AS timestamp, "
        f"'row{n}' AS note"
        for n, (c, v, ts, _) in enumerate(rows)
    )
    check_sql_source(enso, postgres_usage, rows, tmp_path, {"sql": sql + " ORDER BY note"})


def check_sql_source(
    enso: ReliabilityEmulator,
    conn_id: str,
    rows: list[tuple[Any, ...]],
    tmp_path: Path,
    overrides: dict[str, Any],
) -> None:
    rejected = tmp_path / "rejected.jsonl"
    outcome = run_operator(
        CONTEXT,
        sql=overrides.get("sql", f"SELECT {SQL_COLUMNS} FROM usage ORDER BY note"),
        sql_conn_id=conn_id,
        metadata_columns=["note"],
        max_failures=None,
        rejected_records_path=str(rejected),
    )
    assert outcome.state == "success", repr(outcome.error)
    report = outcome.returned
    assert report is not None
    json.dumps(report, allow_nan=False)
    records = {r["index"]: r for r in map(orjson.loads, rejected.read_text().splitlines())}
    expected = [row[-1] for row in rows]
    got = [records[i]["code"] if i in records else ACCEPT for i in range(len(rows))]
    assert got == expected
    assert all(r["rejectedBy"] == "local" for r in records.values())
    assert enso.stats.events_stored == expected.count(ACCEPT)
    assert enso.stats.events_failed == 0
    assert enso.stats.nan_timestamps == 0
    assert {e["timestamp"] for e in enso.events} <= {"2024-05-01T10:00:00Z", "2024-05-01T12:00:00Z"}
