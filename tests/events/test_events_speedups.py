"""
The C fast path gives what the pure-Python loop gives, byte for byte: events, rejections, ids,
occurrence numbers and the counter's state, on plausible and hostile rows alike.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enso_provider.events import Event, EventMapper, Rejection
from enso_provider.events import _native as native
from enso_provider.events._occurrences import OccurrenceCounter

speedups = native.speedups
pytestmark = pytest.mark.skipif(speedups is None, reason="the C fast path is not built here")

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
COLUMNS = ["customer_entity_id", "metric", "value", "timestamp", "region", "plan"]


def test_the_fast_path_is_built_in_ci() -> None:
    """CI installs with a compiler: a missing build must fail there, not pass on the slow path."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        assert speedups is not None
        assert native.speedups is not None


# ---------------------------------------------------------------- primitives


@pytest.mark.parametrize("person", [b"enso-content-v1", b"", b"p" * 16])
def test_blake2b_matches_hashlib(person: bytes) -> None:
    rnd = random.Random(7)
    for size in [*range(0, 300), 383, 384, 385, 1000, 65_536]:
        data = rnd.randbytes(size)
        expected = hashlib.blake2b(data, digest_size=16, person=person).digest()
        assert speedups.blake2b_16(person, data) == expected, size


def _random_doubles(rnd: random.Random, n: int) -> list[float]:
    out = [
        0.0,
        -0.0,
        1e-4,
        -1e-4,
        0.00015,
        1e9,
        1e9 - 0.0001,
        999_999_999.9999,
        5e-324,
        1.7976931348623157e308,
    ]
    for _ in range(n):
        out.append(struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0])
        for k in range(7):
            out.append(round(rnd.uniform(-1e10, 1e10), k))
            out.append(round(rnd.uniform(-10, 10), k))
            out.append(round(rnd.expovariate(0.001), k))
    return [x for x in out if math.isfinite(x)]


def test_float_text_is_orjsons_or_defers() -> None:
    """Where the fast path writes a float itself, it writes orjson's text; exponent forms defer."""
    written = 0
    for x in _random_doubles(random.Random(11), 40_000):
        text = speedups.float_text(x)
        if text is not None:
            assert text == orjson.dumps(x), x
            written += 1
    assert written > 200_000


def test_rehash_matches_the_python_doubling(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(3)
    fingerprints = [rnd.getrandbits(64) for _ in range(20_000)] * 2
    with_c = OccurrenceCounter()
    counts_c = [with_c.add(f) for f in fingerprints]
    monkeypatch.setattr(native, "speedups", None)
    pure = OccurrenceCounter()
    counts_py = [pure.add(f) for f in fingerprints]
    assert counts_c == counts_py
    assert [t.tobytes() for t in with_c.tables] == [t.tobytes() for t in pure.tables]
    assert with_c.room == pure.room
    assert with_c.masks == pure.masks


def test_rehash_refuses_a_table_too_small() -> None:
    from array import array

    with pytest.raises(ValueError, match="larger power of 2"):
        speedups.rehash(array("Q", [0]) * 64, array("Q", [0]) * 64)


# ---------------------------------------------------------------- mapping: both paths agree


def _as_records(items: list[Event | Rejection]) -> list[Any]:
    return [item if isinstance(item, Event) else ("rejection", item.as_record()) for item in items]


def _map_both(
    monkeypatch: pytest.MonkeyPatch, chunks: list[list[Any]], columns: list[str], **options: Any
) -> tuple[list[Any], list[Any], EventMapper, EventMapper]:
    fast = EventMapper(**options)
    fast_items = [item for chunk in chunks for part in fast.map_chunks(chunk, columns) for item in part]
    with monkeypatch.context() as m:
        m.setattr(native, "speedups", None)
        pure = EventMapper(**options)
        pure_items = [item for chunk in chunks for part in pure.map_chunks(chunk, columns) for item in part]
    # Every row meets the C path first when each comes alone (after a row it leaves, the Python
    # loop takes a growing stretch of the rows that follow, which a long list would hide).
    single = EventMapper(**options)
    singles = [
        item
        for chunk in chunks
        for row in chunk
        for part in single.map_chunks([row], columns)
        for item in part
    ]
    assert _as_records(singles) == _as_records(fast_items)
    # map() is the reference loop, one row at a time, whether or not the fast path is built.
    lazy = EventMapper(**options)
    assert _as_records([item for chunk in chunks for item in lazy.map(chunk, columns=columns)]) == (
        _as_records(pure_items)
    )
    return _as_records(fast_items), _as_records(pure_items), fast, pure


def _assert_same(
    monkeypatch: pytest.MonkeyPatch, chunks: list[list[Any]], columns: list[str], **options: Any
):
    fast_items, pure_items, fast, pure = _map_both(monkeypatch, chunks, columns, **options)
    assert fast_items == pure_items
    assert fast.rows_seen == pure.rows_seen
    assert fast.rejected == pure.rejected
    assert fast.rejections_by_code == pure.rejections_by_code
    fc, pc = fast._occurrences, pure._occurrences
    assert [t.tobytes() for t in fc.tables] == [t.tobytes() for t in pc.tables]
    assert fc.room == pc.room
    assert fc._over == pc._over
    return fast_items


def _usage_rows(n: int, seed: int = 1) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            (
                f"cust_{rnd.randrange(300):04d}",
                rnd.choice(["api_calls", "storage_gb", "seats"]),
                rnd.choice([round(rnd.uniform(0, 1e4), rnd.randrange(6)), rnd.randrange(10**6)]),
                f"2024-03-{1 + i % 28:02d}T{rnd.randrange(24):02d}:00:00Z",
                rnd.choice(["eu", "us", None]),
                rnd.choice(["pro", "team", 3, 2.5, True]),
            )
        )
    return rows


def test_plain_usage_rows_take_the_fast_path_and_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _usage_rows(12_000)
    chunks = [rows[i : i + 5000] for i in range(0, len(rows), 5000)]
    items = _assert_same(monkeypatch, chunks, COLUMNS, metadata_columns=["region", "plan"], namespace="n1")
    assert all(isinstance(item, Event) for item in items)
    mapper = EventMapper(metadata_columns=["region", "plan"])
    list(mapper.map_chunks(rows[:10], COLUMNS))
    plan = mapper._column_plans[tuple(COLUMNS)]
    assert plan.fast  # the C path was taken (and is kept for the next chunk)
    list(mapper.map_chunks(rows[10:20], COLUMNS))
    assert mapper._column_plans[tuple(COLUMNS)] is plan


def test_map_reads_nothing_ahead() -> None:
    """map() stays lazy: a partly read iterator has indexed and counted only what was read."""
    row = ("c1", "api_calls", 1.0, "2024-01-01T00:00:00Z", "eu", "pro")
    mapper = EventMapper(metadata_columns=["region", "plan"])
    items = mapper.map([row] * 10, columns=COLUMNS)
    first = [next(items), next(items)]
    assert mapper.rows_seen == 2
    assert [e.event_id.count("-") for e in first] == [0, 1]
    assert mapper.map_one(row, COLUMNS).event_id.endswith("-3")


def test_huge_max_event_bytes_and_bad_arguments_are_safe() -> None:
    row = ("c1", "api_calls", 1.0, "2024-01-01T00:00:00Z", "eu", "pro")
    mapper = EventMapper(metadata_columns=["region", "plan"], max_event_bytes=(1 << 26) + 100)
    (chunk,) = list(mapper.map_chunks([row], COLUMNS))
    assert isinstance(chunk[0], Event)
    fast = mapper._column_plans[tuple(COLUMNS)].fast
    for start, end in ((-1, 1), (2, 1), (-(10**8), 1)):
        with pytest.raises(ValueError, match="start"):
            fast.map([row], start, end, 0)
    assert fast.map([row], 5, 9, 0) == ([], 5)  # past the end: nothing
    with pytest.raises(RuntimeError, match="once"):
        fast.__init__(*range(17))


def test_repeated_content_counts_occurrences_past_a_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical rows get -2, -3, ... ids; past 63 the counter's overflow dict takes over."""
    row = ("cust_1", "api_calls", 1.0, "2024-01-01T00:00:00Z", "eu", "pro")
    rows = [row] * 150 + _usage_rows(500) + [row] * 20
    items = _assert_same(monkeypatch, [rows[:100], rows[100:]], COLUMNS, metadata_columns=["region", "plan"])
    ids = [item.event_id for item in items if isinstance(item, Event) and b'"cust_1"' in item.data]
    assert "-" not in ids[0]
    assert ids[1].endswith("-2")
    assert ids[169].endswith("-170")


def test_defaults_constants_and_job_id_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(f"c{i % 7}", float(i % 5), f"2024-01-0{1 + i % 9}T00:00:00Z") for i in range(2000)]
    rows += [(f"c{i}", None, None) for i in range(50)]
    _assert_same(
        monkeypatch,
        [rows],
        ["customer_entity_id", "value", "timestamp"],
        defaults={"metric": "api_calls", "metadata": {"source": "warehouse", "b": 1}, "value": 1},
        job_id="job-7",
    )
    # No metric column and no default: every row is a rejection, from either path.
    fast_items, pure_items, _, _ = _map_both(
        monkeypatch, [rows[:20]], ["customer_entity_id", "value", "timestamp"]
    )
    assert fast_items == pure_items
    assert all(item[0] == "rejection" for item in fast_items)


def test_datetimes_decimals_and_integers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    base = datetime(2024, 5, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(3000):
        moment: Any = (
            (base + timedelta(minutes=i)).replace(tzinfo=None) if i % 2 else base + timedelta(hours=i)
        )
        value: Any = [Decimal("1.50"), Decimal(i), i * 10**12, 2**63 + i, 2**70, 1e-7 * i][i % 6]
        rows.append((i % 40, "seats", value, moment, date(2024, 1, 1 + i % 28), i))
    _assert_same(monkeypatch, [rows], COLUMNS, metadata_columns=["region", "plan"])
    _assert_same(monkeypatch, [rows], COLUMNS, metadata_columns=["region"], timezone="Europe/Paris")


def test_rows_near_the_size_limit_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        (f"c{i}", "m", 1.0, "2024-01-01T00:00:00Z", "x" * (i * 3), "p") for i in range(120)
    ] * 3  # repeats: the -2, -3 suffixes are what may tip an event over the limit
    items = _assert_same(
        monkeypatch, [rows], COLUMNS, metadata_columns=["region", "plan"], max_event_bytes=400
    )
    assert any(item[0] == "rejection" for item in items if isinstance(item, tuple))


# ---------------------------------------------------------------- hostile rows, generated

text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", " ", " c1", "c1 ", "c\t1", 'c"1', "c\\1", "\u00e9t\u00e9", "\u2028", "\ud800", "\x7f", "ok"]
    ),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True, places=3),
    text,
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01 10:00", "1700000000", " "]),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
    ),
    st.dates(),
    st.binary(max_size=4),
)
# Rows that are mostly well formed, so that one odd field at a time meets the fast path.
ident = st.one_of(
    st.sampled_from(["c1", "cust_0002", "api_calls"]), st.from_regex(r"[a-z_0-9]{1,8}", fullmatch=True)
)
number = st.one_of(st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6), st.decimals(-1000, 1000, places=2))
stamp = st.sampled_from(["2024-01-01T00:00:00Z", "2024-06-30T23:00:00Z", "2024-01-01T00:00:00+02:00"])
row = st.tuples(
    st.one_of(ident, ident, text, scalar),
    st.one_of(ident, ident, text, scalar),
    st.one_of(number, number, scalar),
    st.one_of(stamp, stamp, scalar),
    st.one_of(ident, text, scalar),
    st.one_of(ident, number, scalar),
)
rows_strategy = st.lists(
    st.one_of(row, st.just(("c", "m", 1.5, "2024-01-01T00:00:00Z", "eu", 1))), max_size=40
)
odd_rows = st.one_of(row, st.just(("too", "short")), st.just(["a", "list", 1, "2024-01-01T00:00:00Z", 1, 2]))


def test_every_character_in_every_text_field_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each code point 0-255 (and a few beyond) inside, before and after text in each text field."""
    chars = [chr(c) for c in range(256)] + ["\u2028", "\u2029", "\ufeff", "\U0001f600", "\ud800", "\udfff"]
    good = ("c1", "api_calls", 1.5, "2024-01-01T00:00:00Z", "eu", "pro")
    rows = []
    for ch in chars:
        for text_value in (f"a{ch}b", ch, f"{ch}a", f"a{ch}"):
            for field in (0, 1, 4, 5):
                bad = list(good)
                bad[field] = text_value
                rows.append(tuple(bad))
    items = _assert_same(monkeypatch, [rows], COLUMNS, metadata_columns=["region", "plan"])
    assert sum(isinstance(item, Event) for item in items) > len(rows) // 2


@PROPERTY
@given(
    rows=rows_strategy,
    extra=st.lists(odd_rows, max_size=3),
    metadata=st.sampled_from([None, ["region"], ["region", "plan"], ["plan", "region"]]),
    job=st.sampled_from([None, "job-1", "j\u00e9"]),
    namespace=st.sampled_from(["", "dag.task", "\u00fc"]),
    max_bytes=st.sampled_from([180, 260, 64 * 1024]),
    split=st.integers(0, 40),
)
def test_any_rows_map_the_same_on_both_paths(
    rows: list[Any],
    extra: list[Any],
    metadata: list[str] | None,
    job: str | None,
    namespace: str,
    max_bytes: int,
    split: int,
) -> None:
    monkeypatch = pytest.MonkeyPatch()
    try:
        everything = rows + extra + rows  # the repeat: duplicate content and occurrence numbers
        chunks = [everything[:split], everything[split:]]
        _assert_same(
            monkeypatch,
            chunks,
            COLUMNS,
            metadata_columns=metadata,
            job_id=job,
            namespace=namespace,
            max_event_bytes=max_bytes,
            timestamp_unit="s",
        )
    finally:
        monkeypatch.undo()


def test_wire_form_timestamps_at_every_edge_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C check of 'YYYY-MM-DDTHH:MM:SSZ' accepts exactly what the Python converter returns as is."""
    stamps = []
    for year in (1969, 1970, 1999, 2000, 2024, 2100, 2200, 2261, 2262, 9999, 0):
        for month in (0, 1, 2, 4, 12, 13):
            for day in (0, 1, 28, 29, 30, 31, 32):
                stamps.append(f"{year:04d}-{month:02d}-{day:02d}T12:00:00Z")
    for clock in ("00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60", "99:99:99"):
        stamps.append(f"2024-02-29T{clock}Z")
    stamps += [
        "2024-01-01T00:00:00z",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:00.000Z",
        "\u0662024-01-01T00:00:00Z",  # a non-ASCII digit
        "+024-01-01T00:00:00Z",
        "2024-1-01T00:00:00ZZ",
    ]
    rows = [(f"c{i % 3}", "m", float(i), stamp, "eu", "pro") for i, stamp in enumerate(stamps)]
    # One row per call: each one meets the C path first (after a row it leaves, the Python loop
    # takes a growing stretch of the next ones).
    chunks = [[row] for row in rows + rows]
    items = _assert_same(monkeypatch, chunks, COLUMNS, metadata_columns=["region", "plan"])
    accepted = {orjson.loads(item.data)["timestamp"] for item in items if isinstance(item, Event)}
    assert "2024-02-29T12:00:00Z" in accepted
    assert "2100-02-29T12:00:00Z" not in accepted
    assert any(isinstance(item, tuple) for item in items)  # some were rejections
