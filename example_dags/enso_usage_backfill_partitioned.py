"""
A partitioned backfill: one mapped task per day of the week, spread over the workers.

``.partial(...).expand(parameters=...)`` makes one task instance per partition. Each partition has
its own eventId namespace (the map index is part of it), and a retry of one partition re-sends only
that day, with the same ids.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

USAGE_CONN_ID = os.environ.get("ENSO_USAGE_CONN_ID", "usage_db")

with DAG(
    dag_id="enso_usage_backfill_partitioned",
    schedule=CronDataIntervalTimetable("0 3 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["enso", "usage", "backfill"],
    doc_md=__doc__,
):

    @task
    def daily_partitions(data_interval_start=None, data_interval_end=None) -> list[dict[str, str]]:
        """One ``{start, end}`` window per day of the run's interval."""
        windows = []
        day = data_interval_start
        while day < data_interval_end:
            end = min(day.add(days=1), data_interval_end)
            fmt = "%Y-%m-%d %H:%M:%S"
            windows.append({"start": day.strftime(fmt), "end": end.strftime(fmt)})
            day = end
        return windows

    EnsoBatchEventsOperator.partial(
        task_id="report_usage_day",
        sql="sql/hourly_usage.sql",
        sql_conn_id=USAGE_CONN_ID,
        metadata_columns=["region", "plan"],
        enso_conn_id="enso_default",
        max_failures=None,
        max_failure_ratio=0.05,
        max_active_tis_per_dag=4,
    ).expand(parameters=daily_partitions())
