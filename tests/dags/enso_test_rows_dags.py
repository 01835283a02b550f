"""DAGs of the "rows are data" tests: literal and XCom rows holding Jinja, and literal NaN/Infinity."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

START = pendulum.datetime(2024, 5, 1, tz="UTC")
TS = "2024-05-01T10:00:00Z"
SECRET_TEMPLATE = "{{ conn.enso_default.password }}"
# Strings that Jinja would render (or fail on): as data, each is sent as written.
TEMPLATE_ROWS: list[dict[str, Any]] = [
    {
        "customer_entity_id": "cust_1",
        "metric": "api_calls",
        "value": 1,
        "timestamp": TS,
        "note": SECRET_TEMPLATE,
    },
    {
        "customer_entity_id": "cust_2",
        "metric": "api_calls",
        "value": 2,
        "timestamp": TS,
        "note": "{% if x %}",
    },
    {"customer_entity_id": "cust_3", "metric": "api_calls", "value": 3, "timestamp": TS, "note": "{{ ds }}"},
]
NON_FINITE_ROWS: list[dict[str, Any]] = [
    {
        "customer_entity_id": "cust_1",
        "metric": "api_calls",
        "value": float("nan"),
        "timestamp": TS,
        "note": "a",
    },
    {
        "customer_entity_id": "cust_2",
        "metric": "api_calls",
        "value": float("inf"),
        "timestamp": TS,
        "note": "b",
    },
    {
        "customer_entity_id": "cust_3",
        "metric": "api_calls",
        "value": 4,
        "timestamp": TS,
        "note": float("nan"),
    },
    {"customer_entity_id": "cust_3", "metric": "api_calls", "value": 5, "timestamp": TS, "note": "c"},
]


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        tags=["enso-tests"],
    )


with _dag("enso_test_rows_literal_templates"):
    EnsoBatchEventsOperator(task_id="send", events=TEMPLATE_ROWS, metadata_columns=["note"])

with _dag("enso_test_rows_xcom_templates"):

    @task
    def produce() -> list[dict[str, Any]]:
        return TEMPLATE_ROWS

    EnsoBatchEventsOperator(task_id="send", events=produce(), metadata_columns=["note"])

with _dag("enso_test_rows_literal_non_finite"):
    EnsoBatchEventsOperator(
        task_id="send", events=NON_FINITE_ROWS, metadata_columns=["note"], max_failures=None
    )

with _dag("enso_test_rows_decorator_templates"):

    @task.enso_events(metadata_columns=["note"])
    def usage() -> list[dict[str, Any]]:
        return TEMPLATE_ROWS

    usage()
