"""The deterministic eventId: content hash, namespace, occurrences, and the compact counter behind it."""

from __future__ import annotations

import random
import re
import tracemalloc
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from enso_provider.events import Event, EventMapper, Rejection, decode_event
from enso_provider.events._occurrences import OccurrenceCounter

TS = "2023-11-07T05:31:56Z"
ID = re.compile(r"ev_[0-9a-f]{32}(-[0-9]+)?")


def row(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"CustomerEntityId": "cust_1", "metric": "api_calls", "value": 3, "timestamp": TS}
    base.update(extra)
    return base


def ids(items: list[Event | Rejection]) -> list[str]:
    assert all(isinstance(i, Event) for i in items), items
    return [i.event_id for i in items if isinstance(i, Event)]


def test_id_format_and_it_is_in_the_data() -> None:
    item = EventMapper().map_one(row())
    assert isinstance(item, Event)
    assert ID.fullmatch(item.event_id)
    assert len(item.event_id) == 35
    assert decode_event(item.data)["eventId"] == item.event_id


def test_same_rows_same_namespace_same_ids_across_mappers() -> None:
    rows = [row(value=v) for v in range(50)]
    assert ids(list(EventMapper(namespace="n").map(rows))) == ids(list(EventMapper(namespace="n").map(rows)))


def test_namespace_changes_every_id() -> None:
    a = ids(list(EventMapper(namespace="dag/task/2023-11-07").map([row()])))
    b = ids(list(EventMapper(namespace="dag/task/2023-11-08").map([row()])))
    c = ids(list(EventMapper(namespace="").map([row()])))
    assert len({a[0], b[0], c[0]}) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"CustomerEntityId": "cust_2"},
        {"metric": "other"},
        {"value": 4},
        {"value": 3.5},
        {"timestamp": "2023-11-07T05:31:57Z"},
        {"metadata": {"a": 1}},
        {"JobId": "j"},
    ],
)
def test_any_content_change_changes_the_id(change: dict[str, Any]) -> None:
    mapper = EventMapper()
    base, changed = ids(list(mapper.map([row(), row(**change)])))
    assert base != changed
    assert "-" not in changed[3:]


@pytest.mark.parametrize(
    "value", [3, 3.0, Decimal("3"), Decimal("3.00"), Decimal("0.3E+1"), "3", "3.00", " 3e0 "]
)
def test_the_same_number_in_any_form_gives_the_same_id(value: Any) -> None:
    (first,) = ids([EventMapper().map_one(row(value=3))])
    (again,) = ids([EventMapper().map_one(row(value=value))])
    assert again == first


def test_equal_content_gives_equal_ids_whatever_its_source_form() -> None:
    # Same instant, same metadata, same strings after stripping: the same event, the same id.
    a = EventMapper().map_one(row(timestamp="2023-11-07T06:31:56+01:00", metadata={"b": 1, "a": 2}))
    b = EventMapper().map_one({**row(metadata={"a": 2, "b": 1}), "CustomerEntityId": " cust_1 "})
    assert isinstance(a, Event)
    assert isinstance(b, Event)
    assert a.event_id == b.event_id


def test_identical_rows_stay_separate_events_with_occurrence_ids() -> None:
    got = ids(list(EventMapper().map([row(), row(value=9), row(), row()])))
    first = got[0]
    assert got[2] == first + "-2"
    assert got[3] == first + "-3"
    assert len(set(got)) == 4


def test_ids_do_not_depend_on_row_order() -> None:
    rows = [row(value=v % 7) for v in range(40)]  # heavy duplication
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)

    def by_content(items: list[Event | Rejection]) -> dict[bytes, list[str]]:
        out: dict[bytes, list[str]] = {}
        for item in items:
            assert isinstance(item, Event)
            content = item.data.rsplit(b',"eventId":', 1)[0]
            out.setdefault(content, []).append(item.event_id)
        return {k: sorted(v) for k, v in out.items()}

    assert by_content(list(EventMapper().map(rows))) == by_content(list(EventMapper().map(shuffled)))


def test_occurrences_beyond_the_inline_count_use_the_overflow() -> None:
    got = ids(list(EventMapper().map([row()] * 200)))
    assert got[0] + "-200" == got[-1]
    assert len(set(got)) == 200


def test_the_counter_only_counts_events_that_were_built() -> None:
    mapper = EventMapper(max_event_bytes=300)
    items = list(mapper.map([row(metadata={"x": "y" * 400}), row(), row()]))
    assert isinstance(items[0], Rejection)
    assert ids(items[1:])[1] == ids(items[1:])[0] + "-2"


# ---------------------------------------------------------------- the counter


def test_counter_matches_a_dict() -> None:
    rng = random.Random(7)
    keys = [rng.getrandbits(64) for _ in range(20_000)]
    # Adversarial shapes too: keys sharing a partition, and sharing low bits (probe chains).
    keys += [k << 6 for k in range(2_000)] + [(k << 20) | 5 for k in range(2_000)] + [0, 1, 2**64 - 1]
    stream = keys + rng.sample(keys, 5_000) + [keys[0]] * 100
    rng.shuffle(stream)
    counter = OccurrenceCounter()
    reference: Counter[int] = Counter()
    for key in stream:
        reference[key] += 1
        assert counter.add(key) == reference[key]
    assert len(counter) == len(reference)


def test_counter_memory_is_compact() -> None:
    rng = random.Random(1)
    keys = [rng.getrandbits(64) for _ in range(40_000)]
    tracemalloc.start()
    try:
        counter = OccurrenceCounter()
        for key in keys:
            counter.add(key)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 8 bytes a slot, at most half full: <= 32 bytes per fingerprint (a dict would be ~100).
    assert counter.nbytes <= 32 * len(keys)
    assert peak <= 32 * len(keys) + 200_000  # no Python object per fingerprint
