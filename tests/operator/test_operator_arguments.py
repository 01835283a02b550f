"""Operator arguments: nothing at parse time, clear errors at execute, namespaces, templates."""

from __future__ import annotations

from types import SimpleNamespace

import pendulum
import pytest

from enso_provider.operators.batch_events import EnsoBatchEventsOperator, run_namespace
from enso_provider.version_compat import AirflowFailException


def context(map_index: int = -1, start=None, end=None, run_id: str = "manual__1") -> dict:
    start = start or pendulum.datetime(2024, 5, 1, 10, tz="UTC")
    end = end or pendulum.datetime(2024, 5, 1, 11, tz="UTC")
    ti = SimpleNamespace(dag_id="d", task_id="t", map_index=map_index)
    return {"ti": ti, "run_id": run_id, "data_interval_start": start, "data_interval_end": end}


def test_init_does_no_io(monkeypatch):
    from enso_provider.version_compat import BaseHook

    def boom(*args, **kwargs):
        raise AssertionError("I/O at parse time")

    monkeypatch.setattr(BaseHook, "get_connection", boom)
    op = EnsoBatchEventsOperator(task_id="t", sql="SELECT 1", sql_conn_id="nowhere", enso_conn_id="nowhere")
    assert op.sql == "SELECT 1"


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        EnsoBatchEventsOperator("t")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one source"),
        ({"events": [], "sql": "SELECT 1", "sql_conn_id": "x"}, "got both"),
        ({"sql": "SELECT 1"}, "needs `sql_conn_id`"),
        ({"events": "not a list"}, "must be a list"),
        ({"events": {"a": 1}}, "must be a list"),
        ({"events": [], "batch_size": 0}, "batch_size"),
        ({"events": [], "batch_size": "500"}, "batch_size"),
        ({"events": [], "max_batch_bytes": 10}, "max_batch_bytes"),
        ({"events": [], "concurrency": 0}, "concurrency"),
        ({"events": [], "max_failures": -1}, "max_failures"),
        ({"events": [], "max_failure_ratio": 1.5}, "max_failure_ratio"),
        ({"events": [], "on_breach": "ignore"}, "on_breach"),
        ({"events": [], "fetch_size": 0}, "fetch_size"),
        ({"events": [], "timestamp_unit": "us"}, "Bad mapping arguments"),
        ({"events": [], "field_map": {"customer": "c"}}, "Bad mapping arguments"),
    ],
)
def test_bad_arguments_fail_at_execute_with_a_clear_message(kwargs, message):
    op = EnsoBatchEventsOperator(task_id="t", **kwargs)
    with pytest.raises(AirflowFailException, match=message):
        op.execute(context())


def test_sql_connection_must_be_a_dbapi_hook(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", '{"conn_type": "http", "host": "http://127.0.0.1:1"}')
    op = EnsoBatchEventsOperator(task_id="t", sql="SELECT 1", sql_conn_id="not_sql", dry_run=True)
    with pytest.raises(AirflowFailException, match="not a DbApiHook"):
        op.execute(context())


def test_missing_sql_connection_is_a_clear_error():
    op = EnsoBatchEventsOperator(task_id="t", sql="SELECT 1", sql_conn_id="does_not_exist", dry_run=True)
    with pytest.raises(Exception, match="does_not_exist"):
        op.execute(context())


def test_missing_enso_connection_is_a_clear_error():
    op = EnsoBatchEventsOperator(
        task_id="t",
        events=[{"CustomerEntityId": "c", "metric": "m", "value": 1, "timestamp": "2024-01-01T00:00:00Z"}],
        enso_conn_id="no_such_enso",
    )
    with pytest.raises(Exception, match="no_such_enso"):
        op.execute(context())


def test_namespace_separates_intervals_partitions_and_runs():
    base = run_namespace(context())
    assert base == run_namespace(context(run_id="manual__2"))  # a re-run of the same interval
    assert base != run_namespace(context(start=pendulum.datetime(2024, 5, 1, 11, tz="UTC")))
    eu, us = (lambda: {"parameters": {"region": "eu"}}), (lambda: {"parameters": {"region": "us"}})
    assert base != run_namespace(context(map_index=0), eu)
    assert run_namespace(context(map_index=0), eu) != run_namespace(context(map_index=1), us)
    # A partition is named by what it is, never by its map index (unless v1 is asked for).
    assert run_namespace(context(map_index=0), eu) == run_namespace(context(map_index=5), eu)
    assert run_namespace(context(map_index=0), eu, event_id_version="v1").endswith("|map:0")
    zero = pendulum.datetime(2024, 5, 1, 10, tz="UTC")
    # A zero-length interval (CronTriggerTimetable) falls back to the run id.
    assert run_namespace(context(start=zero, end=zero, run_id="a")) != run_namespace(
        context(start=zero, end=zero, run_id="b")
    )


def test_template_fields():
    assert set(EnsoBatchEventsOperator.template_fields) >= {
        "events",
        "sql",
        "parameters",
        "job_id",
        "rejected_records_path",
    }
    assert ".sql" in EnsoBatchEventsOperator.template_ext


def test_a_key_column_gives_the_same_id_in_every_interval(enso):
    rows = [
        {
            "usage_id": "u-1",
            "customer_entity_id": "cust_1",
            "metric": "m",
            "value": 1,
            "timestamp": "2024-05-01",
        },
        {
            "usage_id": "u-2",
            "customer_entity_id": "cust_2",
            "metric": "m",
            "value": 2,
            "timestamp": "2024-05-01",
        },
    ]
    op = EnsoBatchEventsOperator(task_id="t", events=rows, event_id_column="usage_id")
    op.execute(context())
    ids = sorted(e["eventId"] for e in enso.events)
    # An overlapping window (another interval) reads the same keys: same ids, nothing billed twice.
    op.execute(context(start=pendulum.datetime(2024, 5, 1, 9, tz="UTC")))
    assert sorted(e["eventId"] for e in enso.events) == ids
    assert enso.stats["duplicates"] == 2
    # Without a key column, content ids are namespaced by the interval.
    plain = EnsoBatchEventsOperator(
        task_id="t", events=[{k: v for k, v in r.items() if k != "usage_id"} for r in rows]
    )
    plain.execute(context())
    plain.execute(context(start=pendulum.datetime(2024, 5, 1, 9, tz="UTC")))
    assert len(enso.events) == 6


def test_an_unwritable_rejected_records_path_fails_before_any_row_is_read():
    op = EnsoBatchEventsOperator(
        task_id="t", events=[{"a": 1}], rejected_records_path="nosuchscheme://bucket/x.jsonl", dry_run=True
    )
    with pytest.raises(AirflowFailException, match=r"rejected_records_path 'nosuchscheme://bucket/x\.jsonl'"):
        op.execute(context())


def test_configuration_errors_are_not_retried_by_airflow():
    from enso_provider.exceptions import EnsoConfigError, EnsoError

    error = EnsoConfigError("bad")
    assert isinstance(error, AirflowFailException)
    assert isinstance(error, EnsoError)
