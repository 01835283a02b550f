"""DAGs of the operator tests: one per policy branch, fed through XCom by an upstream task."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

START = pendulum.datetime(2024, 5, 1, tz="UTC")
GOOD_ROWS: list[dict[str, Any]] = [
    {
        "customer_entity_id": f"cust_{n % 3 + 1}",
        "metric": "api_calls",
        "value": n + 1,
        "timestamp": f"2024-05-01T10:{n % 60:02d}:00Z",
        "region": "eu-west-1",
    }
    for n in range(50)
]
TS = "2024-05-01T10:00:00Z"
BAD_ROWS: list[dict[str, Any]] = [
    # Refused by Enso: 2002.
    {"customer_entity_id": "cust_ghost", "metric": "api_calls", "value": 1, "timestamp": TS},
    # Rejected locally: no customer, a value that is not a number (XCom itself cannot carry NaN).
    {"customer_entity_id": " ", "metric": "api_calls", "value": 1, "timestamp": TS},
    {"customer_entity_id": "cust_1", "metric": "api_calls", "value": "n/a", "timestamp": TS},
]
# One row of each kind first, so the first failures are deterministic in the sample.
MIXED_ROWS = GOOD_ROWS[:10] + BAD_ROWS + GOOD_ROWS[10:]


def usage_dag(dag_id: str, rows: list[dict[str, Any]], **operator_kwargs: Any) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        tags=["enso-tests"],
    ) as dag:

        @task
        def produce() -> list[dict[str, Any]]:
            return rows

        EnsoBatchEventsOperator(
            task_id="send",
            events=produce(),
            metadata_columns=["region"],
            rejected_records_path="{{ dag_run.conf.get('rejected_path') or '' }}",
            batch_size=7,
            **operator_kwargs,
        )
    return dag


clean = usage_dag("enso_test_xcom_clean", GOOD_ROWS)
policy_fail = usage_dag("enso_test_xcom_policy_fail", MIXED_ROWS)
policy_warn = usage_dag("enso_test_xcom_policy_warn", MIXED_ROWS, on_breach="warn")
policy_ratio = usage_dag("enso_test_xcom_policy_ratio", MIXED_ROWS, max_failures=None, max_failure_ratio=0.1)
policy_ratio_breach = usage_dag(
    "enso_test_xcom_policy_ratio_breach", MIXED_ROWS, max_failures=None, max_failure_ratio=0.01
)
dry_run = usage_dag("enso_test_xcom_dry_run", MIXED_ROWS, dry_run=True, max_failures=None)
empty = usage_dag("enso_test_xcom_empty", [])
