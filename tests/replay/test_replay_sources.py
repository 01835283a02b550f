"""Replay sources: globs, lists, path order, missing files, corrupt lines, the output's own rules."""

from __future__ import annotations

import pytest

from enso_provider.exceptions import EnsoError
from enso_provider.version_compat import AirflowFailException
from tests.replay.records import (
    accounting_holds,
    enso_record,
    local_record,
    read_lines,
    read_records,
    replay,
    write_records,
)


@pytest.fixture
def days(tmp_path):
    """Three daily files of one late record each (plus a local one on day 2), and a stray file."""
    base = tmp_path / "rejected"
    for day in (3, 1, 2):
        records = [enso_record(f"e-day{day}", "cust_late")]
        if day == 2:
            records.append(local_record())
        write_records(base / f"2024-05-0{day}.jsonl", records)
    write_records(base / "notes.txt", ["not a record"])
    (base / "2024-05-09.jsonl").mkdir()  # a directory matching the glob is not a file
    return base


def test_a_glob_reads_every_matching_file_in_path_order(enso, tmp_path, days):
    enso.add_customers("cust_late")
    output = tmp_path / "out.jsonl"
    report = replay(source_path=f"{days}/2024-05-*.jsonl", output_path=str(output))
    accounting_holds(report)
    assert (report["total"], report["success"], report["invalid"]) == (4, 3, 1)
    assert [e["eventId"] for e in enso.events] == ["e-day1", "e-day2", "e-day3"]
    assert read_lines(output) == [read_lines(days / "2024-05-02.jsonl")[1]]


def test_a_list_of_paths_and_globs_is_read_once_per_file_in_path_order(enso, tmp_path, days):
    output = tmp_path / "out.jsonl"
    report = replay(
        # day 3 is listed first, and day 1 twice (by name and through the glob): read once, in order.
        source_path=[
            f"file://{days}/2024-05-03.jsonl",
            str(days / "2024-05-01.jsonl"),
            f"{days}/2024-05-0[12].jsonl",
            str(tmp_path / "missing.jsonl"),
        ],
        output_path=str(output),
    )
    accounting_holds(report)
    assert report["total"] == 4
    # cust_late is unknown: all three refused again, indexed by their position in the stream.
    refused = [r for r in read_records(output) if r["rejectedBy"] == "enso"]
    assert [(r["index"], r["eventId"]) for r in refused] == [(0, "e-day1"), (1, "e-day2"), (3, "e-day3")]
    assert enso.stats.events_received == 3


def test_missing_sources_are_a_success_with_a_log_line_by_default(enso, tmp_path, capsys):
    output = tmp_path / "out.jsonl"
    report = replay(
        source_path=[str(tmp_path / "nope.jsonl"), f"{tmp_path}/none-*.jsonl"],
        output_path=str(output),
    )
    assert (report["total"], report["sent"], report["rejected_records_path"]) == (0, 0, None)
    log = capsys.readouterr().out
    assert "No rejected-records file matches" in log
    assert "nope.jsonl" in log
    assert "none-*.jsonl" in log
    assert enso.stats.requests == 0
    assert not output.exists()


def test_missing_sources_fail_before_anything_is_sent_when_not_allowed(enso, tmp_path, days):
    with pytest.raises(AirflowFailException, match=r"No file matches source_path .*nope\.jsonl"):
        replay(
            source_path=[str(days / "2024-05-01.jsonl"), str(tmp_path / "nope.jsonl")],
            output_path=str(tmp_path / "out.jsonl"),
            allow_missing=False,
        )
    assert enso.stats.requests == 0


def test_a_directory_is_not_a_source_file(enso, tmp_path, days):
    with pytest.raises(AirflowFailException, match="is not a file"):
        replay(source_path=str(days), output_path=str(tmp_path / "out.jsonl"))


def test_the_output_may_not_be_a_source(enso, days):
    source = days / "2024-05-01.jsonl"
    before = source.read_bytes()
    with pytest.raises(AirflowFailException, match="also a source file"):
        replay(source_path=f"{days}/*.jsonl", output_path=f"{days}/./2024-05-01.jsonl")
    assert source.read_bytes() == before
    # Nor its partial file, which a run killed half-way may have left behind.
    (days / "out.jsonl.partial").write_text("half a run\n")
    with pytest.raises(AirflowFailException, match="also a source file"):
        replay(source_path=f"{days}/*", output_path=f"{days}/out.jsonl")
    assert enso.stats.requests == 0


def test_a_corrupt_line_is_reported_with_its_line_number_and_the_rest_is_replayed(enso, tmp_path, capsys):
    source = write_records(
        tmp_path / "in.jsonl",
        [
            enso_record("e-1"),
            '{"index": 1, "code": 2002, "event": {"CustomerEntityId": "cust_1"',  # cut off
            "",  # blank lines are no records
            "[1, 2]",
            {"code": 2002, "rejectedBy": "enso", "event": None},
            enso_record("e-2"),
        ],
    )
    output = tmp_path / "out.jsonl"
    report = replay(source_path=str(source), output_path=str(output))
    accounting_holds(report)
    assert (report["total"], report["success"], report["invalid"]) == (5, 2, 3)
    assert enso.event_ids == {"e-1", "e-2"}
    assert report["errors"] == {"corrupt_record": 3}
    lines = read_lines(source)
    corrupt = read_records(output)
    assert [(r["row"]["line"], r["index"], r["code"]) for r in corrupt] == [
        (2, 1, "corrupt_record"),
        (4, 2, "corrupt_record"),
        (5, 3, "corrupt_record"),
    ]
    assert [r["row"]["raw"].encode() for r in corrupt] == [lines[1], lines[3], lines[4]]
    assert all(r["row"]["source"] == f"file://{source}" for r in corrupt)
    assert f"{source}, line 2" in report["sample"][0]["error"]
    assert f"Corrupt rejected record at file://{source}, line 2" in capsys.readouterr().out
    # The next replay carries the corrupt records over unchanged: they are local now.
    output2 = tmp_path / "out2.jsonl"
    replay(source_path=str(output), output_path=str(output2))
    assert read_lines(output2) == read_lines(output)


def test_an_invalid_utf8_line_is_kept(enso, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"code": 2002, "event": "\xff"}\n')
    output = tmp_path / "out.jsonl"
    report = replay(source_path=str(source), output_path=str(output))
    assert report["invalid"] == 1
    assert read_records(output)[0]["row"]["raw"] == '{"code": 2002, "event": "\\xff"}'


def test_an_error_that_stops_the_replay_leaves_the_previous_output_alone(enso, tmp_path):
    source = write_records(tmp_path / "in.jsonl", [local_record(), enso_record("e-1")])
    output = tmp_path / "out.jsonl"
    output.write_text("previous run\n")
    enso.fail_next(20, 401)
    with pytest.raises(EnsoError):
        replay(source_path=str(source), output_path=str(output))
    assert output.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_a_run_that_leaves_nothing_removes_an_older_output(enso, tmp_path):
    source = write_records(tmp_path / "in.jsonl", [enso_record("e-1")])
    output = tmp_path / "out.jsonl"
    output.write_text("an older run's leftovers\n")
    report = replay(source_path=str(source), output_path=str(output))
    assert report["success"] == 1
    assert not output.exists()
