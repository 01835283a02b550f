"""The metadata writer's orjson path gives exactly the canonical form ids.value writes."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enso_provider.events import _metadata, ids
from enso_provider.events._records import FieldError

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e25, max_value=1e25).map(lambda f: float(round(f))),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e5", "a:1e5", "x,1.0]", "\ud800", "\u2028", "\x7f"]),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()),
    st.dates(),
    st.uuids(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)), inner, max_size=3),
        st.tuples(inner, inner),
    ),
    max_leaves=8,
)


def exact(bag: Any) -> str:
    """What the metadata is without the orjson path: ids.value with json_safe's rules, or an error."""
    try:
        return ids.value(bag, _metadata.strict_default)
    except Exception as exc:
        return f"error {type(exc).__name__}"


def written(bag: Any) -> str:
    try:
        return _metadata.canonical_metadata(bag)
    except FieldError:
        return "error"


def test_this_orjson_takes_the_fast_path() -> None:
    assert _metadata.FAST


@PROPERTY
@given(st.dictionaries(st.text(max_size=6), values, min_size=1, max_size=5))
def test_orjson_path_matches_the_canonical_writer(bag: dict[str, Any]) -> None:
    want = exact(bag)
    got = written(bag)
    assert got == want or (got == "error" and want.startswith("error"))


@pytest.mark.parametrize(
    "bag",
    [
        {"f": 1.0},
        {"f": -0.0},
        {"f": [1e16, 1e-7, 1e21, 1e-6, 5e-324]},
        {"d": Decimal("1.500E+3"), "n": Decimal("-0.00")},
        {"t": datetime(2024, 1, 1, 0, 0, 1, 5), "u": datetime(1969, 12, 31, 23, tzinfo=timezone.utc)},
        {"day": date(2024, 2, 29), "big": 2**64, "nan": float("nan")},
        {"s": "colon:1e5 and,1.0]", "t": "1e-5 x1e+5 free-tier"},
    ],
)
def test_odd_numbers_are_written_canonically(bag: dict[str, Any]) -> None:
    assert written(bag) == exact(bag)
