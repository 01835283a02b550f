"""
What a stopped task leaves behind, and what the next run does with it: the events of the batches
that landed (each once), a rejected-records file with every failure seen up to the stop, and the
counts so far, on the error and in the task log; then a re-run re-sends everything and rewrites
the file.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from enso_provider.exceptions import EnsoError, EnsoServerError
from tests.reliability.reliability_kit import (
    ReliabilityEmulator,
    assert_stored_once,
    assert_subset_stored_once,
    expected_events,
    run_operator,
    task_context,
    usage_rows,
)
from tests.reliability.secret_watch import SecretWatch

CONTEXT = task_context(dag_id="reliability_leftovers")
ROWS = usage_rows(2_000)
EXPECTED_IDS = [e.event_id for e in expected_events(ROWS.rows, CONTEXT)]


def lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def test_a_stopped_run_leaves_what_landed_and_its_failures_and_a_rerun_completes_both(
    enso: ReliabilityEmulator, tmp_path: Path, secret_watch: SecretWatch
) -> None:
    rejected = tmp_path / "rejected.jsonl"
    settings = {
        "events": ROWS.rows,
        "batch_size": 100,
        "concurrency": 2,
        "max_failures": None,
        "rejected_records_path": str(rejected),
    }
    enso.fail_next(100, status=503, after=8)
    first = run_operator(CONTEXT, **settings)
    secret_watch.add(first.error)
    assert first.state == "retry"
    assert isinstance(first.error, EnsoServerError)
    report = first.report
    assert report is not None
    # The error carries the counts up to the stop: the same the delivery kept, what Enso has.
    assert isinstance(first.error, EnsoError)
    assert first.error.report is report
    assert report.success == enso.stats.events_accepted == enso.stats.events_stored
    assert report.failed == enso.stats.events_failed
    assert_subset_stored_once(enso, ROWS, EXPECTED_IDS)
    assert 0 < len(enso.events) < ROWS.accepted
    # Every failure seen before the stop is in the file, once: local ones and Enso's refusals.
    records = lines(rejected)
    assert len(records) == report.failed + report.invalid
    assert len({r["index"] for r in records}) == len(records)
    assert sum(r["rejectedBy"] == "enso" for r in records) == report.failed

    enso.clear_faults()
    second = run_operator(CONTEXT, **settings)
    assert second.state == "success"
    assert_stored_once(enso, ROWS, EXPECTED_IDS)
    assert second.returned is not None
    assert second.returned["rejected_records_path"] == f"file://{rejected}"
    # The re-run's file replaces the stopped run's: every failure of the whole input, once.
    records = lines(rejected)
    assert len(records) == ROWS.failures
    assert sorted(r["index"] for r in records) == sorted({r["index"] for r in records})


def test_a_rerun_without_failures_removes_the_earlier_file(enso: ReliabilityEmulator, tmp_path: Path) -> None:
    # A try that fails a record and a later try that fails none: the later report says there is no
    # file, and the earlier try's file is gone, so a replay can never send its records again.
    rejected = tmp_path / "rejected.jsonl"
    rows = usage_rows(300, invalid_every=10_000)  # no invalid row, no unknown customer
    ids = [e.event_id for e in expected_events(rows.rows, CONTEXT)]
    enso.fail_records(ids[:1], status_code=503, times=4)
    first = run_operator(CONTEXT, events=rows.rows, rejected_records_path=str(rejected))
    assert first.state == "retry"  # undelivered after every re-send round: the task's retry sends it
    assert [(r["code"], r["statusCode"]) for r in lines(rejected)] == [("transient_failure", 503)]
    second = run_operator(CONTEXT, events=rows.rows, rejected_records_path=str(rejected))
    assert second.state == "success"
    assert second.returned is not None
    assert second.returned["rejected_records_path"] is None
    assert not rejected.exists()
    assert not rejected.with_name(rejected.name + ".partial").exists()
    assert_stored_once(enso, rows, ids)
