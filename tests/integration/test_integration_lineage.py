"""OpenLineage: the SQL source as input, Enso's events endpoint as output; silent without the provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from tests.support import require_server

REPO = Path(__file__).resolve().parents[2]
QUERY = (REPO / "example_dags" / "sql" / "hourly_usage.sql").read_text()


@pytest.fixture
def usage_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A SQLite connection ``usage_db`` (nothing is queried: lineage is read from the SQL)."""
    path = tmp_path / "usage.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_USAGE_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def names(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_sql_source_is_the_input_and_enso_the_output(enso, usage_db):
    op = EnsoBatchEventsOperator(task_id="report", sql=QUERY, sql_conn_id="usage_db")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert names(lineage.inputs) == [(f"sqlite://{usage_db}", "main.usage_hourly")]
    assert names(lineage.outputs) == [(enso.url, "events/batch")]
    sql = lineage.job_facets["sql"]
    assert "FROM usage_hourly" in sql.query
    assert ":start" in sql.query  # the query as written
    assert lineage.run_facets == {}  # no parse errors


def test_the_output_namespace_is_the_connection_base_url(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_PROD",
        json.dumps({"conn_type": "enso", "host": "https://api.getenso.ai/", "password": "x"}),
    )
    op = EnsoBatchEventsOperator(task_id="report", events=[], enso_conn_id="enso_prod")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert lineage.inputs == []
    assert names(lineage.outputs) == [("https://api.getenso.ai", "events/batch")]


def test_mysql_placeholders_and_joined_tables(enso, monkeypatch):
    # No server needed: MySQL's namespace and default database come from the connection.
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": "test"}
        ),
    )
    sql = (
        "SELECT u.customer_id, u.metric, u.quantity AS value, u.hour_start AS timestamp "
        "FROM usage_hourly u JOIN crm.customers c ON c.id = u.customer_id "
        "WHERE u.hour_start >= %(start)s AND u.hour_start < %(end)s AND c.plan <> '%s?'"
    )
    op = EnsoBatchEventsOperator(task_id="report", sql=sql, sql_conn_id="warehouse")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert sorted(names(lineage.inputs)) == [
        ("mysql://127.0.0.1:3306", "crm.customers"),
        ("mysql://127.0.0.1:3306", "test.usage_hourly"),
    ]
    assert lineage.job_facets["sql"].query == sql
    assert lineage.job_facets["sql"].dialect == "mysql"


@pytest.mark.postgres
def test_postgres_names_carry_database_and_current_schema(enso, monkeypatch):
    require_server("PostgreSQL", "127.0.0.1", 5432)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "login": "postgres",
                "schema": "test",
            }
        ),
    )
    op = EnsoBatchEventsOperator(
        task_id="report", sql="SELECT * FROM usage_hourly WHERE hour_start >= %s", sql_conn_id="warehouse"
    )
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert names(lineage.inputs) == [("postgres://127.0.0.1:5432", "test.public.usage_hourly")]
    assert names(lineage.outputs) == [(enso.url, "events/batch")]


def test_a_dry_run_has_no_output(enso, usage_db):
    op = EnsoBatchEventsOperator(task_id="report", sql=QUERY, sql_conn_id="usage_db", dry_run=True)
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert names(lineage.inputs) == [(f"sqlite://{usage_db}", "main.usage_hourly")]
    assert lineage.outputs == []


def test_the_decorator_reports_the_enso_output(enso, decorator_dagbag):
    op = decorator_dagbag.get_dag("enso_test_decorator_clean").get_task("usage")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert lineage.inputs == []
    assert names(lineage.outputs) == [(enso.url, "events/batch")]


def test_sql_that_cannot_be_parsed_still_reports_the_output(enso, usage_db):
    op = EnsoBatchEventsOperator(task_id="report", sql="SELEC nothing FRM", sql_conn_id="usage_db")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert lineage.inputs == []
    assert names(lineage.outputs) == [(enso.url, "events/batch")]


def test_a_missing_sql_connection_never_fails_the_task(enso):
    op = EnsoBatchEventsOperator(task_id="report", sql=QUERY, sql_conn_id="no_such_connection")
    lineage = op.get_openlineage_facets_on_complete(task_instance=None)
    assert lineage.inputs == []
    assert names(lineage.outputs) == [(enso.url, "events/batch")]


def test_silent_without_the_openlineage_provider(enso, usage_db, monkeypatch):
    # A None entry in sys.modules makes the import fail, as if the package were not installed.
    for module in ("airflow.providers.openlineage.extractors", "openlineage.client.event_v2"):
        monkeypatch.setitem(sys.modules, module, None)
    op = EnsoBatchEventsOperator(task_id="report", sql=QUERY, sql_conn_id="usage_db")
    assert op.get_openlineage_facets_on_complete(task_instance=None) is None


def test_the_openlineage_listener_emits_them_for_a_real_run(tmp_path):
    """End to end in a fresh process: dag.test() of the hourly SQL example, a file transport."""
    events_file = tmp_path / "openlineage.jsonl"
    home = tmp_path / "airflow"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events_file), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "enso-tests",
            "PYTHONPATH": str(REPO),
        }
    )
    probe = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("lineage_probe.py")), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    summary = json.loads([line for line in probe.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["state"].endswith("success")
    assert summary["stored"] == 3

    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    task_events = [e for e in events if e["job"]["name"] == "enso_usage_sql_hourly.report_usage"]
    complete = [e for e in task_events if e["eventType"] == "COMPLETE"]
    assert len(complete) == 1, [e["eventType"] for e in task_events]
    event = complete[0]
    assert event["job"]["namespace"] == "enso-tests"
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
        (f"sqlite://{summary['usage_db']}", "main.usage_hourly")
    ]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [(summary["url"], "events/batch")]
    assert "FROM usage_hourly" in event["job"]["facets"]["sql"]["query"]
