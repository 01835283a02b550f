"""The example DAGs end to end with dag.test(), with SQLite, PostgreSQL and MariaDB as sources."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path

import pendulum
import pytest

from tests.operator.dagrun import run_dag
from tests.operator.usage_tables import (
    CUSTOMERS,
    HOUR,
    UsageTable,
    mariadb_table,
    postgres_table,
    sqlite_table,
)
from tests.support import require_server

pytestmark = pytest.mark.airflow_db

DATABASES = ["sqlite", "postgres", "mariadb"]
# PostgresHook takes psycopg 3 with SQLAlchemy 2 and psycopg2 otherwise (Airflow with SQLAlchemy 1.4,
# or without psycopg installed); "postgres-psycopg2" runs the same table through psycopg2.
SOURCES = [*DATABASES, "postgres-psycopg2"]


def open_table(db: str, tmp_path: Path, days: int = 0) -> AbstractContextManager[UsageTable]:
    if db.startswith("postgres"):
        require_server("PostgreSQL", "127.0.0.1", 5432)
        return postgres_table(days)
    if db == "mariadb":
        require_server("MariaDB", "127.0.0.1", 3306)
        return mariadb_table(days)
    return sqlite_table(tmp_path / "usage.sqlite", days)


@pytest.fixture(params=SOURCES)
def usage(request, tmp_path, monkeypatch) -> Iterator[UsageTable]:
    if request.param == "postgres-psycopg2":
        from airflow.providers.postgres.hooks import postgres

        monkeypatch.setattr(postgres, "USE_PSYCOPG3", False)
    with open_table(request.param, tmp_path) as table:
        monkeypatch.setenv("AIRFLOW_CONN_USAGE_DB", table.conn_json)
        yield table


HOURLY_LOGICAL_DATE = pendulum.instance(HOUR, tz="UTC").add(hours=1)


def test_hourly_sql_dag_delivers_the_hour(dagbag, enso, usage):
    result = run_dag(dagbag, "enso_usage_sql_hourly", logical_date=HOURLY_LOGICAL_DATE)
    assert result.state.endswith("success"), result.task_states
    report = result.report("report_usage")
    assert report["total"] == usage.good_in_hour + usage.unknown_in_hour + usage.invalid_in_hour
    assert report["success"] == usage.good_in_hour
    assert report["failed"] == usage.unknown_in_hour
    assert report["invalid"] == usage.invalid_in_hour
    assert report["total"] == report["success"] + report["failed"] + report["invalid"]
    assert report["errors"] == {"2002": 1, "missing_customer_entity_id": 1}

    stored = enso.events
    assert len(stored) == usage.good_in_hour
    assert {e["timestamp"] for e in stored} == {"2024-05-01T10:00:00Z"}
    assert {e["JobId"] for e in stored} == {"usage-hourly-20240501T10"}
    # NUMERIC values arrive digit for digit, never rounded through float.
    expected = sorted(str(q) for c, m, q, ts, r, p in usage.rows if ts == HOUR and c in CUSTOMERS)
    assert sorted(str(Decimal(str(e["value"])).quantize(Decimal("0.001"))) for e in stored) == expected
    assert {tuple(sorted(e["metadata"])) for e in stored} == {("plan", "region")}

    rejected = Path(report["rejected_records_path"].removeprefix("file://"))
    records = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert sorted(str(r["code"]) for r in records) == ["2002", "missing_customer_entity_id"]


def test_hourly_sql_rerun_stores_nothing_twice(dagbag, enso, usage):
    run_dag(dagbag, "enso_usage_sql_hourly", logical_date=HOURLY_LOGICAL_DATE)
    ids = sorted(e["eventId"] for e in enso.events)
    second = run_dag(dagbag, "enso_usage_sql_hourly", logical_date=HOURLY_LOGICAL_DATE)
    assert second.state.endswith("success")
    assert sorted(e["eventId"] for e in enso.events) == ids
    assert enso.stats["duplicates"] == usage.good_in_hour


@pytest.mark.parametrize("db", DATABASES)
def test_partitioned_backfill_maps_one_task_per_day(dagbag, enso, tmp_path, monkeypatch, db):
    with open_table(db, tmp_path, days=7) as table:
        monkeypatch.setenv("AIRFLOW_CONN_USAGE_DB", table.conn_json)
        # The weekly run of Monday 2024-05-06 03:00 covers 2024-04-29 03:00 .. 2024-05-06 03:00.
        logical = pendulum.datetime(2024, 5, 6, 3, tz="UTC")
        result = run_dag(dagbag, "enso_usage_backfill_partitioned", logical_date=logical)
        assert result.state.endswith("success"), result.task_states
        reports = {k[1]: v for k, v in result.xcoms.items() if k[0] == "report_usage_day"}
        assert sorted(reports) == list(range(7))
        # The query aggregates per customer, metric, region and plan within each day's window.
        groups: dict[int, set] = {day: set() for day in range(7)}
        first_day = pendulum.datetime(2024, 4, 29, 3).naive()
        for customer, metric, _q, ts, region, plan in table.rows:
            day = (ts - first_day).days
            if 0 <= day < 7:
                groups[day].add((customer, metric, region, plan))
        assert [reports[d]["total"] for d in range(7)] == [len(groups[d]) for d in range(7)]
        good = sum(1 for d in range(7) for g in groups[d] if g[0] and g[0] != "cust_unknown")
        assert sum(r["success"] for r in reports.values()) == good
        assert len(enso.events) == good
        ids = sorted(e["eventId"] for e in enso.events)

        again = run_dag(dagbag, "enso_usage_backfill_partitioned", logical_date=logical)
        assert again.state.endswith("success")
        assert sorted(e["eventId"] for e in enso.events) == ids
        assert enso.stats["duplicates"] == good


def test_example_dags_import_cleanly(dagbag):
    for dag_id in ("enso_usage_sql_hourly", "enso_usage_from_xcom", "enso_usage_backfill_partitioned"):
        dag = dagbag.get_dag(dag_id)
        assert dag is not None, dag_id
        assert dag.timetable.__class__.__name__ == "CronDataIntervalTimetable"


def test_xcom_example_dag(dagbag, enso):
    result = run_dag(dagbag, "enso_usage_from_xcom", logical_date=pendulum.datetime(2024, 5, 2, 2, tz="UTC"))
    assert result.state.endswith("success"), result.task_states
    report = result.report("report_api_calls")
    assert (report["total"], report["success"], report["invalid"]) == (3, 3, 0)
    assert {e["CustomerEntityId"] for e in enso.events} == {"cust_1", "cust_2", "cust_3"}
    assert {e["timestamp"] for e in enso.events} == {"2024-05-01T00:00:00Z"}
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
