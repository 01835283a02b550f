"""Replays against the emulator over a real socket: late customers, chains, eventIds, carried records."""

from __future__ import annotations

import json

from tests.replay.records import (
    accounting_holds,
    enso_record,
    local_record,
    read_lines,
    read_records,
    replay,
    row,
    send_rows,
    write_records,
)

ROWS = [
    row("cust_1", 1),
    row("cust_late", 2),  # Enso: 2002 until the customer is added
    row(None, 3),  # local: missing customer
    row("cust_2", 4),
    row("cust_late", 5),
    row("cust_later", 6),  # Enso: 2002, added later still
]


def test_late_customers_are_accepted_and_nothing_accepted_earlier_is_sent_again(enso, tmp_path):
    rejected = tmp_path / "rejected.jsonl"
    first = send_rows(ROWS, rejected)
    assert (first["success"], first["failed"], first["invalid"]) == (2, 3, 1)
    accepted_first = set(enso.event_ids)
    refused = [r for r in read_records(rejected) if r["rejectedBy"] == "enso"]
    refused_ids = [r["eventId"] for r in refused]
    received = enso.stats.events_received

    enso.add_customers("cust_late", "cust_later")
    output = tmp_path / "replayed.jsonl"
    report = replay(source_path=str(rejected), output_path=str(output))

    accounting_holds(report)
    assert (report["total"], report["sent"], report["success"], report["failed"], report["invalid"]) == (
        4,
        3,
        3,
        0,
        1,
    )
    # Exactly the refused events were sent, each once, with the eventIds of the first run.
    assert enso.stats.events_received - received == 3
    assert enso.stats.duplicates == 0
    assert enso.event_ids == accepted_first | set(refused_ids)
    replayed = {e["eventId"]: e for e in enso.events if e["eventId"] in refused_ids}
    assert {i: replayed[i] for i in refused_ids} == {r["eventId"]: r["event"] for r in refused}
    # What was not replayed is carried over byte for byte.
    local_lines = [line for line in read_lines(rejected) if b'"rejectedBy":"local"' in line]
    assert read_lines(output) == local_lines
    assert report["rejected_records_path"] == f"file://{output}"
    assert report["errors"] == {"missing_customer_entity_id": 1}


def test_still_refused_records_chain_from_replay_to_replay(enso, tmp_path):
    rejected = tmp_path / "rejected.jsonl"
    send_rows(ROWS, rejected)
    original = {r["eventId"]: r for r in read_records(rejected) if r["eventId"]}
    enso.add_customers("cust_late")

    day1 = tmp_path / "day1.jsonl"
    report1 = replay(source_path=str(rejected), output_path=str(day1))
    assert (report1["sent"], report1["success"], report1["failed"], report1["invalid"]) == (3, 2, 1, 1)
    records = read_records(day1)
    still = [r for r in records if r["rejectedBy"] == "enso"]
    assert len(still) == 1
    assert still[0]["code"] == 2002
    # The original eventId and event, with the record's position in the replay's source as index.
    assert still[0]["event"] == original[still[0]["eventId"]]["event"]
    assert still[0]["index"] == 3

    # The next replay sends only what still fails; the local record is carried again, unchanged.
    received = enso.stats.events_received
    day2 = tmp_path / "day2.jsonl"
    report2 = replay(source_path=str(day1), output_path=str(day2))
    accounting_holds(report2)
    assert (report2["total"], report2["sent"], report2["failed"], report2["invalid"]) == (2, 1, 1, 1)
    assert enso.stats.events_received - received == 1
    assert read_lines(day2)[0] == read_lines(day1)[0]  # the carried local record
    assert read_records(day2)[1]["eventId"] == still[0]["eventId"]

    enso.add_customers("cust_later")
    day3 = tmp_path / "day3.jsonl"
    report3 = replay(source_path=str(day2), output_path=str(day3))
    assert (report3["sent"], report3["success"], report3["invalid"]) == (1, 1, 1)
    assert [r["rejectedBy"] for r in read_records(day3)] == ["local"]
    assert enso.event_ids >= set(original)
    assert enso.stats.duplicates == 0


def test_a_replay_over_a_fully_accepted_output_sends_nothing(enso, tmp_path):
    rejected = tmp_path / "rejected.jsonl"
    send_rows([row("cust_1"), row("cust_late", 2)], rejected)
    enso.add_customers("cust_late")
    output = tmp_path / "replayed.jsonl"
    report = replay(source_path=str(rejected), output_path=str(output))
    assert (report["success"], report["failed"], report["invalid"]) == (1, 0, 0)
    # Nothing left: no output file, and a replay of it is a missing source, not an error.
    assert report["rejected_records_path"] is None
    assert not output.exists()
    requests = enso.stats.batch_requests
    again = replay(source_path=str(output), output_path=str(tmp_path / "again.jsonl"))
    assert (again["total"], again["sent"], again["batches"]) == (0, 0, 0)
    assert enso.stats.batch_requests == requests


def test_codes_match_as_strings_and_transient_statuses_are_replayed(enso, tmp_path):
    source = write_records(
        tmp_path / "in.jsonl",
        [
            enso_record("e-int", code=2002),
            enso_record("e-str", code="2002"),
            enso_record("e-503", code="transient_failure", status=503),
            enso_record("e-429", code=429, status=429),
            enso_record("e-27", code="27", status=400),
            enso_record("e-2001", code=2001, status=400),
        ],
    )
    output = tmp_path / "out.jsonl"
    report = replay(source_path=str(source), output_path=str(output))
    accounting_holds(report)
    assert enso.event_ids == {"e-int", "e-str", "e-503", "e-429"}
    assert (report["success"], report["invalid"]) == (4, 2)
    assert report["errors"] == {"27": 1, "2001": 1}
    assert [r["eventId"] for r in read_records(output)] == ["e-27", "e-2001"]
    assert read_lines(output) == read_lines(source)[4:]

    # Codes given as strings match numeric codes, and the other way round.
    output2 = tmp_path / "out2.jsonl"
    report2 = replay(source_path=str(output), output_path=str(output2), replay_codes=["2001", 27])
    assert (report2["sent"], report2["invalid"]) == (2, 0)
    # Their customer is known, so the emulator accepts them this time.
    assert report2["success"] == 2
    assert not output2.exists()


def test_carried_records_are_byte_identical(enso, tmp_path):
    # Unusual spacing, key order and unicode: copied as they are, never re-encoded.
    odd = '{ "rejectedBy" : "local", "code": "invalid_value", "index": 7, "row": {"v": "n/a \\u00e9"} }'
    other = json.dumps(enso_record("e-2001", code=2001), ensure_ascii=False, indent=None, sort_keys=True)
    source = write_records(tmp_path / "in.jsonl", [odd, other, local_record(3)])
    output = tmp_path / "out.jsonl"
    report = replay(source_path=str(source), output_path=str(output))
    assert (report["total"], report["sent"], report["invalid"]) == (3, 0, 3)
    assert read_lines(output) == read_lines(source)
    assert enso.stats.batch_requests == 0


def test_event_ids_come_from_the_record_and_an_event_without_one_is_not_sent(enso, tmp_path):
    no_id_in_event = enso_record("e-rec")
    del no_id_in_event["event"]["eventId"]
    no_id_at_all = enso_record("e-none")
    del no_id_at_all["event"]["eventId"]
    no_id_at_all["eventId"] = None
    source = write_records(tmp_path / "in.jsonl", [no_id_in_event, no_id_at_all])
    output = tmp_path / "out.jsonl"
    report = replay(source_path=str(source), output_path=str(output))
    assert enso.event_ids == {"e-rec"}
    assert (report["success"], report["invalid"]) == (1, 1)
    assert report["errors"] == {"missing_event_id": 1}
    assert read_lines(output) == read_lines(source)[1:]


def test_events_are_sent_as_recorded_never_mapped_again(enso, tmp_path):
    record = enso_record("e-meta")
    record["event"].update(metadata={"region": "eu", "nested": {"a": [1, 2]}}, JobId="job-7", value=12.5)
    source = write_records(tmp_path / "in.jsonl", [record])
    replay(source_path=str(source), output_path=str(tmp_path / "out.jsonl"))
    assert enso.events == [record["event"]]
