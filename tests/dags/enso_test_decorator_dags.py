"""DAGs of the ``@task.enso_events`` tests: the decorator registered through provider info."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from enso_provider.version_compat import CronDataIntervalTimetable

START = pendulum.datetime(2024, 5, 1, tz="UTC")
TS = "2024-05-01T10:00:00Z"
GOOD_ROWS: list[dict[str, Any]] = [
    {"customer": f"cust_{n % 3 + 1}", "calls": n + 1, "at": f"2024-05-01T10:{n % 60:02d}:00Z", "region": "eu"}
    for n in range(20)
]
BAD_ROWS: list[dict[str, Any]] = [
    # Refused by Enso: 2002 (an unknown customer).
    {"customer": "cust_ghost", "calls": 1, "at": TS, "region": "eu"},
    # Rejected locally: no customer.
    {"customer": "", "calls": 1, "at": TS, "region": "eu"},
]
# The options every DAG below shares: the returned rows use the DAG author's column names.
MAPPING: dict[str, Any] = {
    "field_map": {"CustomerEntityId": "customer", "value": "calls", "timestamp": "at"},
    "defaults": {"metric": "api_calls"},
    "metadata_columns": ["region"],
}


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        tags=["enso-tests"],
    )


with _dag("enso_test_decorator_clean"):

    @task.enso_events(
        enso_conn_id="enso_default", batch_size=6, job_id="decorated-{{ ds_nodash }}", **MAPPING
    )
    def usage() -> list[dict[str, Any]]:
        return GOOD_ROWS

    usage()


with _dag("enso_test_decorator_upstream"):

    @task
    def extract() -> list[dict[str, Any]]:
        return GOOD_ROWS[:5]

    @task.enso_events(**MAPPING)
    def enrich(rows: list[dict[str, Any]], data_interval_start: Any = None) -> list[dict[str, Any]]:
        # Arguments from upstream tasks and from the context, as in any TaskFlow function.
        stamp = data_interval_start.strftime("%Y-%m-%dT%H:%M:%SZ")
        return [{**row, "at": stamp, "region": "us"} for row in rows]

    enrich(extract())


with _dag("enso_test_decorator_generator"):

    @task.enso_events(batch_size=4, **MAPPING)
    def stream() -> Iterator[dict[str, Any]]:
        # A generator is streamed: rows are produced while earlier batches are being sent.
        yield from GOOD_ROWS

    stream()


with _dag("enso_test_decorator_policy_fail"):

    @task.enso_events(max_failures=0, **MAPPING)
    def mixed() -> list[dict[str, Any]]:
        return GOOD_ROWS + BAD_ROWS

    mixed()


with _dag("enso_test_decorator_policy_warn"):

    @task.enso_events(max_failures=0, on_breach="warn", **MAPPING)
    def mixed_warn() -> list[dict[str, Any]]:
        return GOOD_ROWS + BAD_ROWS

    mixed_warn()


with _dag("enso_test_decorator_dry_run"):

    @task.enso_events(dry_run=True, max_failures=None, **MAPPING)
    def dry() -> list[dict[str, Any]]:
        return GOOD_ROWS + BAD_ROWS

    dry()


with _dag("enso_test_decorator_returns_none"):

    @task.enso_events(**MAPPING)
    def forgot_to_return() -> None:
        GOOD_ROWS.copy()

    forgot_to_return()


with _dag("enso_test_decorator_mapped"):

    @task.enso_events(**MAPPING)
    def partition(customer: str) -> list[dict[str, Any]]:
        return [row for row in GOOD_ROWS if row["customer"] == customer]

    partition.expand(customer=["cust_1", "cust_2", "cust_3"])
