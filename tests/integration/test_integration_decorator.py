"""``@task.enso_events`` end to end: registered through provider info, run with dag.test() on the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags.enso_test_decorator_dags import BAD_ROWS, GOOD_ROWS
from tests.operator.dagrun import run_dag

pytestmark = pytest.mark.airflow_db


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    assert report["total"] == report["success"] + report["failed"] + report["invalid"]
    assert report["sent"] == report["success"] + report["failed"]
    return report["total"], report["success"], report["failed"], report["invalid"]


def test_the_decorator_is_registered_through_provider_info():
    from airflow.sdk import task

    from enso_provider.decorators.enso_events import enso_events_task
    from enso_provider.get_provider_info import get_provider_info

    assert {"name": "enso_events", "class-name": "enso_provider.decorators.enso_events.enso_events_task"} in (
        get_provider_info()["task-decorators"]
    )
    assert task.enso_events is enso_events_task


def test_decorated_task_is_a_batch_operator_whose_rows_are_not_templated(decorator_dagbag):
    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    op = decorator_dagbag.get_dag("enso_test_decorator_clean").get_task("usage")
    assert isinstance(op, EnsoBatchEventsOperator)
    assert op.custom_operator_name == "@task.enso_events"
    assert (op.enso_conn_id, op.batch_size, op.job_id) == ("enso_default", 6, "decorated-{{ ds_nodash }}")
    assert {"op_args", "op_kwargs", "field_map", "defaults", "job_id"} <= set(op.template_fields)
    assert not {"events", "sql", "parameters"} & set(op.template_fields)


@pytest.mark.parametrize("source", ["sql", "events", "sql_conn_id"])
def test_a_source_argument_is_refused_when_the_dag_is_parsed(source):
    from airflow.sdk import DAG, task

    @task.enso_events(**{source: "x"})
    def usage() -> list[dict[str, Any]]:
        return []

    with DAG("enso_test_decorator_bad_args", schedule=None), pytest.raises(TypeError, match=source):
        usage()


def test_returned_rows_are_sent_and_the_report_is_returned(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_clean")
    assert result.succeeded(), result.task_states
    report = result.report("usage")
    assert counts(report) == (20, 20, 0, 0)
    assert report["batches"] == 4  # 20 events, batch_size=6
    assert enso.stats["largest_batch"] == 6
    events = sorted(enso.events, key=lambda e: e["value"])
    assert [e["value"] for e in events] == [row["calls"] for row in GOOD_ROWS]
    first = events[0]
    assert first["CustomerEntityId"] == GOOD_ROWS[0]["customer"]
    assert first["metric"] == "api_calls"
    assert first["timestamp"] == GOOD_ROWS[0]["at"]
    assert first["metadata"] == {"region": "eu"}
    assert first["JobId"] == "decorated-20240501"  # job_id is templated
    assert len({e["eventId"] for e in events}) == 20


def test_a_rerun_sends_the_same_event_ids_and_nothing_is_counted_twice(decorator_dagbag, enso):
    run_dag(decorator_dagbag, "enso_test_decorator_clean")
    ids = sorted(enso.event_ids)
    second = run_dag(decorator_dagbag, "enso_test_decorator_clean")
    assert second.report("usage")["success"] == 20
    assert sorted(enso.event_ids) == ids
    assert len(enso.events) == 20
    assert enso.stats["duplicates"] == 20


def test_upstream_output_and_context_reach_the_function(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_upstream")
    assert result.succeeded(), result.task_states
    assert counts(result.report("enrich")) == (5, 5, 0, 0)
    # The run's data interval starts at 10:00 (logical date 11:00, an hourly interval timetable).
    assert {e["timestamp"] for e in enso.events} == {"2024-05-01T10:00:00Z"}
    assert {e["metadata"]["region"] for e in enso.events} == {"us"}


def test_a_generator_is_streamed_in_batches(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_generator")
    assert result.succeeded(), result.task_states
    report = result.report("stream")
    assert counts(report) == (20, 20, 0, 0)
    assert report["batches"] == 5
    assert len(enso.events) == 20


def test_failures_over_the_policy_fail_the_task_after_delivering_the_rest(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_policy_fail")
    assert not result.succeeded()
    assert result.task_states[("mixed", -1)].endswith("failed")
    # Everything deliverable was delivered before the policy failed the task.
    assert len(enso.events) == len(GOOD_ROWS)
    assert enso.stats["events_failed"] == 1  # the unknown customer, refused by Enso (2002)


def test_on_breach_warn_succeeds_with_the_same_report(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_policy_warn")
    assert result.succeeded(), result.task_states
    report = result.report("mixed_warn")
    assert counts(report) == (len(GOOD_ROWS) + len(BAD_ROWS), 20, 1, 1)
    assert len(enso.events) == 20


def test_dry_run_posts_nothing(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_dry_run")
    assert result.succeeded(), result.task_states
    report = result.report("dry")
    assert report["total"] == 22
    assert report["invalid"] == 1
    assert enso.stats["batch_requests"] == 0


def test_a_function_that_returns_nothing_fails_clearly(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_returns_none")
    assert not result.succeeded()
    assert result.task_states[("forgot_to_return", -1)].endswith("failed")
    assert enso.stats["batch_requests"] == 0


def test_mapped_partitions_send_each_their_rows_once(decorator_dagbag, enso):
    result = run_dag(decorator_dagbag, "enso_test_decorator_mapped")
    assert result.succeeded(), result.task_states
    reports = [result.report("partition", i) for i in range(3)]
    assert [r["success"] for r in reports] == [7, 7, 6]
    assert len(enso.events) == 20
    assert enso.stats["duplicates"] == 0


def test_the_error_for_a_missing_return_names_the_fix(decorator_dagbag):
    op = decorator_dagbag.get_dag("enso_test_decorator_returns_none").get_task("forgot_to_return")
    with pytest.raises(TypeError, match=r"must return the rows to send: a list of mappings .* got None"):
        op.execute({})
