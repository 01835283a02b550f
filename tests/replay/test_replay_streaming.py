"""The sources are streamed: one file at a time, line by line, memory flat in the file size."""

from __future__ import annotations

import tracemalloc

import orjson

from enso_provider.events import Event, Rejection
from enso_provider.operators.replay import EnsoReplayRejectedOperator, _ReadState
from tests.replay.records import enso_record, local_record, replay, write_records


def test_records_are_read_lazily_one_file_after_the_other(tmp_path):
    first = write_records(tmp_path / "a.jsonl", [enso_record("e-1"), local_record()])
    write_records(tmp_path / "b.jsonl", [enso_record("e-2")])
    op = EnsoReplayRejectedOperator(task_id="t", source_path=f"{tmp_path}/*.jsonl", output_path="unused")
    files = op._resolve([f"{tmp_path}/*.jsonl"])
    state = _ReadState()
    items = op._items(files, frozenset({"2002"}), state)
    item = next(items)
    assert isinstance(item, Event)
    assert (item.index, item.event_id) == (0, "e-1")
    assert orjson.loads(item.data) == enso_record("e-1")["event"]
    assert state.files == 1  # the second file is not open yet
    rest = list(items)
    assert [type(i) for i in rest] == [Rejection, Event]
    assert [i.index for i in rest] == [1, 2]
    assert state.files == 2
    assert state.carried == {1: first.read_bytes().splitlines()[1]}


def test_memory_stays_flat_in_the_size_of_the_files(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        for n in range(12_000):
            record = enso_record(f"evt-{n:06d}", f"cust_{n % 3 + 1}", index=n)
            record["event"]["metadata"] = {"region": "eu-west-1", "note": "x" * 1200}
            out.write(orjson.dumps(record) + b"\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        report = replay(source_path=str(path), output_path=str(tmp_path / "out.jsonl"), dry_run=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report["total"] == report["sent"] == 12_000
    assert size > 15_000_000
    assert peak < 2_000_000, (peak, size)  # the file is over 15 MB
