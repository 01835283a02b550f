"""Rows given literally or through XCom are data: never rendered, NaN rejected per row, summarised."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from enso_provider.operators.rows import EventRows, as_rows
from tests.dags.enso_test_rows_dags import NON_FINITE_ROWS, SECRET_TEMPLATE, TEMPLATE_ROWS
from tests.operator.conftest import TOKEN
from tests.operator.dagrun import DEFAULT_LOGICAL_DATE, run_dag

pytestmark = pytest.mark.airflow_db

SUMMARY = "<events: 3 rows; first row's keys: customer_entity_id, metric, value, timestamp, note>"


def rendered_fields(dag_id: str, run_id: str, task_id: str = "send") -> dict[str, Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_id,
                RenderedTaskInstanceFields.run_id == run_id,
                RenderedTaskInstanceFields.task_id == task_id,
            )
        ).one()
        return dict(row.rendered_fields)


def _notes_sent(enso: Any) -> list[str]:
    return sorted(e["metadata"]["note"] for e in enso.events)


@pytest.mark.parametrize("dag_id", ["enso_test_rows_literal_templates", "enso_test_rows_xcom_templates"])
def test_strings_in_rows_are_sent_as_written(dagbag: Any, enso: Any, dag_id: str) -> None:
    result = run_dag(dagbag, dag_id)
    assert result.succeeded(), result.task_states
    assert result.report("send")["success"] == len(TEMPLATE_ROWS)
    assert _notes_sent(enso) == sorted(r["note"] for r in TEMPLATE_ROWS)
    assert TOKEN not in orjson.dumps(enso.events).decode()
    # Airflow's rendered view holds a summary of the rows, not the rows.
    assert rendered_fields(dag_id, result.run_id)["events"] == SUMMARY


def test_rows_returned_by_the_decorated_function_are_sent_as_written(dagbag: Any, enso: Any) -> None:
    result = run_dag(dagbag, "enso_test_rows_decorator_templates")
    assert result.succeeded(), result.task_states
    assert _notes_sent(enso) == sorted(r["note"] for r in TEMPLATE_ROWS)
    assert TOKEN not in orjson.dumps(enso.events).decode()


def test_non_finite_literal_values_are_rejected_row_by_row(dagbag: Any, enso: Any) -> None:
    result = run_dag(dagbag, "enso_test_rows_literal_non_finite")
    assert result.succeeded(), result.task_states
    report = result.report("send")
    assert report["total"] == len(NON_FINITE_ROWS)
    assert report["errors"].get("invalid_value") == 2
    assert report["total"] == report["success"] + report["failed"] + report["invalid"]
    values = sorted(e["value"] for e in enso.events)
    assert all(math.isfinite(v) for v in values)
    assert 5 in values
    summary = rendered_fields("enso_test_rows_literal_non_finite", result.run_id)["events"]
    assert summary.startswith("<events: 4 rows;")


def test_airflow_tasks_render_shows_the_summary_and_renders_nothing(dagbag: Any, enso: Any) -> None:
    # The command line, in this session's Airflow home, as a user would run it.
    command = [
        sys.executable,
        "-m",
        "airflow",
        "tasks",
        "render",
        "enso_test_rows_literal_templates",
        "send",
        DEFAULT_LOGICAL_DATE.isoformat(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    assert SUMMARY in done.stdout
    assert TOKEN not in done.stdout + done.stderr
    assert SECRET_TEMPLATE not in done.stdout  # neither rendered nor shown: the rows are not in the view


def test_event_rows_is_left_alone_by_the_templater_and_an_xcomarg_is_kept() -> None:
    from airflow.sdk import DAG, task

    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    with DAG(dag_id="rows_unit", schedule=None):

        @task
        def produce() -> list[dict[str, Any]]:
            return []

        upstream = produce()
        literal = EnsoBatchEventsOperator(task_id="literal", events=TEMPLATE_ROWS)
        fed = EnsoBatchEventsOperator(task_id="fed", events=upstream)
    assert isinstance(literal.events, EventRows)
    assert literal.events.rows is TEMPLATE_ROWS
    # An XComArg stays one (Airflow resolves it and sets the dependency); its rows are wrapped after.
    assert fed.events is upstream
    assert "produce" in fed.upstream_task_ids
    rendered = literal.render_template(literal.events, {"ds": "2024-05-01"})
    assert rendered is literal.events
    assert str(as_rows(iter(TEMPLATE_ROWS))).startswith("<events: streamed rows")
    assert str(as_rows([])) == "<events: 0 rows>"


def test_a_string_for_events_is_refused_not_rendered(tmp_path: Path) -> None:
    from airflow.exceptions import AirflowException

    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    op = EnsoBatchEventsOperator(task_id="s", events="{{ ti.xcom_pull('x') }}")
    assert isinstance(op.events, EventRows)
    with pytest.raises(AirflowException, match="never rendered as a template"):
        op._check_arguments()
