"""
The eventId contract (docs/event-ids.md): golden vectors, no JSON library in the id path, and the id
as a function of the canonical event only.
"""

from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from golden_support import run_vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enso_provider.events import Event, EventMapper, ids

GOLDEN = Path(__file__).with_name("golden_event_ids.json")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_golden_vectors_give_exactly_their_ids_and_bytes() -> None:
    runs = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sum(len(run["rows"]) for run in runs) >= 50
    for run, got in zip(runs, run_vectors(runs), strict=True):
        assert got["expected"] == run["expected"], run["name"]


def test_the_id_module_imports_no_json_library() -> None:
    tree = ast.parse(Path(ids.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"json", "orjson", "ujson", "simplejson", "rapidjson"}
    assert imported <= {
        "__future__",
        "hashlib",
        "collections",
        "decimal",
        "itertools",
        "typing",
        "enso_provider",
    }


@given(st.decimals(allow_nan=False, allow_infinity=False))
@PROPERTY
def test_canonical_numbers_read_back_as_the_exact_value(value: Decimal) -> None:
    text = ids.number(value)
    assert Decimal(text) == value
    assert text == ids.number(Decimal(text))  # a fixed point
    assert not text.startswith("-0") or text.startswith("-0.")


@given(st.floats(allow_nan=False, allow_infinity=False))
@PROPERTY
def test_a_float_is_its_shortest_decimal(value: float) -> None:
    assert ids.number(value) == ids.number(Decimal(repr(value)))
    assert float(ids.number(value)) == value


canonical_rows = st.fixed_dictionaries(
    {
        "CustomerEntityId": st.text(min_size=1, max_size=8).filter(lambda s: s.strip() == s and s),
        "metric": st.sampled_from(["api_calls", "rows", "gb"]),
        "value": st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False),
        "timestamp": st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
        "metadata": st.dictionaries(
            st.text(max_size=4), st.one_of(st.integers(-100, 100), st.text(max_size=4)), max_size=3
        ),
    }
)


def _spellings(row: dict[str, Any], pick: int) -> dict[str, Any]:
    """The same canonical event, written another way: value type, zone, padding, key order."""
    value: Decimal = row["value"]
    stamp: datetime = row["timestamp"]
    forms: list[Any] = [value, str(value), value.quantize(Decimal("0.000001"))]
    if value == value.to_integral_value():
        forms.append(int(value))
    if Decimal(repr(float(value))) == value:
        forms.append(float(value))
    zone = timezone(timedelta(hours=(pick % 27) - 13))
    stamps: list[Any] = [stamp, stamp.replace(tzinfo=timezone.utc).astimezone(zone), stamp.isoformat() + "Z"]
    return {
        "metadata": dict(reversed(list(row["metadata"].items()))),
        "timestamp": stamps[pick % len(stamps)],
        "value": forms[pick % len(forms)],
        "metric": f" {row['metric']} ",
        "CustomerEntityId": row["CustomerEntityId"],
    }


@given(canonical_rows, st.integers(0, 1000))
@PROPERTY
def test_the_id_is_a_function_of_the_canonical_event_only(row: dict[str, Any], pick: int) -> None:
    first = EventMapper(namespace="ns").map_one(row)
    again = EventMapper(namespace="ns").map_one(_spellings(row, pick))
    assert isinstance(first, Event)
    assert isinstance(again, Event)
    assert again.event_id == first.event_id
    assert again.data == first.data


@given(canonical_rows)
@PROPERTY
def test_ordinary_rows_keep_their_landed_v1_ids(row: dict[str, Any]) -> None:
    # Ints, strings, UTC text and metadata of ints and strings: the v2 text is v1's bytes.
    plain = {**row, "value": int(row["value"]), "timestamp": row["timestamp"].isoformat() + "Z"}
    v1 = EventMapper(namespace="ns", event_id_version="v1").map_one(plain)
    v2 = EventMapper(namespace="ns").map_one(plain)
    assert isinstance(v1, Event)
    assert (v2.event_id, v2.data) == (v1.event_id, v1.data)  # type: ignore[union-attr]
