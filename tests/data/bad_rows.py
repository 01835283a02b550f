"""
The bad-input corpus: rows that cannot become a valid event, and rows that look bad but are fine.

Each kind says what must happen to each of its rows: a local rejection with its precise code
(never sent), an acceptance (with the fields the stored event must have), or Enso's own refusal
where only Enso can know (an unknown customer: 2002). Python objects are used where XCom could not
carry the value (NaN, infinity, NaT, datetimes, objects), so these rows go through
``EnsoBatchEventsOperator.execute``; the SQL tests feed NaN and infinity through real databases.

Every row carries a ``case`` column, collected into ``metadata``, so a stored event names its kind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

ACCEPT = "accept"
#: Refused by Enso, not locally: only Enso knows its customers.
ENSO_2002 = "enso:2002"
#: A column to drop from the base row.
DROP = object()

BASE: dict[str, Any] = {
    "customer_entity_id": "cust_01",
    "metric": "api_calls",
    "value": 1.5,
    "timestamp": "2024-05-01T10:00:00Z",
}
#: Customers the emulator must know for the acceptance cases.
EXTRA_CUSTOMERS = ("42", "客户_é", "cust\u00e9")
EPOCH_S = 1714557600  # 2024-05-01T10:00:00Z
EPOCH_MS = EPOCH_S * 1000


class Unserialisable:
    """A value JSON has no form for."""

    def __repr__(self) -> str:
        return "<Unserialisable>"


def with_cyclic_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row_mapper whose metadata refers to itself."""
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return {**row, "metadata": loop}


@dataclass(frozen=True)
class BadRow:
    """
    One kind of bad (or bad-looking) input.

    :param kind: a unique name.
    :param changes: per row, the changes to ``BASE`` (``DROP`` removes a column), or a whole
        non-mapping row.
    :param expect: per row, a local code, ``ACCEPT`` or ``ENSO_2002``.
    :param options: operator options the kind needs (``timezone``, ``timestamp_unit``, ...).
    :param stored: for accepted rows, fields the stored event must have (``metadata`` compared by key).
    :param says: a phrase the rejection's message must contain (for the first rejected row).
    """

    kind: str
    changes: tuple[Any, ...]
    expect: tuple[str, ...]
    options: tuple[tuple[str, Any], ...] = ()
    stored: Mapping[str, Any] = field(default_factory=dict)
    says: str | None = None

    def rows(self) -> list[Any]:
        out: list[Any] = []
        for change in self.changes:
            if not isinstance(change, Mapping):
                out.append(change)
                continue
            row = {**BASE, "case": self.kind}
            for column, value in change.items():
                if value is DROP:
                    row.pop(column, None)
                else:
                    row[column] = value
            out.append(row)
        return out


def one(
    kind: str, expect: str, says: str | None = None, stored: Mapping[str, Any] | None = None, **change: Any
) -> BadRow:
    return BadRow(kind, (change,), (expect,), stored=stored or {}, says=says)


def with_options(case: BadRow, **options: Any) -> BadRow:
    return BadRow(
        case.kind, case.changes, case.expect, tuple(sorted(options.items())), case.stored, case.says
    )


TZ_PARIS = {"timezone": "Europe/Paris"}
UNIT_S = {"timestamp_unit": "s"}
UNIT_MS = {"timestamp_unit": "ms"}
KEYED = {"event_id_column": "row_key"}

CASES: list[BadRow] = [
    # -- customer ids -------------------------------------------------------------------------------
    one(
        "customer None", "missing_customer_entity_id", "CustomerEntityId is missing", customer_entity_id=None
    ),
    one("customer empty", "missing_customer_entity_id", "CustomerEntityId is missing", customer_entity_id=""),
    one("customer whitespace", "missing_customer_entity_id", customer_entity_id=" \t\n "),
    one("customer no-break space", "missing_customer_entity_id", customer_entity_id="\u00a0"),
    one("customer NaN (pandas gap)", "missing_customer_entity_id", customer_entity_id=float("nan")),
    one("customer boolean", "invalid_customer_entity_id", "is a boolean", customer_entity_id=True),
    one("customer fractional float", "invalid_customer_entity_id", "non-integral", customer_entity_id=1.5),
    one("customer bytes", "invalid_customer_entity_id", "not an identifier", customer_entity_id=b"cust_01"),
    one(
        "customer lone surrogate", "invalid_customer_entity_id", "not valid text", customer_entity_id="\ud800"
    ),
    one("customer integral float", ACCEPT, stored={"CustomerEntityId": "42"}, customer_entity_id=42.0),
    one("customer padded", ACCEPT, stored={"CustomerEntityId": "cust_01"}, customer_entity_id="  cust_01  "),
    one("customer unknown", ENSO_2002, customer_entity_id="cust_nobody"),
    # -- metric -------------------------------------------------------------------------------------
    one("metric None", "missing_metric", "metric is missing", metric=None),
    one("metric blank", "missing_metric", metric="   "),
    one("metric dict", "invalid_metric", "not an identifier", metric={"name": "x"}),
    # -- value --------------------------------------------------------------------------------------
    one("value None", "invalid_value", "value is missing", value=None),
    one("value NaN", "invalid_value", "missing", value=float("nan")),
    one("value +infinity", "invalid_value", "not a finite number", value=float("inf")),
    one("value -infinity", "invalid_value", "not a finite number", value=float("-inf")),
    one("value numpy NaN", "invalid_value", value=np.float64("nan")),
    one("value numpy infinity", "invalid_value", "not a finite number", value=np.float32("inf")),
    one("value Decimal NaN", "invalid_value", value=Decimal("NaN")),
    one("value Decimal infinity", "invalid_value", "not a finite number", value=Decimal("Infinity")),
    one("value pandas NA", "invalid_value", value=pd.NA),
    one("value True", "invalid_value", "is a boolean", value=True),
    one("value numpy bool", "invalid_value", "is a boolean", value=np.bool_(False)),
    one("value text", "invalid_value", "is not a number", value="n/a"),
    one("value empty text", "invalid_value", "value is missing", value=""),
    one("value text 'NaN'", "invalid_value", "is not a number", value="NaN"),
    one("value text 'Infinity'", "invalid_value", "is not a number", value="Infinity"),
    one("value beyond a double", "invalid_value", "beyond the range of a double", value="1e400"),
    one("value huge integer", "invalid_value", "beyond the range of a double", value=10**400),
    one("value complex", "invalid_value", "not a number", value=1j),
    one("value list", "invalid_value", "not a number", value=[1]),
    one("value column missing", "invalid_value", "value is missing: no column maps to it", value=DROP),
    one("value numeric text", ACCEPT, stored={"value": 42}, value=" 42 "),
    one("value exact Decimal", ACCEPT, stored={"value": 0.1}, value=Decimal("0.100")),
    one("value negative zero", ACCEPT, stored={"value": 0}, value=-0.0),
    # -- timestamps ---------------------------------------------------------------------------------
    one("timestamp None", "invalid_timestamp", "timestamp is missing", timestamp=None),
    one("timestamp NaN", "invalid_timestamp", "timestamp is missing", timestamp=float("nan")),
    one("timestamp pandas NaT", "invalid_timestamp", "timestamp is missing", timestamp=pd.NaT),
    one("timestamp numpy NaT", "invalid_timestamp", "timestamp is missing", timestamp=np.datetime64("NaT")),
    one("timestamp garbage", "invalid_timestamp", "not an ISO 8601 date-time", timestamp="yesterday"),
    one(
        "timestamp JS invalid date",
        "invalid_timestamp",
        "not an ISO 8601",
        timestamp="NaN-NaN-NaN NaN:NaN:NaN.NaN",
    ),
    one("timestamp empty text", "invalid_timestamp", timestamp=""),
    one("timestamp month 13", "invalid_timestamp", "not a valid date-time", timestamp="2024-13-01T00:00:00Z"),
    one(
        "timestamp 30 February",
        "invalid_timestamp",
        "not a valid date-time",
        timestamp="2024-02-30T00:00:00Z",
    ),
    one(
        "timestamp leap second",
        "invalid_timestamp",
        "not a valid date-time",
        timestamp="2024-06-30T23:59:60Z",
    ),
    one(
        "timestamp offset +25:00",
        "invalid_timestamp",
        "invalid UTC offset",
        timestamp="2024-05-01T10:00:00+25:00",
    ),
    one(
        "timestamp before 1970",
        "invalid_timestamp",
        "outside the supported range",
        timestamp="1969-12-31T23:59:59Z",
    ),
    one("timestamp year 9999", "invalid_timestamp", "outside the supported range", timestamp=dt.datetime.max),
    one("timestamp year 0", "invalid_timestamp", timestamp="0000-01-01T00:00:00Z"),
    one(
        "timestamp year 1 with offset",
        "invalid_timestamp",
        timestamp=dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    ),
    one(
        "timestamp numpy beyond 2261",
        "invalid_timestamp",
        "outside the supported range",
        timestamp=np.datetime64("2300-01-01"),
    ),
    one(
        "timestamp fullwidth digits",
        "invalid_timestamp",
        timestamp="\uff12\uff10\uff12\uff14-05-01T10:00:00Z",
    ),
    one("timestamp time of day only", "invalid_timestamp", "not a date-time", timestamp=dt.time(10, 0)),
    one("timestamp boolean", "invalid_timestamp", "is a boolean", timestamp=True),
    one(
        "timestamp column missing",
        "invalid_timestamp",
        "timestamp is missing: no column maps to it",
        timestamp=DROP,
    ),
    one(
        "timestamp date only",
        ACCEPT,
        stored={"timestamp": "2024-05-01T00:00:00Z"},
        timestamp=dt.date(2024, 5, 1),
    ),
    one(
        "timestamp offset",
        ACCEPT,
        stored={"timestamp": "2024-05-01T08:00:00Z"},
        timestamp="2024-05-01T10:00:00+02:00",
    ),
    one(
        "timestamp nanoseconds",
        ACCEPT,
        stored={"timestamp": "2024-05-01T10:00:00.123456Z"},
        timestamp=np.datetime64("2024-05-01T10:00:00.123456789"),
    ),
    one(
        "timestamp aware pandas",
        ACCEPT,
        stored={"timestamp": "2024-05-01T10:00:00Z"},
        timestamp=pd.Timestamp("2024-05-01 12:00", tz="Europe/Paris"),
    ),
    one(
        "timestamp naive read as UTC",
        ACCEPT,
        stored={"timestamp": "2024-05-01T12:00:00Z"},
        timestamp=dt.datetime(2024, 5, 1, 12),
    ),
    # Naive timestamps in a declared zone: the zone, never the machine's clock.
    with_options(
        one(
            "timestamp naive in Paris",
            ACCEPT,
            stored={"timestamp": "2024-05-01T10:00:00Z"},
            timestamp="2024-05-01T12:00:00",
        ),
        **TZ_PARIS,
    ),
    with_options(
        one(
            "timestamp naive datetime in Paris",
            ACCEPT,
            stored={"timestamp": "2024-01-15T11:00:00Z"},
            timestamp=dt.datetime(2024, 1, 15, 12),
        ),
        **TZ_PARIS,
    ),
    with_options(
        one(
            "timestamp in the Paris DST gap",
            ACCEPT,
            stored={"timestamp": "2024-03-31T01:30:00Z"},
            timestamp="2024-03-31T02:30:00",
        ),
        **TZ_PARIS,
    ),
    with_options(
        one(
            "timestamp ambiguous in Paris",
            ACCEPT,
            stored={"timestamp": "2024-10-27T00:30:00Z"},
            timestamp="2024-10-27T02:30:00",
        ),
        **TZ_PARIS,
    ),
    with_options(
        one(
            "timestamp aware ignores the zone option",
            ACCEPT,
            stored={"timestamp": "2024-05-01T10:00:00Z"},
            timestamp="2024-05-01T10:00:00Z",
        ),
        **TZ_PARIS,
    ),
    # -- epoch numbers ------------------------------------------------------------------------------
    one("epoch seconds without unit", "invalid_timestamp", "set timestamp_unit", timestamp=EPOCH_S),
    one("epoch milliseconds without unit", "invalid_timestamp", "set timestamp_unit", timestamp=EPOCH_MS),
    one(
        "epoch seconds as text without unit",
        "invalid_timestamp",
        "set timestamp_unit",
        timestamp=str(EPOCH_S),
    ),
    with_options(
        one(
            "epoch seconds with unit s",
            ACCEPT,
            stored={"timestamp": "2024-05-01T10:00:00Z"},
            timestamp=EPOCH_S,
        ),
        **UNIT_S,
    ),
    with_options(
        one(
            "epoch fractional seconds",
            ACCEPT,
            stored={"timestamp": "2024-05-01T10:00:00.123456Z"},
            timestamp=EPOCH_S + 0.123456,
        ),
        **UNIT_S,
    ),
    with_options(
        one(
            "epoch seconds as text with unit s",
            ACCEPT,
            stored={"timestamp": "2024-05-01T10:00:00Z"},
            timestamp=str(EPOCH_S),
        ),
        **UNIT_S,
    ),
    with_options(
        one(
            "epoch milliseconds read as seconds",
            "invalid_timestamp",
            "outside the supported range",
            timestamp=EPOCH_MS,
        ),
        **UNIT_S,
    ),
    with_options(
        one("epoch negative", "invalid_timestamp", "outside the supported range", timestamp=-1), **UNIT_S
    ),
    with_options(
        one("epoch NaN", "invalid_timestamp", "timestamp is missing", timestamp=float("nan")), **UNIT_S
    ),
    with_options(
        one("epoch infinity", "invalid_timestamp", "not a finite number", timestamp=float("inf")), **UNIT_S
    ),
    with_options(one("epoch boolean", "invalid_timestamp", "is a boolean", timestamp=False), **UNIT_S),
    with_options(
        one(
            "epoch milliseconds with unit ms",
            ACCEPT,
            stored={"timestamp": "2024-05-01T10:00:00Z"},
            timestamp=EPOCH_MS,
        ),
        **UNIT_MS,
    ),
    # Seconds read as milliseconds land in January 1970: in range, so accepted as given. Pinned here
    # so that a change to this (documented) behaviour is a deliberate one.
    with_options(
        one(
            "epoch seconds read as milliseconds",
            ACCEPT,
            stored={"timestamp": "1970-01-20T20:15:57.600000Z"},
            timestamp=EPOCH_S,
        ),
        **UNIT_MS,
    ),
    # -- metadata -----------------------------------------------------------------------------------
    one(
        "metadata unserialisable object",
        "invalid_metadata",
        "cannot be encoded as JSON",
        metadata={"o": Unserialisable()},
    ),
    # Airflow itself walks operator arguments at construction, so a cycle arrives from a row_mapper.
    with_options(
        one("metadata cyclic", "invalid_metadata", "cannot be encoded as JSON"),
        row_mapper=with_cyclic_metadata,
    ),
    one("metadata text not JSON", "invalid_metadata", "is not a JSON object", metadata="{not json"),
    one("metadata JSON array", "invalid_metadata", "is not a JSON object", metadata="[1, 2]"),
    one("metadata list", "invalid_metadata", "is not an object", metadata=[1, 2]),
    one("metadata lone surrogate", "invalid_metadata", "cannot be encoded as JSON", metadata={"s": "\udc80"}),
    one(
        "metadata oversized", "event_too_large", "more than max_event_bytes", metadata={"blob": "x" * 70_000}
    ),
    one("metadata NaN becomes null", ACCEPT, stored={"metadata": {"x": None}}, metadata={"x": float("nan")}),
    one("metadata JSON text", ACCEPT, stored={"metadata": {"a": 1}}, metadata='{"a": 1}'),
    one(
        "metadata odd values",
        ACCEPT,
        stored={"metadata": {"1": "a", "n": "1180591620717411303424", "s": [1, 2, 3]}},
        metadata={1: "a", "n": 2**70, "s": {3, 1, 2}},
    ),
    BadRow(
        "metadata larger than a request",
        ({"metadata": {"blob": "y" * 3000}},),
        ("event_too_large",),
        (("max_batch_bytes", 2048),),
        says="larger than max_batch_bytes",
    ),
    # -- ids ----------------------------------------------------------------------------------------
    one("eventId boolean", "invalid_event_id", "is a boolean", eventId=True),
    one("eventId lone surrogate", "invalid_event_id", "not valid text", eventId="\ud800"),
    one("eventId oversized", "event_too_large", eventId="e" * 70_000),
    one("JobId boolean", "invalid_job_id", "is a boolean", JobId=True),
    BadRow(
        "eventId repeated",
        ({"eventId": "own-1"}, {"eventId": "own-1", "value": 2}),
        (ACCEPT, "duplicate_event_id"),
        says="already used",
    ),
    # -- unicode ------------------------------------------------------------------------------------
    one(
        "unicode customer and metric",
        ACCEPT,
        stored={"CustomerEntityId": "客户_é", "metric": "μ-calls 🚀"},
        customer_entity_id="客户_é",
        metric="μ-calls 🚀",
    ),
    # Decomposed é is another string: never normalised behind the user's back, so Enso refuses it.
    one("unicode decomposed customer", ENSO_2002, customer_entity_id="cust" + "e\u0301"),
    one(
        "unicode composed customer",
        ACCEPT,
        stored={"CustomerEntityId": "cust\u00e9"},
        customer_entity_id="cust\u00e9",
    ),
    # -- duplicated rows ----------------------------------------------------------------------------
    # The same usage twice is two events (ids with an occurrence number), not one.
    BadRow("row repeated verbatim", ({"value": 7}, {"value": 7}), (ACCEPT, ACCEPT)),
    with_options(
        BadRow(
            "row key repeated",
            ({"row_key": "k1"}, {"row_key": "k1", "value": 9}),
            (ACCEPT, "duplicate_event_id"),
            says="already used",
        ),
        **KEYED,
    ),
    with_options(
        one("row key missing", "invalid_event_id", "event_id_column 'row_key'", row_key=None), **KEYED
    ),
    # -- wrong columns and shapes -------------------------------------------------------------------
    one(
        "column 'customer'",
        "missing_customer_entity_id",
        "no column maps to it",
        customer_entity_id=DROP,
        customer="cust_01",
    ),
    BadRow(
        "column 'customer-entity-id'",
        ({"customer_entity_id": DROP, "customer-entity-id": "cust_01"},),
        ("missing_customer_entity_id",),
    ),
    one("column 'amount'", "invalid_value", "no column maps to it", value=DROP, amount=3),
    one(
        "column 'time'",
        "invalid_timestamp",
        "no column maps to it",
        timestamp=DROP,
        time="2024-05-01T10:00:00Z",
    ),
    one(
        "column 'Metric' in capitals", ACCEPT, stored={"metric": "api_calls"}, metric=DROP, METRIC="api_calls"
    ),
    one(
        "columns that both mean the customer",
        "invalid_row",
        "all map to CustomerEntityId",
        customerentityid="cust_02",
    ),
    BadRow(
        "row not a mapping",
        (["cust_01", "api_calls", 1, "2024-05-01T10:00:00Z"],),
        ("invalid_row",),
        says="not a mapping",
    ),
    BadRow("row None", (None,), ("invalid_row",), says="not a mapping"),
]
