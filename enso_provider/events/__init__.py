"""
Rows to Enso events: field mapping, normalisation, validation and the deterministic ``eventId``.

Pure Python, no I/O and no Airflow: the operator feeds rows to an :class:`EventMapper`,
which yields exactly one :class:`Event` (encoded once, ready for :func:`encode_batch`) or
one :class:`Rejection` (never sent, reported in the API's failed-record shape) per row.

Example::

    mapper = EventMapper(defaults={"metric": "api_calls"}, job_id="nightly", namespace="dag/task")
    for item in mapper.map(cursor.fetchmany(10_000), columns=[d[0] for d in cursor.description]):
        ...
"""

from __future__ import annotations

from enso_provider.events import ids
from enso_provider.events._json import decode_event, dumps, encode_batch, is_missing, json_safe
from enso_provider.events._mapper import EventMapper
from enso_provider.events._records import (
    CUSTOMER_ENTITY_ID,
    DUPLICATE_EVENT_ID,
    EVENT_ID,
    EVENT_TOO_LARGE,
    FIELDS,
    INVALID_CUSTOMER_ENTITY_ID,
    INVALID_EVENT_ID,
    INVALID_JOB_ID,
    INVALID_METADATA,
    INVALID_METRIC,
    INVALID_ROW,
    INVALID_TIMESTAMP,
    INVALID_VALUE,
    JOB_ID,
    METADATA,
    METRIC,
    MISSING_CUSTOMER_ENTITY_ID,
    MISSING_METRIC,
    RECOGNISED_NAMES,
    REJECTION_CODES,
    TIMESTAMP,
    VALUE,
    Event,
    Rejection,
    field_for,
)
from enso_provider.events._timestamps import TIMESTAMP_MAX, TIMESTAMP_MIN, format_utc

__all__ = [
    "CUSTOMER_ENTITY_ID",
    "DUPLICATE_EVENT_ID",
    "EVENT_ID",
    "EVENT_TOO_LARGE",
    "FIELDS",
    "INVALID_CUSTOMER_ENTITY_ID",
    "INVALID_EVENT_ID",
    "INVALID_JOB_ID",
    "INVALID_METADATA",
    "INVALID_METRIC",
    "INVALID_ROW",
    "INVALID_TIMESTAMP",
    "INVALID_VALUE",
    "JOB_ID",
    "METADATA",
    "METRIC",
    "MISSING_CUSTOMER_ENTITY_ID",
    "MISSING_METRIC",
    "RECOGNISED_NAMES",
    "REJECTION_CODES",
    "TIMESTAMP",
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "VALUE",
    "Event",
    "EventMapper",
    "Rejection",
    "decode_event",
    "dumps",
    "encode_batch",
    "field_for",
    "format_utc",
    "ids",
    "is_missing",
    "json_safe",
]
