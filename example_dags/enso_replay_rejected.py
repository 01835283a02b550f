"""
Daily replay of the usage Enso refused because the customer did not exist yet (code 2002).

Usage often reaches the warehouse before the customer is created in Enso. ``enso_usage_sql_hourly``
writes what Enso refused to one rejected-records file per hour. Once a day, this DAG sends the
recorded events of those files again, with their original eventIds, so each is stored once however
often it is replayed:

- it reads the hourly files of the day (``<base>/enso_usage_sql_hourly/<YYYYMMDD>T*.jsonl``) and
  what the previous day's replay left (``<base>/enso_replay_rejected/<previous day>.jsonl``);
- records of code 2002, or that failed with a 429/5xx, are sent again;
- what is still refused, and every record that is not replayed (rejected locally, other codes), goes
  to ``<base>/enso_replay_rejected/<day>.jsonl``, which the next day's run reads.

A record is in exactly one file of the chain at a time, so nothing is sent twice and nothing is lost,
and the newest output is the whole list of usage still not in Enso. This is why a run does not simply
re-read the last seven days of hourly files: a record accepted on Monday would be sent again on each
of the six following days, and Enso's dedupe window is not documented. A gap in the chain is what
``depends_on_past`` prevents: a day whose replay failed blocks the next until it is cleared and
succeeds. To replay a longer history once, run the operator with a glob over those days.

The run warns, rather than fails, while records remain: they are expected (a customer created next
week, a row to fix at the source) and stay in the output until then.

Connections: ``enso_default``. ``ENSO_REJECTED_RECORDS_BASE`` is the base of the rejected-records
files, as for ``enso_usage_sql_hourly``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from enso_provider.operators.replay import EnsoReplayRejectedOperator
from enso_provider.version_compat import CronDataIntervalTimetable

REJECTED_BASE = os.environ.get("ENSO_REJECTED_RECORDS_BASE", "file:///tmp/enso/rejected")
HOURLY_FILES = REJECTED_BASE + "/enso_usage_sql_hourly/{{ data_interval_start | ds_nodash }}T*.jsonl"
REPLAYED = REJECTED_BASE + "/enso_replay_rejected"

with DAG(
    dag_id="enso_replay_rejected",
    # The day's interval starts at 02:00, once the hourly runs of the day before (and their retries)
    # are done; its date names the files.
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["enso", "usage", "replay"],
    doc_md=__doc__,
):
    EnsoReplayRejectedOperator(
        task_id="replay_rejected",
        source_path=[
            REPLAYED + "/{{ macros.ds_add(data_interval_start | ds, -1) }}.jsonl",
            HOURLY_FILES,
        ],
        output_path=REPLAYED + "/{{ data_interval_start | ds }}.jsonl",
        enso_conn_id="enso_default",
        max_failures=0,
        on_breach="warn",
        depends_on_past=True,
        retries=3,
        retry_delay=pendulum.duration(minutes=10),
    )
