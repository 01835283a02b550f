"""
The hourly SQL example under a real scheduler, as a deployment runs it (not ``dag.test()``).

Separate ``airflow api-server``, ``scheduler`` (LocalExecutor) and ``dag-processor`` processes on a
SQLite metadata database in a temporary AIRFLOW_HOME, the EnsoEmulator as ``enso_default`` and a
SQLite usage table as ``usage_db``. A past hour is triggered through the REST API with an explicit
data interval; the task log must hold the delivery report with every row of the hour accounted for
and never the token. The task is then cleared and runs again: the same eventIds, nothing new stored.

Every wait polls against a deadline; the processes are stopped (their process groups signalled)
whatever happens.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from enso_provider.testing import EnsoEmulator
from scripts.airflow_server import AirflowApiServer
from tests.operator.usage_tables import CUSTOMERS, HOUR, UsageTable, sqlite_table

T = TypeVar("T")

TOKEN = "scheduler-smoke-token-7719"
DAG_ID = "enso_usage_sql_hourly"
TASK_ID = "report_usage"
RUN_ID = "smoke_past_hour"
EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
#: The hour of the usage table, as the schedule's run of it has it: [10:00, 11:00).
INTERVAL = {
    "logical_date": f"{HOUR:%Y-%m-%dT%H}:00:00Z",
    "data_interval_start": f"{HOUR:%Y-%m-%dT%H}:00:00Z",
    "data_interval_end": f"{HOUR:%Y-%m-%dT}{HOUR.hour + 1:02d}:00:00Z",
}

pytestmark = pytest.mark.timeout(600)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something other than ``None``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}", pytrace=False)
        time.sleep(interval)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EnsoEmulator]:
    with EnsoEmulator(customers=CUSTOMERS, token=TOKEN) as enso:
        yield enso


@pytest.fixture(scope="module")
def usage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsageTable]:
    with sqlite_table(tmp_path_factory.mktemp("usage") / "usage.sqlite") as table:
        yield table


@pytest.fixture(scope="module")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, emulator: EnsoEmulator, usage: UsageTable
) -> Iterator[AirflowApiServer]:
    home = tmp_path_factory.mktemp("scheduler-home")
    dags = home / "dags"
    dags.mkdir()
    # Only the DAG under test (and its SQL file), so the dag-processor has one file to parse.
    shutil.copy(EXAMPLES / f"{DAG_ID}.py", dags)
    shutil.copytree(EXAMPLES / "sql", dags / "sql")
    env = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW_CONN_ENSO_DEFAULT": emulator.connection_json(
            timeout=10, backoff_factor=0.01, backoff_max=0.05
        ),
        "AIRFLOW_CONN_USAGE_DB": usage.conn_json,
        "ENSO_REJECTED_RECORDS_BASE": f"file://{home / 'rejected'}",
    }
    server = AirflowApiServer(home, dags_folder=dags, env=env, start_timeout=120)
    try:
        server.start()
        server.start_component("scheduler")
        server.start_component("dag-processor")
        yield server
    finally:
        server.stop()


def _json_or_none(server: AirflowApiServer, path: str) -> Any:
    response = server.request("GET", path)
    return response.json() if response.status_code == 200 else None


def _finished_run(server: AirflowApiServer, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run = _json_or_none(server, f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}")
        return run if run and run["state"] in {"success", "failed"} else None

    return wait_for(f"run {RUN_ID} to finish", probe, timeout)


def _task_instance(server: AirflowApiServer) -> dict[str, Any]:
    ti = _json_or_none(server, f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}")
    assert ti is not None
    return dict(ti)


def _task_log(server: AirflowApiServer, try_number: int) -> str:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}/logs/{try_number}"
    response = server.request(
        "GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    content = response.json()["content"]
    # Structured log lines (3.x) are objects with an "event"; plain lines are strings.
    return "\n".join(
        line.get("event", json.dumps(line)) if isinstance(line, dict) else str(line) for line in content
    )


def _report(server: AirflowApiServer) -> dict[str, Any]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}/xcomEntries/return_value"
    response = server.request("GET", path, params={"deserialize": "true"})
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    return dict(json.loads(value) if isinstance(value, str) else value)


def test_a_past_hour_runs_under_the_scheduler_and_a_cleared_task_stores_nothing_twice(
    airflow: AirflowApiServer, emulator: EnsoEmulator, usage: UsageTable
) -> None:
    airflow.wait_for_scheduler(timeout=120)
    wait_for(
        "the dag-processor to parse the DAG", lambda: _json_or_none(airflow, f"/api/v2/dags/{DAG_ID}"), 180
    )

    triggered = airflow.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"dag_run_id": RUN_ID, **INTERVAL}
    )
    assert triggered.status_code == 200, triggered.text
    assert triggered.json()["data_interval_start"].startswith(INTERVAL["data_interval_start"][:19])
    # A new DAG is paused: unpausing lets the scheduler run the triggered run (and, with catchup off, the
    # latest hour's run, which finds no usage in this table and so stores nothing).
    unpaused = airflow.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert unpaused.status_code == 200, unpaused.text

    run = _finished_run(airflow, timeout=240)
    assert run["state"] == "success", (run, airflow.home)
    first_try = _task_instance(airflow)["try_number"]
    log = _task_log(airflow, first_try)
    assert "Enso delivery report" in log, log[-3000:]
    report = _report(airflow)
    expected_total = usage.good_in_hour + usage.unknown_in_hour + usage.invalid_in_hour
    assert report["total"] == expected_total
    assert report["success"] == usage.good_in_hour
    assert report["total"] == report["success"] + report["failed"] + report["invalid"]
    assert f"{expected_total:,}" in log
    stored = sorted(e["eventId"] for e in emulator.events)
    assert len(stored) == usage.good_in_hour
    assert {e["JobId"] for e in emulator.events} == {f"usage-hourly-{HOUR:%Y%m%dT%H}"}

    cleared = airflow.request(
        "POST",
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        json={"dry_run": False, "task_ids": [TASK_ID], "dag_run_id": RUN_ID, "only_failed": False},
    )
    assert cleared.status_code == 200, cleared.text

    def rerun_finished() -> dict[str, Any] | None:
        ti = _task_instance(airflow)
        return ti if ti["try_number"] > first_try and ti["state"] in {"success", "failed"} else None

    rerun = wait_for("the cleared task to run again", rerun_finished, timeout=240)
    assert rerun["state"] == "success", rerun
    assert sorted(e["eventId"] for e in emulator.events) == stored
    assert emulator.stats["duplicates"] == usage.good_in_hour
    assert "Enso delivery report" in _task_log(airflow, rerun["try_number"])

    # The token reaches no log of any component, nor the task logs of either try.
    for path in airflow.home.rglob("*.log"):
        assert TOKEN not in path.read_text(errors="replace"), path
    assert TOKEN not in log
