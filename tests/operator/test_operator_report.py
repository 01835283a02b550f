"""The report and the rejected-records file: no internal keys, a sample of every code, exact wording."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from enso_provider.models import SAMPLE_PER_CODE, SAMPLE_SIZE, DeliveryReport
from enso_provider.models import FailedRow as Failure
from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.operators.report import format_report
from tests.replay.records import context, read_records, replay, row


def _send(rows: list[dict[str, Any]], rejected: Any, **kwargs: Any) -> dict[str, Any]:
    op = EnsoBatchEventsOperator(
        task_id="send", events=rows, rejected_records_path=str(rejected), max_failures=None, **kwargs
    )
    return op.execute(context())  # type: ignore[arg-type]


def _internal_keys(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return []
    return [k for k in value if k.startswith("_")] + [k for v in value.values() for k in _internal_keys(v)]


def test_local_rejections_carry_their_metadata_columns_under_metadata(enso: Any, tmp_path: Any) -> None:
    rejected = tmp_path / "rejected.jsonl"
    rows = [
        row("cust_1", "n/a", region="eu-west-1", plan="pro"),  # rejected locally: invalid_value
        row("cust_1", 2, region="eu-west-1", plan="pro"),
    ]
    report = _send(rows, rejected, metadata_columns=["region", "plan"])
    assert (report["success"], report["invalid"]) == (1, 1)
    (record,) = read_records(rejected)
    assert record["rejectedBy"] == "local"
    assert _internal_keys(record) == []
    assert record["event"]["metadata"] == {"region": "eu-west-1", "plan": "pro"}
    assert record["event"]["value"] == "n/a"


def test_metadata_columns_go_on_top_of_a_mapped_metadata_object(enso: Any, tmp_path: Any) -> None:
    rejected = tmp_path / "rejected.jsonl"
    rows = [row("cust_1", "n/a", meta={"tier": "gold", "region": "old"}, region="eu")]
    _send(rows, rejected, field_map={"metadata": "meta"}, metadata_columns=["region"])
    (record,) = read_records(rejected)
    assert _internal_keys(record) == []
    # As in a sent event: the metadata columns win over the object's keys.
    assert record["event"]["metadata"] == {"tier": "gold", "region": "eu"}


def _failure(index: int, code: int | str) -> Failure:
    return Failure(index=index, error=f"failed with {code}", code=code, status_code=400, local=True)


def test_sample_shows_every_code_a_few_of_each() -> None:
    report = DeliveryReport()
    for n in range(100):
        report.record(_failure(n, "missing_customer_entity_id"))
    report.record(_failure(100, 2002))
    report.record(_failure(101, "invalid_value"))
    report.record(_failure(102, 2002))
    sample = report.as_dict()["sample"]
    codes = Counter(str(s["code"]) for s in sample)
    assert codes == {"missing_customer_entity_id": SAMPLE_PER_CODE, "2002": 2, "invalid_value": 1}
    assert report.errors == {"missing_customer_entity_id": 100, "2002": 2, "invalid_value": 1}
    # The first of each code, in the order they came.
    assert [s["index"] for s in sample] == [0, 1, 2, 100, 101, 102]


def test_sample_is_bounded_and_still_shows_every_code_when_codes_are_many() -> None:
    report = DeliveryReport()
    codes = [f"code_{n}" for n in range(SAMPLE_SIZE - 2)]
    for round_ in range(5):
        for n, code in enumerate(codes):
            report.record(_failure(round_ * 100 + n, code))
    late = ["late_a", "late_b"]
    for n, code in enumerate(late):
        report.record(_failure(1000 + n, code))
    sample = report.as_dict()["sample"]
    assert len(sample) <= SAMPLE_SIZE
    assert {str(s["code"]) for s in sample} == set(codes) | set(late)

    crowded = DeliveryReport()
    for n in range(SAMPLE_SIZE + 10):
        crowded.record(_failure(n, f"only_once_{n}"))
    assert len(crowded.sample) == SAMPLE_SIZE  # more codes than places: the first ones keep theirs


def test_operator_report_samples_remote_and_local_codes(enso: Any, tmp_path: Any) -> None:
    rows = [row(None, n) for n in range(30)] + [row("cust_ghost", 1), row("cust_1", "n/a")]
    report = _send(rows, tmp_path / "rejected.jsonl")
    assert set(report["errors"]) == {"missing_customer_entity_id", "2002", "invalid_value"}
    assert {str(s["code"]) for s in report["sample"]} == set(report["errors"])
    assert len(report["sample"]) == SAMPLE_PER_CODE + 2


def test_report_wording_says_rows_for_rows_and_records_for_records() -> None:
    counts = {"total": 3, "success": 3, "sent": 3, "batches": 1, "elapsed_seconds": 1.0}
    rows = format_report(counts)
    assert "rows read" in rows
    assert "rows/s" in rows
    records = format_report(counts, unit="records")
    assert "records read" in records
    assert "records/s" in records
    assert "rows" not in records


def test_replay_report_counts_records(enso: Any, tmp_path: Any, capfd: Any) -> None:
    rejected = tmp_path / "rejected.jsonl"
    _send([row("cust_1", "n/a"), row("cust_2", 2)], rejected)
    capfd.readouterr()
    report = replay(source_path=str(rejected), output_path=str(tmp_path / "out.jsonl"))
    assert report["total"] == 1
    out, err = capfd.readouterr()
    logged = out + err
    assert "records read" in logged
    assert "rows read" not in logged


def test_rejected_file_lines_are_json_objects(enso: Any, tmp_path: Any) -> None:
    rejected = tmp_path / "rejected.jsonl"
    _send([row(None, 1, region="x")], rejected, metadata_columns="*")
    (line,) = rejected.read_text().splitlines()
    assert _internal_keys(json.loads(line)) == []
