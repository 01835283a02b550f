"""Items handed over a list at a time are batched exactly as the same items one by one."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enso_provider import delivery as delivery_module
from enso_provider.delivery import Delivery, Failure, ItemChunks
from enso_provider.events import Event, EventMapper, Rejection
from enso_provider.events import _native as native


def _event(index: int, size: int) -> Event:
    body = b'{"CustomerEntityId":"c","eventId":"ev_%d","pad":"' % index
    return Event(index, f"ev_{index}", body + b"x" * max(0, size - len(body) - 2) + b'"}')


def _rejection(index: int) -> Rejection:
    return Rejection(index=index, error="value is missing", code="invalid_value")


def _batches(
    items: Any, batch_size: int, max_batch_bytes: int
) -> tuple[list[list[int]], dict[str, int], list]:
    failures: list[Failure] = []
    delivery = Delivery(
        object(), batch_size=batch_size, max_batch_bytes=max_batch_bytes, on_failure=failures.append
    )
    batches = [[event.index for event in batch] for batch in delivery._batches(items)]
    report = delivery.report
    counts = {"total": report.total, "invalid": report.invalid}
    return batches, counts, [(f.index, f.code) for f in failures]


items_strategy = st.lists(
    st.one_of(
        st.integers(60, 900).map(lambda size: ("event", size)),
        st.integers(3000, 5000).map(lambda size: ("event", size)),  # larger than a 2 KiB batch allows
        st.just(("rejection", 0)),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(
    spec=items_strategy,
    cuts=st.lists(st.integers(0, 120), max_size=8),
    batch_size=st.integers(1, 7),
    max_batch_bytes=st.sampled_from([1024, 2048, 4096, 512 * 1024]),
    with_c=st.booleans(),
)
def test_lists_and_single_items_make_the_same_batches(
    spec: list[tuple[str, int]], cuts: list[int], batch_size: int, max_batch_bytes: int, with_c: bool
) -> None:
    items = [_event(i, size) if kind == "event" else _rejection(i) for i, (kind, size) in enumerate(spec)]
    bounds = sorted({0, len(items), *(c for c in cuts if c <= len(items))})
    chunks = [items[a:b] for a, b in pairwise(bounds)]
    monkeypatch = pytest.MonkeyPatch()
    try:
        if not with_c:
            monkeypatch.setattr(native, "speedups", None)
        one_by_one = _batches(iter(items), batch_size, max_batch_bytes)
        in_lists = _batches(ItemChunks(iter(chunks)), batch_size, max_batch_bytes)
    finally:
        monkeypatch.undo()
    assert in_lists == one_by_one
    batches, counts, failures = in_lists
    assert len(failures) == counts["invalid"]
    assert counts["total"] == len(items)
    assert sum(len(b) for b in batches) + counts["invalid"] == len(items)
    assert all(len(b) <= batch_size for b in batches)


def test_item_chunks_iterate_as_items() -> None:
    items = [_event(0, 100), _rejection(1), _event(2, 100)]
    assert list(ItemChunks(iter([items[:1], [], items[1:]]))) == items


def test_a_mapper_gives_its_items_in_lists_with_the_same_content() -> None:
    columns = ["customer_entity_id", "metric", "value", "timestamp"]
    rows = [(f"c{i % 50}", "api_calls", float(i % 3), "2024-01-01T00:00:00Z") for i in range(5000)]
    rows[10] = ("c1", None, 1.0, "2024-01-01T00:00:00Z")  # a rejection in the middle
    plain = list(EventMapper(namespace="n").map(rows, columns=columns))
    lists = list(EventMapper(namespace="n").map_chunks(rows, columns=columns))
    assert len(lists) > 1
    flat = [item for chunk in lists for item in chunk]
    assert [i if isinstance(i, Event) else i.as_record() for i in flat] == [
        i if isinstance(i, Event) else i.as_record() for i in plain
    ]
    dict_rows = [dict(zip(columns, row, strict=True)) for row in rows[:3000]]
    dict_lists = list(EventMapper(namespace="n").map_chunks(dict_rows))
    assert sum(len(chunk) for chunk in dict_lists) == 3000


def test_fill_batch_stops_where_the_delivery_loop_must_decide() -> None:
    if native.speedups is None:
        pytest.skip("the C fast path is not built here")
    fill = native.speedups.fill_batch
    items: list[Any] = [_event(0, 100), _event(1, 100), _rejection(2), _event(3, 100)]
    batch: list[Event] = []
    assert fill(items, 0, batch, 0, 10, 10_000, Event) == (2, 202)
    assert [e.index for e in batch] == [0, 1]
    assert fill(items, 3, batch, 202, 3, 10_000, Event) == (4, 303)
    assert fill(items, 3, [], 0, 3, 50, Event) == (3, 0)  # too large for the bytes left: the loop decides
    assert delivery_module.native is native
