"""Normalisation of timestamps, values, identifiers and metadata, and every rejection code."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pendulum
import pytest

import enso_provider.events._timestamps as timestamps_module
from enso_provider.events import (
    EVENT_TOO_LARGE,
    INVALID_CUSTOMER_ENTITY_ID,
    INVALID_JOB_ID,
    INVALID_METADATA,
    INVALID_METRIC,
    INVALID_TIMESTAMP,
    INVALID_VALUE,
    MISSING_CUSTOMER_ENTITY_ID,
    MISSING_METRIC,
    REJECTION_CODES,
    Event,
    EventMapper,
    Rejection,
    decode_event,
)

TS = "2023-11-07T05:31:56Z"
PARIS = ZoneInfo("Europe/Paris")


def row(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"CustomerEntityId": "cust_1", "metric": "api_calls", "value": 3, "timestamp": TS}
    base.update(extra)
    return base


def event(item: Event | Rejection) -> dict[str, Any]:
    assert isinstance(item, Event), item
    return decode_event(item.data)


def reject(item: Event | Rejection, code: str) -> Rejection:
    assert isinstance(item, Rejection), item
    assert item.code == code, item
    return item


def stamp(value: Any, **kwargs: Any) -> str:
    return event(EventMapper(**kwargs).map_one(row(timestamp=value)))["timestamp"]


# ---------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2023-11-07T05:31:56Z", "2023-11-07T05:31:56Z"),
        (" 2023-11-07T05:31:56Z ", "2023-11-07T05:31:56Z"),
        ("2023-11-07t05:31:56z", "2023-11-07T05:31:56Z"),
        ("2023-11-07T05:31:56.000Z", "2023-11-07T05:31:56Z"),
        ("2023-11-07T05:31:56.5Z", "2023-11-07T05:31:56.500000Z"),
        ("2023-11-07T05:31:56,25Z", "2023-11-07T05:31:56.250000Z"),
        ("2023-11-07T05:31:56.123456789Z", "2023-11-07T05:31:56.123456Z"),
        ("2023-11-07 05:31:56", "2023-11-07T05:31:56Z"),
        ("2023-11-07T05:31", "2023-11-07T05:31:00Z"),
        ("2023-11-07", "2023-11-07T00:00:00Z"),
        ("2023-11-07T05:31:56+02:00", "2023-11-07T03:31:56Z"),
        ("2023-11-07T05:31:56-0530", "2023-11-07T11:01:56Z"),
        ("2023-11-07T05:31:56+02", "2023-11-07T03:31:56Z"),
        ("2023-11-07 05:31:56 +00:00", "2023-11-07T05:31:56Z"),
        ("2023-11-07 05:31:56 UTC", "2023-11-07T05:31:56Z"),
        ("2023-11-07T00:30:00+01:00", "2023-11-06T23:30:00Z"),
        ("1972-01-01T00:00:00-00:44:30", "1972-01-01T00:44:30Z"),
        ("1972-01-01T00:00:00+00:00:00.5", "1971-12-31T23:59:59.500000Z"),
    ],
)
def test_iso_strings(given: str, expected: str) -> None:
    assert stamp(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (datetime(2023, 11, 7, 5, 31, 56), "2023-11-07T05:31:56Z"),
        (datetime(2023, 11, 7, 5, 31, 56, 7), "2023-11-07T05:31:56.000007Z"),
        (datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone.utc), "2023-11-07T05:31:56Z"),
        (datetime(2023, 11, 7, 6, 31, 56, tzinfo=PARIS), "2023-11-07T05:31:56Z"),
        (datetime(2023, 11, 7, 5, 31, 56, tzinfo=timezone(timedelta(hours=-3))), "2023-11-07T08:31:56Z"),
        (pendulum.datetime(2023, 11, 7, 6, 31, 56, tz="Europe/Paris"), "2023-11-07T05:31:56Z"),
        (pd.Timestamp("2023-11-07 05:31:56"), "2023-11-07T05:31:56Z"),
        (pd.Timestamp("2023-11-07 06:31:56.000001999", tz="Europe/Paris"), "2023-11-07T05:31:56.000001Z"),
        (np.datetime64("2023-11-07T05:31:56.250"), "2023-11-07T05:31:56.250000Z"),
        (date(2023, 11, 7), "2023-11-07T00:00:00Z"),
    ],
)
def test_datetime_objects(given: Any, expected: str) -> None:
    assert stamp(given) == expected


def test_naive_values_are_read_in_the_timezone_argument() -> None:
    assert stamp("2023-07-01T12:00:00", timezone="Europe/Paris") == "2023-07-01T10:00:00Z"
    assert stamp(datetime(2023, 1, 1, 12), timezone="Europe/Paris") == "2023-01-01T11:00:00Z"
    assert stamp(date(2023, 7, 1), timezone="Europe/Paris") == "2023-06-30T22:00:00Z"
    # Values that carry their zone ignore it.
    assert stamp("2023-07-01T12:00:00Z", timezone="Europe/Paris") == "2023-07-01T12:00:00Z"
    assert stamp(datetime(2023, 7, 1, 12, tzinfo=timezone.utc), timezone="America/New_York") == (
        "2023-07-01T12:00:00Z"
    )


def test_dst_ambiguous_and_missing_wall_times_follow_python_fold_rules() -> None:
    mapper = EventMapper(timezone="Europe/Paris")
    # 2023-10-29 02:30 happens twice in Paris: fold=0 is the first (CEST, +02:00), fold=1 the second.
    first = mapper.map_one(row(timestamp=datetime(2023, 10, 29, 2, 30)))
    second = mapper.map_one(row(timestamp=datetime(2023, 10, 29, 2, 30, fold=1)))
    assert event(first)["timestamp"] == "2023-10-29T00:30:00Z"
    assert event(second)["timestamp"] == "2023-10-29T01:30:00Z"
    # 2023-03-26 02:30 does not exist in Paris: read with the offset before the gap (+01:00).
    assert stamp("2023-03-26T02:30:00", timezone="Europe/Paris") == "2023-03-26T01:30:00Z"


@pytest.mark.parametrize(
    ("given", "unit", "expected"),
    [
        (1700000000, "s", "2023-11-14T22:13:20Z"),
        (1700000000.5, "s", "2023-11-14T22:13:20.500000Z"),
        (1700000000.123456, "s", "2023-11-14T22:13:20.123456Z"),
        (Decimal("1700000000.0000019"), "s", "2023-11-14T22:13:20.000001Z"),
        (np.int64(1700000000), "s", "2023-11-14T22:13:20Z"),
        (np.float64(1700000000.25), "s", "2023-11-14T22:13:20.250000Z"),
        ("1700000000", "s", "2023-11-14T22:13:20Z"),
        (1700000000123, "ms", "2023-11-14T22:13:20.123000Z"),
        (0, "s", "1970-01-01T00:00:00Z"),
    ],
)
def test_epoch_numbers_with_a_unit(given: Any, unit: str, expected: str) -> None:
    assert stamp(given, timestamp_unit=unit) == expected


@pytest.mark.parametrize("given", [1700000000, 1700000000.0, Decimal(1700000000), np.int32(17), "1700000000"])
def test_epoch_numbers_without_a_unit_are_rejected_with_advice(given: Any) -> None:
    item = reject(EventMapper().map_one(row(timestamp=given)), INVALID_TIMESTAMP)
    assert "timestamp_unit" in item.error
    assert item.field == "timestamp"


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "  ",
        float("nan"),
        pd.NaT,
        np.datetime64("NaT"),
        "yesterday",
        "2023-13-01",
        "2023-02-30T00:00:00Z",
        "2023-11-07T24:00:00Z",
        "2023-11-07T05:31:60Z",
        "2023-11-07T05:31:56+24:00",
        "2023-11-07T05:31:56+05:60",
        "2023-11-07T05:31:56+05:00:60",
        "2023-11-07T05:31:56ZZ",
        "20231107T053156Z",
        "\u0662\u0660\u0662\u0663-\u0661\u0661-\u0660\u0667",  # Arabic-Indic digits
        True,
        np.bool_(False),
        object(),
        [2023, 11, 7],
        timedelta(days=1),
        "1969-12-31T23:59:59Z",
        "2262-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        date(1900, 1, 1),
    ],
)
def test_bad_timestamps_are_rejected(given: Any) -> None:
    item = reject(EventMapper(timestamp_unit=None).map_one(row(timestamp=given)), INVALID_TIMESTAMP)
    assert item.error.startswith("timestamp")


@pytest.mark.parametrize(
    "given", [-1, 10**20, float("inf"), Decimal("1e999999"), Decimal("-1e-999999"), "1e400"]
)
def test_epoch_numbers_out_of_range_are_rejected(given: Any) -> None:
    reject(EventMapper(timestamp_unit="s").map_one(row(timestamp=given)), INVALID_TIMESTAMP)


def test_range_bounds_are_inclusive() -> None:
    assert stamp("1970-01-01T00:00:00Z") == "1970-01-01T00:00:00Z"
    assert stamp("2261-12-31T23:59:59.999999Z") == "2261-12-31T23:59:59.999999Z"
    assert stamp("1970-01-01T01:00:00+01:00") == "1970-01-01T00:00:00Z"
    reject(EventMapper().map_one(row(timestamp="1970-01-01T00:59:59+01:00")), INVALID_TIMESTAMP)


def test_missing_timestamp_column_is_named() -> None:
    item = reject(
        EventMapper().map_one({"CustomerEntityId": "c", "metric": "m", "value": 1}), INVALID_TIMESTAMP
    )
    assert "missing" in item.error


def test_timestamp_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timestamps_module, "CACHE_LIMIT", 10)
    mapper = EventMapper()
    base = datetime(2023, 1, 1)
    items = list(mapper.map(row(timestamp=(base + timedelta(hours=h)).isoformat() + "Z") for h in range(100)))
    assert all(isinstance(i, Event) for i in items)
    assert len(mapper._fields.timestamps) <= 10
    # Cached answers are the same answers.
    again = list(mapper.map([row(timestamp="2023-01-01T05:00:00Z")] * 2))
    assert event(again[0])["timestamp"] == event(again[1])["timestamp"] == "2023-01-01T05:00:00Z"


def test_equal_datetimes_in_other_zones_give_the_same_timestamp() -> None:
    mapper = EventMapper()
    a = mapper.map_one(row(timestamp=datetime(2023, 1, 1, 12, tzinfo=timezone.utc)))
    b = mapper.map_one(row(timestamp=datetime(2023, 1, 1, 13, tzinfo=PARIS)))
    assert event(a)["timestamp"] == event(b)["timestamp"]
    assert isinstance(b, Event)
    assert isinstance(a, Event)
    assert b.event_id == a.event_id + "-2"


# ---------------------------------------------------------------- values


# The wire form is the canonical number of docs/event-ids.md: the exact value, written as
# ECMAScript writes numbers (no trailing zeros, positional for 1e-7 < |x| < 1e21).
@pytest.mark.parametrize(
    ("given", "wire"),
    [
        (3, b"3"),
        (-7, b"-7"),
        (2**64 - 1, b"18446744073709551615"),
        (2**70, b"1.180591620717411303424e+21"),
        (1.5, b"1.5"),
        (-0.0, b"0"),
        (1e16, b"10000000000000000"),
        (Decimal("1.10"), b"1.1"),
        (Decimal("-0.000000001"), b"-1e-9"),
        (Decimal("1E+3"), b"1000"),
        (
            Decimal("123456789012345678901234567890.123456789"),
            b"1.23456789012345678901234567890123456789e+29",
        ),
        (np.int64(-5), b"-5"),
        (np.uint64(2**64 - 1), b"18446744073709551615"),
        (np.float32(0.5), b"0.5"),
        (np.float64(2.25), b"2.25"),
        ("42", b"42"),
        ("  42.50 ", b"42.5"),
        ("1e3", b"1000"),
        ("-0.5E-2", b"-0.005"),
        ("+5", b"5"),
        ("007", b"7"),
        (".5", b"0.5"),
        ("5.", b"5"),
    ],
)
def test_values_are_sent_exactly(given: Any, wire: bytes) -> None:
    item = EventMapper().map_one(row(value=given))
    assert isinstance(item, Event), item
    assert b'"value":' + wire + b',"eventId"' in item.data
    parsed = json.loads(item.data, parse_float=Decimal)["value"]
    if isinstance(given, Decimal):
        assert Decimal(str(parsed)) == given


@pytest.mark.parametrize(
    "given",
    [
        None,
        float("nan"),
        float("inf"),
        float("-inf"),
        np.float64("nan"),
        np.float32("inf"),
        True,
        False,
        np.bool_(True),
        "",
        "abc",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1_000",
        "0x10",
        "1e400",
        "\u0661\u0662",
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("1e400"),
        10**400,
        pytest.param(-(10**5000), id="int-beyond-str-limit"),
        [1],
        {"a": 1},
        object(),
        complex(1, 1),
        np.complex128(1),
        pd.NA,
        pd.NaT,
    ],
)
def test_bad_values_are_rejected(given: Any) -> None:
    item = reject(EventMapper().map_one(row(value=given)), INVALID_VALUE)
    assert item.field == "value"
    assert item.error.startswith("value")


# ---------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (" cust 1 ", "cust 1"),
        (42, "42"),
        (-3, "-3"),
        (np.int64(42), "42"),
        (42.0, "42"),
        (np.float64(42.0), "42"),
        (Decimal("42"), "42"),
        (Decimal("4.2E+1"), "42"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (np.str_(" a "), "a"),
        ("ünï©ødé", "ünï©ødé"),
    ],
)
def test_identifiers(given: Any, expected: str) -> None:
    data = event(EventMapper().map_one(row(CustomerEntityId=given, metric=given, JobId=given)))
    assert data["CustomerEntityId"] == data["metric"] == data["JobId"] == expected


@pytest.mark.parametrize("given", [None, "", "  ", float("nan"), pd.NA, pd.NaT])
def test_missing_identifiers(given: Any) -> None:
    reject(EventMapper().map_one(row(CustomerEntityId=given)), MISSING_CUSTOMER_ENTITY_ID)
    reject(EventMapper().map_one(row(metric=given)), MISSING_METRIC)
    # JobId is optional: a missing one is simply not sent.
    assert "JobId" not in event(EventMapper().map_one(row(JobId=given)))


@pytest.mark.parametrize(
    "given", [True, np.bool_(True), 4.5, 2.0**60, Decimal("4.5"), [1], {"a": 1}, object(), b"bytes", "\ud800"]
)
def test_bad_identifiers(given: Any) -> None:
    reject(EventMapper().map_one(row(CustomerEntityId=given)), INVALID_CUSTOMER_ENTITY_ID)
    reject(EventMapper().map_one(row(metric=given)), INVALID_METRIC)
    reject(EventMapper().map_one(row(JobId=given)), INVALID_JOB_ID)


def test_missing_customer_without_column_or_default_says_so() -> None:
    item = reject(
        EventMapper().map_one({"metric": "m", "value": 1, "timestamp": TS}), MISSING_CUSTOMER_ENTITY_ID
    )
    assert "no column maps to it" in item.error


# ---------------------------------------------------------------- metadata


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Decimal("1.5"), 1.5),
        (Decimal("10"), 10),
        (datetime(2023, 1, 1, 1, tzinfo=PARIS), "2023-01-01T00:00:00Z"),
        (datetime(2023, 1, 1, 1), "2023-01-01T01:00:00"),
        (pd.Timestamp("2023-01-01", tz="UTC"), "2023-01-01T00:00:00Z"),
        (date(2023, 1, 1), "2023-01-01"),
        (uuid.UUID(int=2), "00000000-0000-0000-0000-000000000002"),
        (np.int64(3), 3),
        (np.float32(0.5), 0.5),
        (np.bool_(True), True),
        (np.array([1, 2]), [1, 2]),
        ((1, "a"), [1, "a"]),
        ({3, 1, 2}, [1, 2, 3]),
        (float("nan"), None),
        (float("inf"), None),
        (np.float64("nan"), None),
        (pd.NaT, None),
        (Decimal("NaN"), None),
        (2**80, str(2**80)),
        (Colour.RED, "red"),
        (b"raw", "raw"),
        ({"b": {"d": 1, "c": [Decimal("0.1")]}, "a": None}, {"a": None, "b": {"c": [0.1], "d": 1}}),
        ({1: "x", None: "y"}, {"1": "x", "null": "y"}),
    ],
)
def test_metadata_values_are_made_json_safe(given: Any, expected: Any) -> None:
    as_column = event(EventMapper(metadata_columns=["k"]).map_one(row(k=given)))["metadata"]
    as_object = event(EventMapper().map_one(row(metadata={"k": given})))["metadata"]
    assert as_column == as_object == {"k": expected}


def test_metadata_is_encoded_with_sorted_keys_whatever_the_row_order() -> None:
    a = EventMapper(metadata_columns="*").map_one({**row(), "z": 1, "a": {"y": 1, "b": 2}})
    b = EventMapper(metadata_columns="*").map_one({"a": {"b": 2, "y": 1}, "z": 1, **row()})
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert a.data == b.data
    assert a.event_id == b.event_id
    assert b'"metadata":{"a":{"b":2,"y":1},"z":1}' in a.data


@pytest.mark.parametrize("bad", [object(), {"k": object()}, "\ud800", {"\ud800": 1}])
def test_unserialisable_metadata_is_rejected(bad: Any) -> None:
    reject(EventMapper(metadata_columns=["k"]).map_one(row(k=bad)), INVALID_METADATA)
    reject(EventMapper().map_one(row(metadata={"k": bad})), INVALID_METADATA)


def test_cyclic_and_too_deep_metadata_is_rejected() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    reject(EventMapper().map_one(row(metadata=cyclic)), INVALID_METADATA)
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(300):
        node["n"] = {}
        node = node["n"]
    reject(EventMapper().map_one(row(metadata=deep)), INVALID_METADATA)


# ---------------------------------------------------------------- size, text, codes


def test_event_too_large() -> None:
    mapper = EventMapper(max_event_bytes=300)
    ok = mapper.map_one(row(metadata={"note": "x" * 50}))
    assert isinstance(ok, Event)
    assert len(ok.data) <= 300
    item = reject(mapper.map_one(row(metadata={"note": "x" * 500})), EVENT_TOO_LARGE)
    assert "300" in item.error
    assert item.event is not None
    assert item.event["metadata"] == {"note": "x" * 500}


def test_event_too_large_is_exact_at_the_limit() -> None:
    probe = EventMapper().map_one(row())
    assert isinstance(probe, Event)
    size = len(probe.data)
    assert isinstance(EventMapper(max_event_bytes=size).map_one(row()), Event)
    reject(EventMapper(max_event_bytes=size - 1).map_one(row()), EVENT_TOO_LARGE)


def test_text_with_lone_surrogates_is_rejected_not_crashed() -> None:
    reject(EventMapper().map_one(row(CustomerEntityId="a\ud800")), INVALID_CUSTOMER_ENTITY_ID)
    reject(EventMapper().map_one(row(metric="m\udfff")), INVALID_METRIC)


def test_non_ascii_and_control_characters_are_escaped_properly() -> None:
    data = event(EventMapper().map_one(row(CustomerEntityId='ä "quoted"\n\t\x00 😀')))
    assert data["CustomerEntityId"] == 'ä "quoted"\n\t\x00 😀'


def test_every_documented_code_is_exercised() -> None:
    # Every code in REJECTION_CODES has a test that asserts it (this keeps the list honest).
    assert set(REJECTION_CODES) == {
        "missing_customer_entity_id",
        "invalid_customer_entity_id",
        "missing_metric",
        "invalid_metric",
        "invalid_value",
        "invalid_timestamp",
        "invalid_metadata",
        "invalid_event_id",
        "duplicate_event_id",
        "invalid_job_id",
        "event_too_large",
        "invalid_row",
    }


# ---------------------------------------------------------------- pandas


def test_pandas_records_with_nat_nan_and_numpy_types() -> None:
    frame = pd.DataFrame(
        {
            "customer_entity_id": ["c1", None, "c3", "c4"],
            "metric": ["m", "m", "m", "m"],
            "value": [1.5, 2.0, np.nan, 4.0],
            "timestamp": pd.to_datetime(["2023-11-07 05:00", "2023-11-07 06:00", "2023-11-07 07:00", None]),
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "flag": np.array([True, False, True, False]),
            "ratio": np.array([0.5, np.nan, 1.0, 2.0], dtype="float32"),
        }
    )
    mapper = EventMapper(metadata_columns=["count", "flag", "ratio"], job_id="j")
    items = list(mapper.map(frame.to_dict("records")))
    first = event(items[0])
    assert first["timestamp"] == "2023-11-07T05:00:00Z"
    assert first["metadata"] == {"count": 1, "flag": True, "ratio": 0.5}
    assert reject(items[1], MISSING_CUSTOMER_ENTITY_ID).row is not None
    assert reject(items[2], INVALID_VALUE).row["value"] is None  # type: ignore[index]
    assert reject(items[3], INVALID_TIMESTAMP).row["timestamp"] is None  # type: ignore[index]


def test_pandas_numpy_scalars_from_itertuples() -> None:
    frame = pd.DataFrame(
        {"customer_entity_id": [1, 2], "metric": ["m", "m"], "value": [1, 2], "timestamp": ["2023-01-01"] * 2}
    )
    columns = list(frame.columns)
    rows = [tuple(r) for r in frame.to_numpy(dtype=object)]
    rows += [(np.int64(3), "m", np.int64(3), pd.Timestamp("2023-01-01", tz="UTC"))]
    items = list(EventMapper().map(rows, columns=columns))
    assert [event(i)["CustomerEntityId"] for i in items] == ["1", "2", "3"]
    assert [event(i)["value"] for i in items] == [1, 2, 3]
