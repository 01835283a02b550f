"""
Misconfiguration fails at execute with an error that says what is wrong and where, before a single
row is read or a single request reaches Enso. (The basic cases, such as both or neither source and
a zero batch size, are in tests/operator/test_operator_arguments.py; these are the rest.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from enso_provider.exceptions import EnsoConfigError
from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.version_compat import AirflowFailException, AirflowNotFoundException
from tests.reliability.reliability_kit import ReliabilityEmulator, run_operator, task_context, usage_rows

CONTEXT = task_context(dag_id="reliability_config")
ROWS = usage_rows(20)


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The rows, and a flag raised when the operator starts reading its source."""
    original = EnsoBatchEventsOperator._items
    READ.clear()

    def watched(self: EnsoBatchEventsOperator, mapper: Any) -> Iterator[Any]:
        READ.append(True)  # runs on the first row pulled, not when the generator is made
        yield from original(self, mapper)

    monkeypatch.setattr(EnsoBatchEventsOperator, "_items", watched)
    return ROWS.rows


READ: list[bool] = []


def fails_before_anything(
    enso: ReliabilityEmulator, rows: list[dict[str, Any]], *, from_sql: bool = False, **kwargs: Any
) -> BaseException:
    """Run with ``kwargs``; return the error after checking nothing was read (``events``) or sent."""
    kwargs.setdefault("events", rows)
    outcome = run_operator(CONTEXT, **kwargs)
    assert outcome.state != "success", "a misconfiguration must not succeed"
    assert outcome.error is not None
    assert enso.stats.requests == 0, "a request reached Enso"
    if not from_sql:
        assert not READ, "rows were read before the configuration was checked"
    return outcome.error


# -- operator arguments: AirflowFailException (a retry cannot help), naming the argument and value --


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"batch_size": True}, "batch_size must be an integer of at least 1, got True"),
        ({"batch_size": -5}, "batch_size must be an integer of at least 1, got -5"),
        ({"batch_size": 2.5}, "batch_size must be an integer of at least 1, got 2.5"),
        ({"batch_size": None}, "batch_size must be an integer of at least 1, got None"),
        ({"max_batch_bytes": 1023}, "max_batch_bytes must be an integer of at least 1024, got 1023"),
        ({"concurrency": True}, "concurrency must be an integer of at least 1, got True"),
        ({"concurrency": 0.5}, "concurrency must be an integer of at least 1, got 0.5"),
        ({"max_failures": True}, "max_failures must be None or an integer of 0 or more, got True"),
        ({"max_failures": 1.5}, "max_failures must be None or an integer of 0 or more, got 1.5"),
        ({"max_failures": "3"}, "max_failures must be None or an integer of 0 or more, got '3'"),
        ({"max_failure_ratio": -0.1}, "max_failure_ratio must be None or a number from 0 to 1, got -0.1"),
        ({"max_failure_ratio": "0.1"}, "max_failure_ratio must be None or a number from 0 to 1, got '0.1'"),
        ({"max_failure_ratio": True}, "max_failure_ratio must be None or a number from 0 to 1, got True"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not a known IANA zone name"),
        ({"timezone": ""}, "timezone must be an IANA zone name"),
        ({"metadata_columns": "region"}, 'metadata_columns must be a list of column names or "*"'),
        ({"event_id_column": ""}, "event_id_column must be a non-empty string"),
        ({"row_mapper": "not callable"}, "row_mapper must be callable"),
        # Blank SQL is no source at all.
        ({"events": None, "sql": "   "}, "got neither"),
    ],
)
def test_bad_arguments_fail_the_task_at_once_naming_argument_and_value(
    enso: ReliabilityEmulator, rows: list[dict[str, Any]], kwargs: dict[str, Any], says: str
) -> None:
    error = fails_before_anything(enso, rows, **kwargs)
    assert isinstance(error, AirflowFailException), repr(error)
    assert says in str(error)


# -- connections ---------------------------------------------------------------------------------


def test_a_missing_enso_connection_is_named(enso: ReliabilityEmulator, rows: list[dict[str, Any]]) -> None:
    error = fails_before_anything(enso, rows, enso_conn_id="enso_nowhere")
    assert isinstance(error, AirflowNotFoundException)
    assert "enso_nowhere" in str(error)
    assert "isn't defined" in str(error)


def test_an_enso_connection_without_credentials_says_where_they_go(
    enso: ReliabilityEmulator, rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_BLANK", json.dumps({"conn_type": "enso", "host": enso.url}))
    error = fails_before_anything(enso, rows, enso_conn_id="enso_blank")
    assert isinstance(error, EnsoConfigError)
    assert "Connection 'enso_blank' has no Password: set the API token there" in str(error)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"max_retries": "many"}, "extra field 'max_retries' must be a int, got 'many'"),
        ({"timeout": "soon"}, "extra field 'timeout' must be a float, got 'soon'"),
        ({"max_retries": -1}, "max_retries must be 0 or more, got -1"),
        ({"backoff_factor": -0.5}, "backoff_factor must be 0 or more, got -0.5"),
        ({"retry_after_max": -1}, "retry_after_max must be 0 or more, got -1.0"),
        ({"timeout": 0}, "extra field 'timeout' must be more than 0 seconds, got 0.0"),
        ({"connect_timeout": -1}, "extra field 'connect_timeout' must be more than 0 seconds, got -1.0"),
    ],
)
def test_bad_connection_extras_name_the_connection_and_the_field(
    enso: ReliabilityEmulator,
    rows: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, Any],
    says: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_ODD", enso.connection_json(**extra))
    error = fails_before_anything(enso, rows, enso_conn_id="enso_odd")
    assert isinstance(error, EnsoConfigError), repr(error)
    assert str(error).startswith("Connection 'enso_odd'")
    assert says in str(error)


def test_a_sql_connection_that_is_not_a_database_is_named(
    enso: ReliabilityEmulator, rows: list[dict[str, Any]]
) -> None:
    # The Enso connection itself given as the SQL source: a common slip.
    error = fails_before_anything(
        enso, rows, from_sql=True, events=None, sql="SELECT 1", sql_conn_id="enso_default"
    )
    assert isinstance(error, AirflowFailException)
    assert "Connection 'enso_default' gives a EnsoHook, which is not a DbApiHook" in str(error)
