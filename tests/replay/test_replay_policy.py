"""The replay's fail/warn policy, dry run and arguments."""

from __future__ import annotations

import pytest

from enso_provider.operators.replay import EnsoReplayRejectedOperator
from enso_provider.version_compat import AirflowFailException
from tests.replay.records import (
    accounting_holds,
    enso_record,
    local_record,
    read_lines,
    replay,
    write_records,
)


@pytest.fixture
def source(tmp_path):
    """Ten records: eight late customers (two of them never added), one local, one of code 27."""
    records = [enso_record(f"e-{n}", "cust_late" if n < 6 else "cust_never") for n in range(8)]
    records += [local_record(), enso_record("e-27", code="27", status=400)]
    return write_records(tmp_path / "in.jsonl", records)


def run(source, tmp_path, **kwargs):
    return replay(source_path=str(source), output_path=str(tmp_path / "out.jsonl"), **kwargs)


def test_by_default_any_record_left_fails_the_task_after_everything_is_delivered(enso, source, tmp_path):
    enso.add_customers("cust_late")
    with pytest.raises(AirflowFailException) as failure:
        run(source, tmp_path, max_failures=0)
    message = str(failure.value)
    assert "4 failed rows exceed max_failures=0" in message
    assert "total=10 success=6 failed=2 invalid=2" in message
    assert "2002: 2" in message
    assert len(enso.events) == 6
    # The output is complete even so: the next replay loses nothing.
    assert len(read_lines(tmp_path / "out.jsonl")) == 4


def test_on_breach_warn_succeeds_with_the_report(enso, source, tmp_path, capsys):
    enso.add_customers("cust_late")
    report = run(source, tmp_path, max_failures=0, on_breach="warn")
    accounting_holds(report)
    assert (report["success"], report["failed"], report["invalid"]) == (6, 2, 2)
    assert report["errors"] == {"2002": 2, "missing_customer_entity_id": 1, "27": 1}
    assert "on_breach='warn': the task succeeds" in capsys.readouterr().out


def test_a_ratio_within_the_policy_succeeds_and_one_beyond_fails(enso, source, tmp_path):
    enso.add_customers("cust_late")
    assert run(source, tmp_path, max_failure_ratio=0.4)["success"] == 6
    with pytest.raises(AirflowFailException, match=r"failure ratio 0\.4000 exceeds max_failure_ratio=0\.3"):
        run(source, tmp_path, max_failure_ratio=0.3)


def test_a_clean_replay_passes_the_default_policy(enso, tmp_path):
    clean = write_records(tmp_path / "in.jsonl", [enso_record("e-1"), enso_record("e-2")])
    report = run(clean, tmp_path, max_failures=0)
    assert (report["total"], report["success"]) == (2, 2)


def test_a_dry_run_posts_nothing_and_writes_no_output(enso, source, tmp_path):
    report = run(source, tmp_path, dry_run=True)
    accounting_holds(report)
    assert report["dry_run"] is True
    assert (report["total"], report["sent"], report["invalid"]) == (10, 8, 2)
    assert enso.stats.requests == 0
    assert report["rejected_records_path"] is None
    assert not (tmp_path / "out.jsonl").exists()


def test_init_does_no_io(monkeypatch):
    from enso_provider.version_compat import BaseHook

    def boom(*args, **kwargs):
        raise AssertionError("I/O at parse time")

    monkeypatch.setattr(BaseHook, "get_connection", boom)
    op = EnsoReplayRejectedOperator(
        task_id="t", source_path="s3://nowhere/*.jsonl", output_path="/nowhere", dry_run=True
    )
    assert op.is_dry_run is True
    assert op.replay_codes == (2002,)
    assert op.allow_missing is True
    assert set(op.template_fields) == {"source_path", "output_path"}


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        EnsoReplayRejectedOperator("t")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source_path": ""}, "source_path is empty"),
        ({"source_path": []}, "source_path is empty"),
        ({"source_path": 3}, "source_path must be"),
        ({"source_path": ["a", None]}, "source_path must be"),
        ({"output_path": ""}, "output_path is empty"),
        ({"output_path": None}, "output_path is empty"),
        ({"replay_codes": [2002, None]}, "replay_codes"),
        ({"replay_codes": True}, "replay_codes"),
        ({"replay_codes": {"2002": 1}}, "replay_codes"),
        ({"allow_missing": "no"}, "allow_missing"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_batch_bytes": 10}, "max_batch_bytes"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_failures": -1}, "max_failures"),
        ({"max_failure_ratio": 2}, "max_failure_ratio"),
        ({"on_breach": "ignore"}, "on_breach"),
    ],
)
def test_bad_arguments_fail_at_execute_with_a_clear_message(kwargs, message, tmp_path):
    arguments = {"source_path": str(tmp_path / "in.jsonl"), "output_path": str(tmp_path / "out.jsonl")}
    op = EnsoReplayRejectedOperator(task_id="t", **{**arguments, **kwargs})
    with pytest.raises(AirflowFailException, match=message):
        op.execute({})  # type: ignore[arg-type]


def test_a_single_code_may_be_given_alone(enso, tmp_path):
    source = write_records(tmp_path / "in.jsonl", [enso_record("e-27", code="27", status=400)])
    report = run(source, tmp_path, replay_codes=27)
    assert (report["sent"], report["success"]) == (1, 1)
