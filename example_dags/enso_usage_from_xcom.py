"""
Usage computed by a Python task, sent to Enso through XCom.

Any task that returns a list of mappings (``df.to_dict("records")`` included) can feed the operator:
``events=<task>.output``. Here a task summarises a day of API calls per customer.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

with DAG(
    dag_id="enso_usage_from_xcom",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["enso", "usage"],
    doc_md=__doc__,
):

    @task
    def daily_api_calls(data_interval_start=None) -> list[dict]:
        """Stand-in for a call to your own system: one row per customer for the day."""
        day = data_interval_start.replace(hour=0, minute=0, second=0, microsecond=0)
        usage = {"cust_1": 1250, "cust_2": 310, "cust_3": 0}
        return [
            {"customer_id": customer, "calls": calls, "day": day.isoformat(), "source": "gateway"}
            for customer, calls in usage.items()
        ]

    EnsoBatchEventsOperator(
        task_id="report_api_calls",
        events=daily_api_calls(),
        field_map={"CustomerEntityId": "customer_id", "value": "calls", "timestamp": "day"},
        defaults={"metric": "api_calls"},
        metadata_columns=["source"],
        enso_conn_id="enso_default",
    )
