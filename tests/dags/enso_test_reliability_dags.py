"""DAGs of the reliability tests: the same usage rows sent under faults, with and without task retries."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

START = pendulum.datetime(2024, 5, 1, tz="UTC")
ROW_COUNT = 1000
BATCH_SIZE = 100
UNKNOWN_EVERY = 50  # one row in 50 names a customer Enso does not know (refused: 2002)
INVALID_EVERY = 50  # one row in 50 has no customer at all (rejected locally)


def usage_row(n: int) -> dict[str, Any]:
    customer: str | None = f"cust_{n % 20:02d}"
    if n % UNKNOWN_EVERY == 7:
        customer = f"ghost_{n}"
    elif n % INVALID_EVERY == 29:
        customer = None
    return {
        "customer_entity_id": customer,
        "metric": "api_calls",
        "value": n + 0.5,
        "timestamp": f"2024-05-01T10:{n % 60:02d}:00Z",
        "region": ("eu", "us")[n % 2],
    }


ROWS: list[dict[str, Any]] = [usage_row(n) for n in range(ROW_COUNT)]
# The input's own failures are within the policy; anything more (a record that stays failed) is not.
FAILURES = sum(1 for r in ROWS if r["customer_entity_id"] is None or r["customer_entity_id"].startswith("g"))


def _note(what: str, context: Any) -> None:
    # Task state changes, for the tests: the task history archives an up_for_retry try as "failed".
    path = os.environ.get("ENSO_RELIABILITY_CALLBACKS")
    if path:
        with Path(path).open("a") as notes:
            ti = context["ti"]
            notes.write(f"{ti.task_id} {what} {ti.try_number}\n")


def on_retry(context: Any) -> None:
    _note("up_for_retry", context)


def on_failure(context: Any) -> None:
    _note("failed", context)


def on_success(context: Any) -> None:
    _note("success", context)


def reliability_dag(dag_id: str, *, retries: int, **operator_kwargs: Any) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        tags=["enso-tests", "reliability"],
        default_args={
            "retries": retries,
            "retry_delay": timedelta(0),
            "on_retry_callback": on_retry,
            "on_failure_callback": on_failure,
            "on_success_callback": on_success,
        },
    ) as dag:

        @task
        def produce() -> list[dict[str, Any]]:
            return ROWS

        EnsoBatchEventsOperator(
            task_id="send",
            events=produce(),
            metadata_columns=["region"],
            job_id="usage-{{ data_interval_start | ts_nodash }}",
            rejected_records_path="{{ dag_run.conf.get('rejected_path') or '' }}",
            batch_size=BATCH_SIZE,
            max_failures=FAILURES,
            **operator_kwargs,
        )
    return dag


# One sender, so that "the fifth batch" is the fifth request and the retry's re-sends are exact.
with_retry = reliability_dag("enso_test_reliability_retry", retries=1, concurrency=1)
without_retry = reliability_dag("enso_test_reliability_no_retry", retries=0, concurrency=1)
concurrent = reliability_dag("enso_test_reliability_concurrent", retries=1, concurrency=4)
