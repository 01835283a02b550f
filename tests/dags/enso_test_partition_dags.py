"""DAGs of the partition-namespace tests: mapped sends whose partition list comes from the run's conf."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

GOOD_ROWS: list[dict[str, Any]] = [
    {"customer": f"cust_{n % 3 + 1}", "calls": n + 1, "at": f"2024-05-01T10:{n % 60:02d}:00Z", "region": "eu"}
    for n in range(20)
]
MAPPING: dict[str, Any] = {
    "field_map": {"CustomerEntityId": "customer", "value": "calls", "timestamp": "at"},
    "defaults": {"metric": "api_calls"},
    "metadata_columns": ["region"],
}

ALL = ["cust_1", "cust_2", "cust_3"]


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=pendulum.datetime(2024, 5, 1, tz="UTC"),
        catchup=False,
        tags=["enso-tests"],
    )


@task
def partitions(**context: Any) -> list[str]:
    """The customers to send, in the order the run's conf gives (all three by default)."""
    return list(context["dag_run"].conf.get("customers", ALL))


@task
def partition_rows(**context: Any) -> list[list[dict[str, Any]]]:
    """One list of rows per customer, in the conf's order."""
    customers = context["dag_run"].conf.get("customers", ALL)
    return [[row for row in GOOD_ROWS if row["customer"] == c] for c in customers]


with _dag("enso_test_partitions_decorator"):

    @task.enso_events(**MAPPING)
    def send(customer: str) -> list[dict[str, Any]]:
        return [row for row in GOOD_ROWS if row["customer"] == customer]

    send.expand(customer=partitions())


with _dag("enso_test_partitions_operator"):
    EnsoBatchEventsOperator.partial(task_id="send", **MAPPING).expand(events=partition_rows())
