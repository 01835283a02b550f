"""dumps, json_safe, encode_batch, decode_event."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from enso_provider.events import decode_event, dumps, encode_batch, is_missing, json_safe


def test_dumps_sorts_keys_and_is_compact() -> None:
    assert dumps({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    assert dumps({"b": 1, "a": 2}, sort_keys=False) == b'{"b":1,"a":2}'


def test_dumps_writes_decimals_exactly_and_other_values() -> None:
    out = dumps({"d": Decimal("0.10"), "s": {2, 1}, "n": np.int64(3), "u": uuid.UUID(int=0), "b": b"x"})
    assert json.loads(out, parse_float=Decimal) == {
        "b": "x",
        "d": Decimal("0.10"),
        "n": 3,
        "s": [1, 2],
        "u": "00000000-0000-0000-0000-000000000000",
    }
    assert b'"d":0.10' in out


@pytest.mark.parametrize(
    "bad", [float("nan"), [float("inf")], {"a": {"b": -float("inf")}}, Decimal("NaN"), np.float64("nan")]
)
def test_dumps_refuses_nan_and_infinity(bad: Any) -> None:
    with pytest.raises(ValueError, match="NaN"):
        dumps(bad)


def test_dumps_allows_real_nulls() -> None:
    assert dumps({"a": None}) == b'{"a":null}'


def test_dumps_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError):
        dumps({"a": object()})


def test_encode_batch_and_decode_event() -> None:
    body = encode_batch([b'{"a":1}', b'{"b":2}'])
    assert body == b'{"events":[{"a":1},{"b":2}]}'
    assert json.loads(body) == {"events": [{"a": 1}, {"b": 2}]}
    assert json.loads(encode_batch([])) == {"events": []}
    assert decode_event(b'{"a":1}') == {"a": 1}
    with pytest.raises(ValueError, match="object"):
        decode_event(b"[1]")


@dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("s", "s"),
        (True, True),
        (5, 5),
        (2**70, str(2**70)),
        (1.5, 1.5),
        (float("nan"), None),
        (Decimal("2"), 2),
        (Decimal("2.50"), 2.5),
        (Decimal("Infinity"), None),
        (Decimal("1E+30"), 1e30),
        (datetime(2023, 1, 1, tzinfo=timezone(timedelta(hours=1))), "2022-12-31T23:00:00Z"),
        (datetime(2023, 1, 1, 0, 0, 0, 5), "2023-01-01T00:00:00.000005"),
        (date(2023, 1, 2), "2023-01-02"),
        (time(1, 2, 3), "01:02:03"),
        (timedelta(minutes=1, microseconds=500_000), 60.5),
        (b"\xff\x00a", "\\xff\x00a"),
        ((1, (2,)), [1, [2]]),
        (frozenset({"b", "a"}), ["a", "b"]),
        ({1: {2: 3}}, {"1": {"2": 3}}),
        (range(3), [0, 1, 2]),
        (np.uint8(7), 7),
        (np.datetime64("2023-01-01T00:00:00.000000001"), "2023-01-01T00:00:00"),
        (np.datetime64("NaT"), None),
        (np.timedelta64(2, "s"), 2.0),
        (Point(1), "Point(x=1)"),
    ],
)
def test_json_safe(given: Any, expected: Any) -> None:
    assert json_safe(given) == expected


def test_json_safe_strict_refuses_what_it_would_print() -> None:
    with pytest.raises(TypeError):
        json_safe({"p": Point(1)}, strict=True)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match="deeper"):
        json_safe(cyclic, strict=True)
    assert json_safe(cyclic) is not None  # lenient: never raises


def test_json_safe_survives_objects_that_cannot_even_print() -> None:
    class Nasty:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert json_safe(Nasty()) == "<unprintable Nasty>"


@pytest.mark.parametrize(
    "given", [None, float("nan"), Decimal("NaN"), np.float32("nan"), np.datetime64("NaT")]
)
def test_is_missing(given: Any) -> None:
    assert is_missing(given)


@pytest.mark.parametrize("given", [0, "", 0.0, False, Decimal(0), [], np.float64(1)])
def test_is_not_missing(given: Any) -> None:
    assert not is_missing(given)
