"""
Faults through real DAG runs (``dag.test()``): the task states Airflow records (success, up_for_retry,
failed), Airflow's own retry re-sending with the same eventIds, and a cleared task after a failure.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from enso_provider.events import Event, EventMapper
from enso_provider.operators.batch_events import run_namespace
from tests.dags.enso_test_reliability_dags import BATCH_SIZE, ROWS
from tests.operator.dagrun import DEFAULT_LOGICAL_DATE, RunResult, run_dag
from tests.reliability.reliability_kit import (
    CUSTOMERS,
    FAST_RETRIES,
    ReliabilityEmulator,
    content_of_event,
    content_of_row,
    use_connection,
)
from tests.reliability.secret_watch import SecretWatch

pytestmark = pytest.mark.airflow_db

SEND = ("send", -1)
KNOWN = set(CUSTOMERS)
EXPECTED = Counter(content_of_row(r) for r in ROWS if r["customer_entity_id"] in KNOWN)
REFUSED = sum(1 for r in ROWS if (r["customer_entity_id"] or "").startswith("ghost_"))
INVALID = sum(1 for r in ROWS if r["customer_entity_id"] is None)


def dag_events(dagbag: Any, dag_id: str) -> list[Event]:
    """The events a run of ``dag_id`` at the default logical date sends, in order (independently built)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = dagbag.get_dag(dag_id)
    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(
        run_after=DEFAULT_LOGICAL_DATE
    )
    start = pendulum.instance(interval.start)
    context = {
        "ti": SimpleNamespace(dag_id=dag_id, task_id="send", map_index=-1),
        "run_id": "unused",
        "data_interval_start": start,
        "data_interval_end": pendulum.instance(interval.end),
    }
    mapper = EventMapper(
        namespace=run_namespace(context),  # type: ignore[arg-type]
        metadata_columns=["region"],
        job_id=f"usage-{start.format('YYYYMMDDTHHmmss')}",
    )
    return [item for item in mapper.map(ROWS) if isinstance(item, Event)]


def known_ids(events: list[Event]) -> set[str]:
    import orjson

    return {e.event_id for e in events if orjson.loads(e.data)["CustomerEntityId"] in KNOWN}


@pytest.fixture
def callbacks(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The send task's callbacks that ran (``up_for_retry 1``, ``failed 2``, ``success 1``...), in order."""
    path = tmp_path / "callbacks.txt"
    monkeypatch.setenv("ENSO_RELIABILITY_CALLBACKS", str(path))

    def read() -> list[str]:
        lines = path.read_text().splitlines() if path.exists() else []
        return [line.removeprefix("send ") for line in lines if line.startswith("send ")]

    return read


def tries(result: RunResult, dag_id: str) -> list[tuple[int, str]]:
    """
    Every try of the ``send`` task in this run, as (try_number, state), history first.

    The history archives a try that went up_for_retry as "failed"; the callbacks tell them apart.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        out = []
        for model in (TaskInstanceHistory, TaskInstance):
            query = select(model.try_number, model.state).where(
                model.dag_id == dag_id, model.run_id == result.run_id, model.task_id == "send"
            )
            out += [(n, str(state)) for n, state in session.execute(query)]
    return sorted(out)


def rendered_and_xcom(result: RunResult, dag_id: str) -> list[Any]:
    """What a user sees of a run in the UI besides logs: rendered template fields and XCom values."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(RenderedTaskInstanceFields.rendered_fields).where(
            RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == result.run_id
        )
        rendered = list(session.scalars(query))
    return [rendered, result.xcoms]


def assert_all_stored_once(enso: ReliabilityEmulator, expected_ids: set[str]) -> None:
    assert Counter(content_of_event(e) for e in enso.events) == EXPECTED
    assert enso.event_ids == expected_ids
    assert enso.stats.nan_timestamps == 0


def assert_complete_report(report: dict[str, Any]) -> None:
    assert (report["total"], report["success"], report["failed"], report["invalid"]) == (
        len(ROWS),
        sum(EXPECTED.values()),
        REFUSED,
        INVALID,
    )
    assert report["sent"] == report["success"] + report["failed"]


def test_faults_within_the_retries_succeed_in_one_try_and_a_rerun_stores_nothing_twice(
    reliability_dagbag: Any,
    enso: ReliabilityEmulator,
    monkeypatch: pytest.MonkeyPatch,
    secret_watch: SecretWatch,
    callbacks: Any,
) -> None:
    dag_id = "enso_test_reliability_concurrent"
    # The faults are cued by arrival order, and four batches are in flight: all six may meet the
    # same batch (seen: reset, reset, then the malformed answer on one batch). Enough retries for
    # that, so "within the retries" holds whatever the interleaving.
    use_connection(monkeypatch, enso, auth="client_credentials", max_retries=6)
    enso.expire_tokens_at(2)
    enso.reset_next(2, after=4)
    enso.inject("status", 2, 6, status=502, html=True)
    enso.malformed_next(1, after=8)
    result = run_dag(reliability_dagbag, dag_id)
    secret_watch.add(*rendered_and_xcom(result, dag_id))
    assert result.task_states[SEND] == "success"
    assert tries(result, dag_id) == [(1, "success")]
    assert callbacks() == ["success 1"]
    expected_ids = known_ids(dag_events(reliability_dagbag, dag_id))
    assert_all_stored_once(enso, expected_ids)
    assert enso.stats.duplicates == 0
    assert enso.stats.logins == 2  # the first token, and one refresh after it expired mid-run
    report = result.report("send")
    assert_complete_report(report)
    assert report["success"] == enso.stats.events_accepted

    order = [e["eventId"] for e in enso.events]
    again = run_dag(reliability_dagbag, dag_id)
    assert again.task_states[SEND] == "success"
    assert [e["eventId"] for e in enso.events] == order
    assert enso.stats.duplicates == len(order)


def test_a_fault_outlasting_the_request_retries_is_retried_by_airflow(
    reliability_dagbag: Any, enso: ReliabilityEmulator, secret_watch: SecretWatch, callbacks: Any
) -> None:
    dag_id = "enso_test_reliability_retry"
    # The fifth request fails on every attempt the hook makes: the first try stops after 4 batches.
    enso.fail_next(FAST_RETRIES["max_retries"] + 1, status=503, after=4)
    result = run_dag(reliability_dagbag, dag_id)
    secret_watch.add(*rendered_and_xcom(result, dag_id))
    assert tries(result, dag_id) == [(1, "failed"), (2, "success")]
    assert callbacks() == ["up_for_retry 1", "success 2"]
    assert result.task_states[SEND] == "success"
    events = dag_events(reliability_dagbag, dag_id)
    expected_ids = known_ids(events)
    assert_all_stored_once(enso, expected_ids)
    # Exactly the known customers' events of the first four batches were sent twice, stored once.
    first_try = known_ids(events[: 4 * BATCH_SIZE])
    assert enso.stats.duplicates == len(first_try)
    assert_complete_report(result.report("send"))


def test_an_outage_through_every_try_fails_the_task_and_a_clear_completes_it(
    reliability_dagbag: Any, enso: ReliabilityEmulator, secret_watch: SecretWatch, callbacks: Any
) -> None:
    dag_id = "enso_test_reliability_retry"
    enso.fail_next(100, status=500, after=2)
    failed = run_dag(reliability_dagbag, dag_id)
    secret_watch.add(*rendered_and_xcom(failed, dag_id))
    assert tries(failed, dag_id) == [(1, "failed"), (2, "failed")]
    assert callbacks() == ["up_for_retry 1", "failed 2"]
    assert failed.state == "failed"
    events = dag_events(reliability_dagbag, dag_id)
    # What the first try delivered before the outage is there, once; the second try added nothing.
    landed = known_ids(events[: 2 * BATCH_SIZE])
    assert enso.event_ids == landed
    assert enso.stats.duplicates == 0  # the second try met the outage on its very first batch

    enso.clear_faults()  # the outage is over; the task is cleared
    before = enso.stats.duplicates
    cleared = run_dag(reliability_dagbag, dag_id)
    assert cleared.task_states[SEND] == "success"
    assert callbacks()[-1].startswith("success")
    assert_all_stored_once(enso, known_ids(events))
    assert enso.stats.duplicates - before == len(landed)


def test_records_that_stay_transient_end_the_try_with_a_retry_that_delivers_them(
    reliability_dagbag: Any, enso: ReliabilityEmulator, secret_watch: SecretWatch, callbacks: Any
) -> None:
    dag_id = "enso_test_reliability_retry"
    events = dag_events(reliability_dagbag, dag_id)
    stubborn = sorted(known_ids(events[BATCH_SIZE : 2 * BATCH_SIZE]))[:2]
    enso.fail_records(stubborn, status_code=503, times=4)  # the batch and its 3 re-send rounds
    result = run_dag(reliability_dagbag, dag_id)
    secret_watch.add(*rendered_and_xcom(result, dag_id))
    # Undelivered is not refused: the try ends with a retryable error (never AirflowFailException),
    # and Airflow's retry sends the two records again under the same eventIds.
    assert tries(result, dag_id) == [(1, "failed"), (2, "success")]
    assert callbacks() == ["up_for_retry 1", "success 2"]
    assert_all_stored_once(enso, known_ids(events))
    assert enso.stats.duplicates == len(known_ids(events)) - len(stubborn)
