"""Property tests: any row gives exactly one valid event or one rejection; ids are stable and distinct."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enso_provider.events import (
    REJECTION_CODES,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    Event,
    EventMapper,
    Rejection,
    decode_event,
    dumps,
    encode_batch,
    json_safe,
)

PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
WIRE_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z")
WIRE_FIELDS = {"CustomerEntityId", "metric", "value", "timestamp", "metadata", "eventId", "JobId"}
FLOAT_MAX = Decimal(sys.float_info.max)
NAMES = [
    "CustomerEntityId",
    "customer_entity_id",
    "metric",
    "METRIC",
    "value",
    "timestamp",
    "metadata",
    "eventId",
    "event_id",
    "JobId",
    "jobId",
    "job_id",
    "region",
    "n",
]

# ---------------------------------------------------------------- strategies

aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones())
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["", "  ", "nan", "1e3", "-0", "2023-11-07T05:31:56Z", "2023-11-07", "\ud800", "1700000000"]
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    aware,
    st.dates(),
    st.binary(max_size=8),
    st.uuids(),
    st.sampled_from([pd.NaT, pd.NA, np.float64("nan"), np.int64(7), np.bool_(True), np.float32(1.5)]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(0, 9)), inner, max_size=3),
        st.tuples(inner, inner),
    ),
    max_leaves=6,
)
any_rows = st.lists(
    st.one_of(st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), values, max_size=8), scalars),
    max_size=8,
)

# Rows that are mostly valid, so that many events are built and checked.
plausible_value = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1.50", " 42 ", "1e3", "-0.0"]),
)
plausible_time = st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2261, 12, 30)),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2261, 12, 30), timezones=st.timezones()),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2261, 12, 30)).map(
        lambda d: d.isoformat() + "Z"
    ),
    st.dates(min_value=datetime(1970, 1, 2).date(), max_value=datetime(2261, 12, 30).date()),
)
plausible_rows = st.lists(
    st.fixed_dictionaries(
        {
            "customer_entity_id": st.sampled_from(["c1", "c2", " c3 ", 4, "ünï"]),
            "metric": st.sampled_from(["api_calls", "gb"]),
            "value": plausible_value,
            "timestamp": plausible_time,
        },
        optional={
            "metadata": st.dictionaries(st.text(max_size=4), values, max_size=3),
            "region": values,
            "job_id": st.sampled_from(["j1", None, ""]),
        },
    ),
    max_size=12,
)


# ---------------------------------------------------------------- checks


def check_event(item: Event, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    """Everything the API asks of an event."""
    assert len(item.data) <= max_bytes
    event = decode_event(item.data)
    assert set(event) <= WIRE_FIELDS
    assert "jobId" not in event
    for field in ("CustomerEntityId", "metric", "eventId"):
        assert isinstance(event[field], str)
        assert event[field]
        assert event[field] == event[field].strip()
    assert event["eventId"] == item.event_id
    if "JobId" in event:
        assert isinstance(event["JobId"], str)
        assert event["JobId"].strip()
    exact = json.loads(item.data, parse_float=Decimal)["value"]
    assert not isinstance(exact, bool)
    assert isinstance(exact, (int, Decimal))
    assert Decimal(exact).is_finite()
    assert abs(Decimal(exact)) <= FLOAT_MAX
    stamp = event["timestamp"]
    assert WIRE_TIMESTAMP.fullmatch(stamp), stamp
    parsed = datetime.fromisoformat(stamp[:-1])
    assert TIMESTAMP_MIN <= parsed <= TIMESTAMP_MAX
    assert (parsed.microsecond == 0) == ("." not in stamp)
    assert isinstance(event["metadata"], dict)
    return event


def map_all(mapper: EventMapper, rows: list[Any]) -> list[Event | Rejection]:
    items = list(mapper.map(rows))
    assert len(items) == len(rows)
    return items


# ---------------------------------------------------------------- properties


@PROPERTY
@given(rows=any_rows, unit=st.sampled_from([None, "s", "ms"]), tz=st.sampled_from(["UTC", "Asia/Kolkata"]))
def test_any_rows_map_to_exactly_one_valid_event_or_rejection(rows: list[Any], unit: Any, tz: str) -> None:
    mapper = EventMapper(metadata_columns="*", timestamp_unit=unit, timezone=tz)
    items = map_all(mapper, rows)
    assert [i.index for i in items] == list(range(len(rows)))
    for item in items:
        if isinstance(item, Event):
            check_event(item)
        else:
            assert isinstance(item, Rejection)
            assert item.code in REJECTION_CODES
            assert item.error
            assert item.status_code == 400
            dumps(item.as_record())  # the report is JSON-safe
    events = [i.data for i in items if isinstance(i, Event)]
    assert json.loads(encode_batch(events))["events"] == [decode_event(d) for d in events]
    assert mapper.rows_seen == len(rows)
    assert mapper.events_built == len(events)


@PROPERTY
@given(rows=plausible_rows, namespace=st.text(max_size=10))
def test_plausible_rows_become_valid_events_with_stable_distinct_ids(rows: list[Any], namespace: str) -> None:
    items = map_all(EventMapper(metadata_columns=["region"], namespace=namespace), rows)
    events = [i for i in items if isinstance(i, Event)]
    for item in events:
        check_event(item)
    # Distinct across distinct and duplicate rows alike.
    assert len({e.event_id for e in events}) == len(events)
    # Stable: another mapper, same namespace, same rows, same bytes.
    again = map_all(EventMapper(metadata_columns=["region"], namespace=namespace), rows)
    assert [getattr(i, "data", None) for i in items] == [getattr(i, "data", None) for i in again]


@PROPERTY
@given(rows=plausible_rows, data=st.data())
def test_ids_do_not_depend_on_row_order(rows: list[Any], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(rows))

    def ids_by_content(items: list[Event | Rejection]) -> list[tuple[bytes, str]]:
        return sorted(
            (i.data.rsplit(b',"eventId":', 1)[0], i.event_id) for i in items if isinstance(i, Event)
        )

    assert ids_by_content(map_all(EventMapper(), rows)) == ids_by_content(map_all(EventMapper(), shuffled))


@PROPERTY
@given(row=plausible_rows.filter(bool).map(lambda rs: rs[0]), copies=st.integers(2, 5))
def test_duplicate_rows_get_distinct_numbered_ids(row: dict[str, Any], copies: int) -> None:
    items = map_all(EventMapper(), [row] * copies)
    if isinstance(items[0], Rejection):
        assert all(isinstance(i, Rejection) and i.code == items[0].code for i in items)
        return
    ids = [i.event_id for i in items if isinstance(i, Event)]
    assert ids == [ids[0]] + [f"{ids[0]}-{k}" for k in range(2, copies + 1)]


@PROPERTY
@given(value=st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_values_survive_digit_for_digit(value: Decimal) -> None:
    item = EventMapper().map_one(
        {"CustomerEntityId": "c", "metric": "m", "value": value, "timestamp": "2023-01-01"}
    )
    if abs(value) > FLOAT_MAX:
        assert isinstance(item, Rejection)
        assert item.code == "invalid_value"
        return
    assert isinstance(item, Event)
    parsed = json.loads(item.data, parse_float=Decimal, parse_int=Decimal)["value"]
    assert parsed == value  # the exact value (in its canonical form: no trailing zeros)


@PROPERTY
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2261, 12, 30), timezones=st.timezones()
    )
)
def test_aware_timestamps_keep_their_instant(moment: datetime) -> None:
    item = EventMapper(timezone="Europe/Paris").map_one(
        {"CustomerEntityId": "c", "metric": "m", "value": 1, "timestamp": moment}
    )
    assert isinstance(item, Event)
    stamp = decode_event(item.data)["timestamp"]
    back = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=timezone.utc)
    # astimezone, not ==: Python never calls a fold-ambiguous time equal to one in another zone.
    assert back == moment.astimezone(timezone.utc)  # microseconds are kept exactly
    # The same instant written as ISO text with its offset gives the same timestamp.
    text = EventMapper().map_one(
        {"CustomerEntityId": "c", "metric": "m", "value": 1, "timestamp": moment.isoformat()}
    )
    assert isinstance(text, Event)
    assert decode_event(text.data)["timestamp"] == stamp


@PROPERTY
@given(rows=plausible_rows)
def test_tuple_rows_and_mapping_rows_agree(rows: list[dict[str, Any]]) -> None:
    columns = ["customer_entity_id", "metric", "value", "timestamp"]
    as_tuples = [tuple(r[c] for c in columns) for r in rows]
    as_dicts = [{c: r[c] for c in columns} for r in rows]
    a = list(EventMapper().map(as_tuples, columns=columns))
    b = list(EventMapper().map(as_dicts))
    assert [getattr(i, "data", None) for i in a] == [getattr(i, "data", None) for i in b]
    assert [getattr(i, "code", None) for i in a] == [getattr(i, "code", None) for i in b]


@PROPERTY
@given(rows=plausible_rows, split=st.integers(0, 12))
def test_chunking_does_not_change_anything(rows: list[dict[str, Any]], split: int) -> None:
    whole = list(EventMapper().map(rows))
    mapper = EventMapper()
    parts = list(mapper.map(rows[:split])) + list(mapper.map(rows[split:]))
    assert whole == parts


@PROPERTY
@given(value=values)
def test_json_safe_is_deterministic_and_encodable(value: Any) -> None:
    once = json_safe(value)
    assert json_safe(value) == once or once != once  # NaN-free by construction; equality holds
    assert dumps(once) == dumps(json_safe(value))
    json.loads(dumps(once))


@PROPERTY
@given(
    when=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2261, 12, 30)),
    offset=st.integers(-1439, 1439),
)
def test_iso_text_with_any_offset_is_the_same_instant(when: datetime, offset: int) -> None:
    zone = timezone(timedelta(minutes=offset))
    moment = when.replace(tzinfo=zone)
    item = EventMapper().map_one(
        {"CustomerEntityId": "c", "metric": "m", "value": 1, "timestamp": moment.isoformat()}
    )
    expected = (moment.astimezone(timezone.utc)).replace(tzinfo=None)
    if not TIMESTAMP_MIN <= expected <= TIMESTAMP_MAX:
        assert isinstance(item, Rejection)
        assert item.code == "invalid_timestamp"
        return
    assert isinstance(item, Event)
    assert datetime.fromisoformat(decode_event(item.data)["timestamp"][:-1]) == expected


configs = st.fixed_dictionaries(
    {},
    optional={
        "field_map": st.dictionaries(
            st.sampled_from(["CustomerEntityId", "metric", "value", "timestamp", "metadata", "JobId"]),
            st.sampled_from(["a", "b", "c", "value", "A"]),
            max_size=3,
        ),
        "defaults": st.sampled_from([{}, {"metric": "m"}, {"value": 1, "timestamp": "2024-01-01"}]),
        "metadata_columns": st.sampled_from([None, "*", ["a"], ["b", "c"]]),
        "job_id": st.sampled_from([None, "job"]),
        "event_id_column": st.sampled_from([None, "a", "eventId"]),
        "timestamp_unit": st.sampled_from([None, "s", "ms"]),
        "max_event_bytes": st.sampled_from([128, 300, 65536]),
    },
)


def _raising_mapper(row: Any) -> Any:
    if len(row) % 3 == 0:
        raise RuntimeError("boom")
    if len(row) % 3 == 1:
        return list(row)
    return {("k", 1) if isinstance(k, str) and k.startswith("z") else k: v for k, v in row.items()}


@PROPERTY
@given(
    config=configs,
    columns=st.lists(st.sampled_from([*NAMES, "a", "b", "c", "A"]), min_size=1, max_size=6, unique=True),
    data=st.data(),
    use_mapper=st.sampled_from([None, "identity", "raising"]),
)
def test_any_configuration_and_tuple_rows_never_raise(
    config: dict[str, Any], columns: list[str], data: st.DataObject, use_mapper: str | None
) -> None:
    if config.get("field_map") and "eventId" in config["field_map"] and config.get("event_id_column"):
        return
    try:
        mapper = EventMapper(
            **config,
            row_mapper={None: None, "identity": dict, "raising": _raising_mapper}[use_mapper],
        )
    except ValueError:
        return  # e.g. a default the mapper refuses: refused up front, not per row
    rows = data.draw(
        st.lists(
            st.one_of(st.tuples(*[values] * len(columns)), st.lists(values, max_size=7), scalars),
            max_size=6,
        )
    )
    try:
        iterator = mapper.map(rows, columns=columns)
    except ValueError:
        return  # columns that cannot satisfy the options: refused before any row
    items = list(iterator)
    assert [i.index for i in items] == list(range(len(rows)))
    for item in items:
        if isinstance(item, Event):
            check_event(item, config.get("max_event_bytes", 65536))
        else:
            assert item.code in REJECTION_CODES
            dumps(item.as_record())
