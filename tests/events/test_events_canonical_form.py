"""
Property tests of the one mapping path against the documented canonical form.

SQL-shaped tuple rows (text ids with padding, ``Decimal``/``int``/``float``/text numbers, aware and
naive datetimes, ISO text) map to events whose fields are the canonical form of the row: stripped
ids, the exact decimal value, the UTC instant, the metadata columns; ``map`` and ``map_chunks``
give the same items.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enso_provider.events import Event, EventMapper

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ["customer_entity_id", "metric", "value", "timestamp", "region"]
UTC = timezone.utc

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=12)
padded_ids = st.tuples(st.sampled_from(["", " ", "  \t"]), ids, st.sampled_from(["", " ", "\n"])).map("".join)
decimals = st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=6)
numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
    decimals,
    decimals.map(str),
)
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1))
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), ZoneInfo("America/New_York")])
timestamps = st.one_of(
    instants.map(lambda d: d.replace(tzinfo=UTC)),
    st.tuples(instants, zones).map(lambda p: p[0].replace(tzinfo=UTC).astimezone(p[1])),
    instants,  # naive: read in the mapper's zone (UTC here)
    instants.map(lambda d: d.isoformat() + "Z"),
)
rows = st.lists(st.tuples(padded_ids, ids, numbers, timestamps, st.one_of(st.none(), ids)), max_size=30)


def _exact(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _instant(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@PROPERTY
@given(rows)
def test_events_hold_the_canonical_form_of_their_rows(batch: list[tuple[Any, ...]]) -> None:
    items = list(EventMapper(namespace="ns", metadata_columns=["region"]).map(batch, COLUMNS))
    assert len(items) == len(batch)
    for item, (cid, metric, value, ts, region) in zip(items, batch, strict=True):
        assert isinstance(item, Event), item
        event = json.loads(item.data, parse_float=Decimal)
        assert event["CustomerEntityId"] == cid.strip()
        assert event["metric"] == metric.strip()
        assert Decimal(event["value"]) == _exact(value)
        sent = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert event["timestamp"].endswith("Z")
        assert sent == _instant(ts)
        assert event["metadata"] == {"region": region}
        assert event["eventId"] == item.event_id
        assert list(event) == [*sorted(set(event) - {"eventId"}), "eventId"]


@PROPERTY
@given(rows, st.integers(min_value=1, max_value=7))
def test_map_and_map_chunks_give_the_same_items(batch: list[tuple[Any, ...]], split: int) -> None:
    whole = list(EventMapper(namespace="ns", metadata_columns=["region"]).map(batch, COLUMNS))
    mapper = EventMapper(namespace="ns", metadata_columns=["region"])
    chunked = [
        item
        for start in range(0, len(batch), split)
        for chunk in mapper.map_chunks(batch[start : start + split], COLUMNS)
        for item in chunk
    ]
    assert chunked == whole


@PROPERTY
@given(rows)
def test_dict_rows_and_tuple_rows_of_the_same_values_agree(batch: list[tuple[Any, ...]]) -> None:
    as_tuples = list(EventMapper(namespace="ns", metadata_columns=["region"]).map(batch, COLUMNS))
    as_dicts = list(
        EventMapper(namespace="ns", metadata_columns=["region"]).map(
            dict(zip(COLUMNS, row, strict=True)) for row in batch
        )
    )
    assert as_dicts == as_tuples
