"""The operator end to end with dag.test(): XCom source, policy branches, dry run, rejected file."""

from __future__ import annotations

import json

import pytest

from tests.dags.enso_test_dags import BAD_ROWS, GOOD_ROWS, MIXED_ROWS
from tests.operator.dagrun import run_dag

pytestmark = pytest.mark.airflow_db

SUCCESS = "success"
FAILED = "failed"


def accounting_holds(report: dict) -> None:
    assert report["total"] == report["success"] + report["failed"] + report["invalid"]
    assert report["sent"] == report["success"] + report["failed"]


def test_clean_rows_are_all_accepted(dagbag, enso):
    result = run_dag(dagbag, "enso_test_xcom_clean")
    assert result.state.endswith(SUCCESS)
    report = result.report("send")
    accounting_holds(report)
    assert (report["total"], report["success"], report["failed"], report["invalid"]) == (50, 50, 0, 0)
    assert report["batches"] == 8  # 50 events, batch_size=7
    assert report["errors"] == {}
    assert report["rejected_records_path"] is None
    assert len(enso.events) == 50
    assert sorted(e["value"] for e in enso.events) == [r["value"] for r in GOOD_ROWS]
    assert {e["metadata"]["region"] for e in enso.events} == {"eu-west-1"}
    assert enso.stats["largest_batch"] == 7


def test_rerun_builds_the_same_event_ids_and_stores_nothing_twice(dagbag, enso):
    first = run_dag(dagbag, "enso_test_xcom_clean")
    ids = [e["eventId"] for e in enso.events]
    second = run_dag(dagbag, "enso_test_xcom_clean")
    assert first.report("send")["success"] == second.report("send")["success"] == 50
    assert [e["eventId"] for e in enso.events] == ids
    assert len(enso.events) == 50
    assert enso.stats["duplicates"] == 50


def test_another_interval_gets_other_event_ids(dagbag, enso):
    import pendulum

    run_dag(dagbag, "enso_test_xcom_clean")
    run_dag(dagbag, "enso_test_xcom_clean", logical_date=pendulum.datetime(2024, 5, 1, 12, tz="UTC"))
    assert len(enso.events) == 100
    assert enso.stats["duplicates"] == 0


def test_failures_over_max_failures_fail_the_task_after_delivering_the_rest(dagbag, enso):
    result = run_dag(dagbag, "enso_test_xcom_policy_fail")
    assert result.state.endswith(FAILED)
    assert result.task_states[("send", -1)].endswith(FAILED)
    assert result.report("send") is None
    # Everything deliverable was delivered before the policy failed the task.
    assert len(enso.events) == len(GOOD_ROWS)
    assert enso.stats["nan_timestamps"] == 0


def test_warn_policy_succeeds_and_reports_every_row(dagbag, enso, tmp_path):
    path = tmp_path / "rejected" / "run.jsonl"
    result = run_dag(dagbag, "enso_test_xcom_policy_warn", conf={"rejected_path": str(path)})
    assert result.state.endswith(SUCCESS)
    report = result.report("send")
    accounting_holds(report)
    assert (report["total"], report["success"], report["failed"], report["invalid"]) == (
        len(MIXED_ROWS),
        len(GOOD_ROWS),
        1,
        2,
    )
    assert report["errors"] == {"2002": 1, "missing_customer_entity_id": 1, "invalid_value": 1}
    assert report["rejected_records_path"] == f"file://{path}"
    assert len(report["sample"]) == 3

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 3
    by_code = {str(r["code"]): r for r in records}
    remote = by_code["2002"]
    assert remote["index"] == 10
    assert remote["statusCode"] == 404
    assert remote["event"]["CustomerEntityId"] == "cust_ghost"
    assert remote["eventId"] == remote["event"]["eventId"]
    missing = by_code["missing_customer_entity_id"]
    assert (missing["index"], missing["statusCode"]) == (11, 400)
    assert missing["row"] == BAD_ROWS[1] | {}
    not_a_number = by_code["invalid_value"]
    assert not_a_number["index"] == 12
    assert "n/a" in not_a_number["error"]


def test_ratio_policy_within_bounds_succeeds(dagbag, enso):
    result = run_dag(dagbag, "enso_test_xcom_policy_ratio")
    assert result.state.endswith(SUCCESS)
    accounting_holds(result.report("send"))


def test_ratio_policy_breach_fails(dagbag, enso):
    result = run_dag(dagbag, "enso_test_xcom_policy_ratio_breach")
    assert result.state.endswith(FAILED)


def test_dry_run_posts_nothing(dagbag, enso):
    result = run_dag(dagbag, "enso_test_xcom_dry_run")
    assert result.state.endswith(SUCCESS)
    report = result.report("send")
    accounting_holds(report)
    assert report["dry_run"] is True
    assert report["invalid"] == 2
    assert report["sent"] == len(GOOD_ROWS) + 1
    assert enso.stats["requests"] == 0


def test_no_rows_is_a_success(dagbag, enso):
    result = run_dag(dagbag, "enso_test_xcom_empty")
    assert result.state.endswith(SUCCESS)
    report = result.report("send")
    assert report["total"] == report["sent"] == 0
    assert enso.stats["requests"] == 0
