"""
Hourly usage from a SQL warehouse to Enso.

Every hour, the usage of the hour that just ended (the run's data interval) is read from the
``usage_hourly`` table, streamed, mapped to events and sent to Enso. A re-run or a cleared task of the
same hour builds the same eventIds, so nothing is counted twice where Enso dedupes. Rows that cannot be
sent are written to a JSON Lines file for review or replay.

Connections: ``enso_default`` (the Enso API) and ``usage_db`` (any SQL database Airflow has a hook
for; the query is plain SQL). Set ``ENSO_USAGE_CONN_ID`` / ``ENSO_REJECTED_RECORDS_BASE`` to change them.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import CronDataIntervalTimetable

USAGE_CONN_ID = os.environ.get("ENSO_USAGE_CONN_ID", "usage_db")
REJECTED_BASE = os.environ.get("ENSO_REJECTED_RECORDS_BASE", "file:///tmp/enso/rejected")

with DAG(
    dag_id="enso_usage_sql_hourly",
    # An interval timetable: a plain "@hourly" is a CronTriggerTimetable in Airflow 3, whose data
    # interval is zero-length, and a SQL window on it would select nothing.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["enso", "usage"],
    doc_md=__doc__,
):
    EnsoBatchEventsOperator(
        task_id="report_usage",
        sql="sql/hourly_usage.sql",
        sql_conn_id=USAGE_CONN_ID,
        parameters={
            "start": "{{ data_interval_start.strftime('%Y-%m-%d %H:%M:%S') }}",
            "end": "{{ data_interval_end.strftime('%Y-%m-%d %H:%M:%S') }}",
        },
        metadata_columns=["region", "plan"],
        job_id="usage-hourly-{{ data_interval_start.strftime('%Y%m%dT%H') }}",
        enso_conn_id="enso_default",
        # A few unusable rows are expected (a customer not yet in Enso, a bad timestamp): they are
        # written to the rejected-records file; more than 5% of the hour fails the task.
        max_failures=None,
        max_failure_ratio=0.05,
        on_breach="fail",
        rejected_records_path=REJECTED_BASE + "/{{ dag.dag_id }}/{{ data_interval_start | ts_nodash }}.jsonl",
        retries=3,
        retry_delay=pendulum.duration(minutes=5),
    )
