"""The example replay DAG end to end with dag.test(), after the hourly SQL DAG wrote its rejected file."""

from __future__ import annotations

import json
import os
import runpy
import shutil
from pathlib import Path

import pendulum
import pytest

from tests.operator.dagrun import run_dag
from tests.operator.usage_tables import CUSTOMERS, HOUR, sqlite_table
from tests.replay.records import accounting_holds, read_lines

pytestmark = pytest.mark.airflow_db

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "enso_replay_rejected.py"
BASE = Path(os.environ["ENSO_REJECTED_RECORDS_BASE"].removeprefix("file://"))
HOURLY_FILE = BASE / "enso_usage_sql_hourly" / f"{HOUR:%Y%m%dT%H%M%S}.jsonl"
REPLAYED = BASE / "enso_replay_rejected"
# A daily interval starts at 02:00: the run after 2024-05-02 02:00 replays the day of 2024-05-01.
DAY1 = pendulum.datetime(2024, 5, 2, 2, tz="UTC")
DAY2 = DAY1.add(days=1)


def test_the_example_dag_parses_without_io(dagbag, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    from enso_provider.version_compat import BaseHook

    def boom(*args, **kwargs):
        raise AssertionError("I/O at parse time")

    for name in ("open", "exists", "is_file", "glob"):
        monkeypatch.setattr(ObjectStoragePath, name, boom)
    monkeypatch.setattr(BaseHook, "get_connection", boom)
    namespace = runpy.run_path(str(EXAMPLE))
    assert namespace["REPLAYED"].endswith("/enso_replay_rejected")
    dag = dagbag.get_dag("enso_replay_rejected")
    assert dag is not None
    task = dag.get_task("replay_rejected")
    assert task.depends_on_past is True
    assert task.on_breach == "warn"


def test_the_daily_replay_sends_late_customers_and_chains_to_the_next_day(
    dagbag, enso, tmp_path, monkeypatch
):
    shutil.rmtree(REPLAYED, ignore_errors=True)
    HOURLY_FILE.unlink(missing_ok=True)
    enso.add_customers(*CUSTOMERS)
    with sqlite_table(tmp_path / "usage.sqlite") as usage:
        monkeypatch.setenv("AIRFLOW_CONN_USAGE_DB", usage.conn_json)
        hourly = run_dag(dagbag, "enso_usage_sql_hourly", logical_date=pendulum.instance(HOUR).add(hours=1))
    assert hourly.state.endswith("success")
    assert hourly.report("report_usage")["rejected_records_path"] == f"file://{HOURLY_FILE}"
    rejected = [json.loads(line) for line in read_lines(HOURLY_FILE)]
    late = next(r for r in rejected if r["code"] == 2002)
    local_line = next(line for line in read_lines(HOURLY_FILE) if b'"rejectedBy":"local"' in line)
    accepted = enso.stats.events_accepted

    # The customer is created in Enso; the day's replay sends exactly the refused event.
    enso.add_customers(late["event"]["CustomerEntityId"])
    day1 = run_dag(dagbag, "enso_replay_rejected", logical_date=DAY1)
    assert day1.state.endswith("success"), day1.task_states
    report = day1.report("replay_rejected")
    accounting_holds(report)
    assert (report["total"], report["sent"], report["success"], report["invalid"]) == (2, 1, 1, 1)
    assert enso.stats.events_accepted - accepted == 1
    stored = next(e for e in enso.events if e["eventId"] == late["eventId"])
    assert stored == late["event"]
    # The locally rejected row is carried to the day's output, byte for byte.
    output = REPLAYED / "2024-05-01.jsonl"
    assert report["rejected_records_path"] == f"file://{output}"
    assert read_lines(output) == [local_line]

    # The next day reads that output (and the day's hourly files: none): nothing is sent.
    received = enso.stats.events_received
    day2 = run_dag(dagbag, "enso_replay_rejected", logical_date=DAY2)
    assert day2.state.endswith("success"), day2.task_states
    report2 = day2.report("replay_rejected")
    assert (report2["total"], report2["sent"], report2["invalid"]) == (1, 0, 1)
    assert enso.stats.events_received == received
    assert read_lines(REPLAYED / "2024-05-02.jsonl") == [local_line]
