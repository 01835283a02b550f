"""
The column-wise encoding of tuple rows (``map_chunks``) gives exactly the row loop's items (``map``).

Columns are drawn as warehouse drivers give them, mostly one type with the odd bad value, and mixed;
every option that changes a content is drawn too. Both mappers see the same rows in the same order,
so their events (ids, occurrence suffixes, bytes) and their rejections must be equal.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil import tz as dateutil_tz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enso_provider.events import Event, EventMapper, _columns, _mapper

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ["customer_entity_id", "metric", "value", "timestamp", "metadata", "units", "recorded_at", "region"]

# Each column: (the values of its kind, the odd values mixed into it).
clean_ids = st.sampled_from(["cust_1", "cust_2", " cust_3 ", "Cust_4_EU", 'a"b', "tab\there", "é"])
bad_ids = st.sampled_from(["", "  ", None, "x\ud800", 7])
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**14), max_value=10**14)
bad_decimals = st.sampled_from(
    [
        Decimal("-0.000000"),
        Decimal("1200"),
        Decimal("1E+3"),
        Decimal("NaN"),
        Decimal("1E-7"),
        Decimal(10**25),
        None,
    ]
)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
bad_floats = st.sampled_from([0.0, -0.0, 1.0, 1e16, 1e-7, float("nan"), float("inf"), None])
ints = st.integers(-(2**63), 2**64 - 1)
bad_ints = st.sampled_from([0, 2**64, -(2**63) - 1, None, True])
zones = st.sampled_from(
    [timezone.utc, ZoneInfo("Etc/UTC"), ZoneInfo("Europe/Paris"), timezone(timedelta(hours=-5))]
)
instants = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2261, 12, 30))
edges = st.sampled_from(
    [datetime(1969, 12, 31, 23), datetime(2262, 1, 1, 1), datetime(1970, 1, 1), None, "x"]
)
wire_texts = st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z", "2024-01-01 10:00:00+02:00"])
bad_texts = st.sampled_from(["2024-13-01T00:00:00Z", "x", "", None, "1970-01-01T00:00:00Z"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.decimals(-(10**6), 10**6, places=3).map(float),
    st.text(max_size=6),
    st.sampled_from([1.0, 1e16, 1e-7, float("nan"), 2**70, "0.0,", "1e+5"]),
)
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
json_objects = st.dictionaries(st.sampled_from(["sku", "cost", "tags", "region"]), nested, max_size=4)
bad_objects = st.sampled_from(
    [
        '{"a": 1}',
        '{"b": [1.0]}',
        "[1, 2]",
        "",
        "  ",
        "{",
        None,
        [1],
        7,
        {"list": [{"a": 1}, {"CustomerEntityId": 2}]},
    ]
)


def _aware(zone: Any) -> Any:
    return instants.map(lambda moment: moment.replace(tzinfo=zone))


KINDS: dict[str, list[tuple[Any, Any]]] = {
    "customer_entity_id": [(clean_ids, bad_ids)],
    "metric": [(clean_ids, bad_ids)],
    "value": [
        (decimals, bad_decimals),
        (floats, bad_floats),
        (ints, bad_ints),
        (decimals, st.one_of(floats, ints)),
    ],
    "timestamp": [
        (_aware(timezone.utc), edges),
        (zones.flatmap(_aware), edges),
        (instants, edges),
        (wire_texts, bad_texts),
        (zones.flatmap(_aware).map(datetime.isoformat), bad_texts),
        (instants, _aware(timezone.utc)),
    ],
    "metadata": [
        (json_objects, bad_objects),
        (st.none(), bad_objects),
        (json_objects.map(lambda obj: __import__("json").dumps(obj, default=str)), bad_objects),
    ],
    "units": [(ints, bad_ints), (floats, bad_floats)],
    "recorded_at": [(instants, st.none()), (_aware(timezone.utc), st.none())],
    "region": [(st.sampled_from(["eu", "us"]), st.one_of(st.none(), floats))],
}


@st.composite
def tables(draw: Any) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """Rows of the eight columns, each of one drawn kind with a few odd values mixed in, and options."""
    n = draw(st.integers(1, 40))
    columns = []
    for name in COLUMNS:
        clean, odd = draw(st.sampled_from(KINDS[name]))
        values = draw(st.lists(clean, min_size=n, max_size=n))
        for at in draw(st.lists(st.integers(0, n - 1), max_size=1)):
            values[at] = draw(odd)
        columns.append(values)
    rows = list(zip(*columns, strict=True))
    # Repeated rows: their contents repeat, so occurrence suffixes must agree too.
    rows += draw(st.lists(st.sampled_from(rows), max_size=5))
    options = {
        "metadata_columns": draw(st.sampled_from([["units", "recorded_at", "region"], ["region"], []])),
        "defaults": draw(st.sampled_from([None, {"metadata": {"source": "x", "region": "default"}}])),
        "job_id": draw(st.sampled_from([None, "job-1"])),
        "timezone": draw(st.sampled_from(["UTC", "UTC", "Europe/Paris"])),
        "max_event_bytes": draw(st.sampled_from([64 * 1024, 64 * 1024, 300])),
    }
    return rows, options


def _items(mapper: EventMapper, rows: list[tuple[Any, ...]], chunked: bool) -> list[Any]:
    if chunked:
        return [item for chunk in mapper.map_chunks(rows, columns=COLUMNS) for item in chunk]
    return list(mapper.map(rows, columns=COLUMNS))


@pytest.mark.parametrize("chunk", [1024, 7])
@SETTINGS
@given(table=tables())
def test_the_column_encoding_gives_the_row_loop_items(chunk: int, table: Any) -> None:
    rows, options = table
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_mapper, "CHUNK", chunk)
        by_rows = _items(EventMapper(namespace="n", **options), rows, chunked=False)
        by_columns_mapper = EventMapper(namespace="n", **options)
        by_columns = _items(by_columns_mapper, rows, chunked=True)
    assert by_columns == by_rows
    assert by_columns_mapper.rows_seen == len(rows)


def test_columns_of_plain_warehouse_values_are_encoded_column_wise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case does not fall back to the row loop (else the property above proves nothing)."""
    rows = [
        (
            "cust_1",
            "api_calls",
            Decimal("1.500000"),
            datetime(2024, 1, 1, tzinfo=timezone.utc),
            {"a": 0.5},
            3,
            None,
            "eu",
        ),
        (
            "cust_2",
            "api_calls",
            Decimal("2.000000"),
            datetime(2024, 1, 2, tzinfo=timezone.utc),
            None,
            4,
            None,
            "us",
        ),
    ]
    mapper = EventMapper(metadata_columns=["units", "recorded_at", "region"])
    calls: list[Any] = []
    monkeypatch.setattr(mapper, "_content", lambda *args: calls.append(args))
    items = [item for chunk in mapper.map_chunks(rows, columns=COLUMNS) for item in chunk]
    assert calls == []
    assert [type(item) for item in items] == [Event, Event]
    assert items[1].data.startswith(
        b'{"CustomerEntityId":"cust_2","metadata":{"recorded_at":null,"region":"us"'
    )


DATETIME_ROWS = [
    ("c", "m", 1, datetime(2024, 1, 1, 10, 0, 0, 5), None, 1, datetime(2024, 1, 1, 11, 0, 0, 120000), "eu"),
    ("c", "m", 2, datetime(2261, 12, 31, 23, 59, 59, 999999), None, 1, datetime(1, 1, 1), "eu"),
    ("c", "m", 3, datetime(2024, 1, 1, tzinfo=ZoneInfo("Etc/UTC")), None, 1, None, "eu"),
]


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        (DATETIME_ROWS[:2], b'"recorded_at":"2024-01-01T11:00:00.120000","region":"eu","units":1},'),
        (DATETIME_ROWS[:2], b'"timestamp":"2024-01-01T10:00:00.000005Z"'),
        (DATETIME_ROWS[2:], b'"timestamp":"2024-01-01T00:00:00Z"'),
    ],
)
def test_datetimes_are_written_column_wise_as_the_row_loop_writes_them(
    monkeypatch: pytest.MonkeyPatch, rows: list[tuple[Any, ...]], text: bytes
) -> None:
    """Naive (read as UTC) and aware timestamps, naive metadata datetimes: one orjson call per column."""
    options = {"metadata_columns": ["units", "recorded_at", "region"]}
    by_rows = list(EventMapper(**options).map(rows, columns=COLUMNS))
    mapper = EventMapper(**options)
    calls: list[Any] = []
    monkeypatch.setattr(mapper, "_content", lambda *args: calls.append(args))
    chunked = [item for chunk in mapper.map_chunks(rows, columns=COLUMNS) for item in chunk]
    assert calls == []
    assert chunked == by_rows
    assert text in by_rows[0].data


class _NamedUtc(tzinfo):
    """A zone named UTC whose offset is not zero: the name alone must not decide."""

    key = "UTC"

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


@pytest.mark.parametrize(
    "zone", [_NamedUtc(), ZoneInfo("Europe/London"), ZoneInfo("Etc/UTC"), dateutil_tz.tzutc()]
)
def test_zoned_timestamps_follow_their_offsets_not_their_names(zone: tzinfo) -> None:
    rows = [
        ("c", "m", 1, datetime(2024, 1, 1, 10, 0, 0, 5, tzinfo=zone), None, 1, None, "eu"),
        ("c", "m", 2, datetime(2024, 2, 1, tzinfo=zone), None, 1, None, "eu"),
    ]
    by_rows = list(EventMapper().map(rows, columns=COLUMNS))
    chunked = [item for chunk in EventMapper().map_chunks(rows, columns=COLUMNS) for item in chunk]
    assert chunked == by_rows
    hour = "09" if isinstance(zone, _NamedUtc) else "10"
    assert f'"timestamp":"2024-01-01T{hour}:00:00.000005Z"'.encode() in by_rows[0].data


def test_the_datetime_probe_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An orjson that writes datetimes otherwise (no Z, here) turns the column path off."""
    real = _columns.orjson.dumps

    class NoUtcZ:
        OPT_UTC_Z = _columns.orjson.OPT_UTC_Z

        @staticmethod
        def dumps(obj: Any, option: int = 0) -> bytes:
            return real(obj, option=option & ~NoUtcZ.OPT_UTC_Z)

    assert _columns._writes_datetimes_as_isoformat()
    monkeypatch.setattr(_columns, "orjson", NoUtcZ)
    assert not _columns._writes_datetimes_as_isoformat()


def test_this_orjson_writes_datetimes_as_the_row_loop() -> None:
    """The import probe passes with the pinned orjson: the column path is on (else it is silently slow)."""
    assert _columns.DATETIMES


def test_without_the_datetime_probe_the_row_loop_maps_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_columns, "DATETIMES", False)
    options = {"metadata_columns": ["units", "recorded_at", "region"]}
    by_rows = list(EventMapper(**options).map(DATETIME_ROWS, columns=COLUMNS))
    mapper = EventMapper(**options)
    seen = mapper._content
    calls: list[Any] = []
    monkeypatch.setattr(mapper, "_content", lambda *args: calls.append(args) or seen(*args))
    chunked = [item for chunk in mapper.map_chunks(DATETIME_ROWS, columns=COLUMNS) for item in chunk]
    assert len(calls) == len(DATETIME_ROWS)
    assert chunked == by_rows


class _NoOffset(tzinfo):
    """A zone that has no offset for any value (its datetimes are read in the mapper's zone)."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None


@pytest.mark.parametrize(
    ("timestamp", "timezone_name"),
    [
        (datetime(2024, 1, 1, tzinfo=dateutil_tz.tzutc()), "UTC"),  # a zone that cannot be hashed
        (datetime(2024, 1, 1, tzinfo=dateutil_tz.tzoffset(None, 7200)), "UTC"),
        (datetime(2024, 1, 1, tzinfo=_NoOffset()), "Europe/Paris"),
        ("2020-01-01T00:00:00+00:60", "UTC"),  # fromisoformat reads it; the row loop refuses it
        ("2020-01-01T00:00:00+24:00", "UTC"),
        ("2020-01-01T00:00:00.123456-23:59", "UTC"),
    ],
)
def test_values_the_column_checks_cannot_judge_get_the_row_loop_result(
    timestamp: Any, timezone_name: str
) -> None:
    rows = [("c", "m", 1, timestamp, None, 1, None, "eu"), ("c", "m", 2, timestamp, None, 1, None, "eu")]
    options = {"metadata_columns": ["units", "recorded_at", "region"], "timezone": timezone_name}
    by_rows = EventMapper(**options).map(rows, columns=COLUMNS)
    chunked = [item for chunk in EventMapper(**options).map_chunks(rows, columns=COLUMNS) for item in chunk]
    assert chunked == list(by_rows)


def test_rejections_are_counted_in_row_order() -> None:
    """Too large (row 0) before a bad timestamp (row 1), as the row loop meets them."""
    rows = [
        ("c" * 200, "m", 1, "2024-01-01T00:00:00Z", None, 1, None, "eu"),
        ("c", "m", 1, "x", None, 1, None, "eu"),
    ]
    by_rows, by_columns = EventMapper(max_event_bytes=128), EventMapper(max_event_bytes=128)
    list(by_rows.map(rows, columns=COLUMNS))
    list(by_columns.map_chunks(rows, columns=COLUMNS))
    assert (
        list(by_columns.rejections_by_code)
        == list(by_rows.rejections_by_code)
        == [
            "event_too_large",
            "invalid_timestamp",
        ]
    )
