"""
The mapper's arguments, checked once: field names, the field map, defaults, metadata columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import orjson

from enso_provider.events._json import JsonSafeError, json_safe
from enso_provider.events._records import (
    CUSTOMER_ENTITY_ID,
    EVENT_ID,
    FIELDS,
    IDENTIFIER_CODES,
    JOB_ID,
    METADATA,
    METRIC,
    TIMESTAMP,
    VALUE,
    FieldError,
    field_for,
)
from enso_provider.events._values import convert_identifier, convert_value


def field_name(name: Any, where: str) -> str:
    """
    The event field ``name`` stands for.

    :param name: a field name in any recognised spelling.
    :param where: the argument, for the message.
    :raises ValueError: when it is not a field.
    """
    field = field_for(name) if isinstance(name, str) else None
    if field is None:
        raise ValueError(
            f"{where}: {name!r} is not an event field (one of {', '.join(FIELDS)}, "
            "in any case, with or without underscores)"
        )
    return field


def check_field_map(field_map: Mapping[str, str] | None) -> dict[str, str]:
    """``{field: column}`` with fields as on the wire; raises ValueError for a bad entry."""
    result: dict[str, str] = {}
    for name, column in (field_map or {}).items():
        field = field_name(name, "field_map")
        if field in result:
            raise ValueError(f"field_map: {field} is mapped twice")
        if not isinstance(column, str) or not column:
            raise ValueError(f"field_map: the column for {field} must be a non-empty string")
        result[field] = column
    return result


def check_defaults(
    defaults: Mapping[str, Any] | None, job_id: str | None, timestamp: Callable[[Any], str]
) -> dict[str, Any]:
    """
    The constant fields, normalised as a row's values would be.

    :param defaults: ``{field: value}``.
    :param job_id: the ``job_id`` argument (a default JobId).
    :param timestamp: the timestamp conversion of the mapper.
    :raises ValueError: for an unknown field, a bad value, or an eventId default.
    """
    raw: dict[str, Any] = {}
    for name, value in (defaults or {}).items():
        field = field_name(name, "defaults")
        if field in raw:
            raise ValueError(f"defaults: {field} is given twice")
        raw[field] = value
    if job_id is not None:
        if not isinstance(job_id, str) or not job_id.strip():
            raise ValueError(f"job_id must be a non-blank string or None, not {job_id!r}")
        if JOB_ID in raw:
            raise ValueError("job_id and defaults['JobId'] are both set: choose one")
        raw[JOB_ID] = job_id
    if EVENT_ID in raw:
        raise ValueError("defaults cannot hold eventId: every event needs its own (see event_id_column)")
    out: dict[str, Any] = {}
    try:
        for field in (CUSTOMER_ENTITY_ID, METRIC, JOB_ID):
            if field in raw:
                out[field] = convert_identifier(raw[field], field, IDENTIFIER_CODES[field])
                if out[field] is None:
                    raise ValueError(f"defaults: {field} is blank")
        if VALUE in raw:
            out[VALUE] = convert_value(raw[VALUE])
        if TIMESTAMP in raw:
            out[TIMESTAMP] = timestamp(raw[TIMESTAMP])
        if METADATA in raw and raw[METADATA] is not None:
            meta = raw[METADATA]
            if not isinstance(meta, Mapping):
                raise ValueError("defaults: metadata must be a mapping")
            out[METADATA] = json_safe(meta, strict=True)
            orjson.dumps(out[METADATA])
    except FieldError as exc:
        raise ValueError(f"defaults: {exc.message}") from None
    except (JsonSafeError, TypeError) as exc:
        raise ValueError(f"defaults: metadata is not JSON-safe ({exc})") from None
    return out


def check_metadata_columns(columns: Sequence[str] | str | None) -> tuple[str, ...] | Literal["*"]:
    """The metadata columns as a tuple, or ``"*"``; raises ValueError for a bad list."""
    if columns is None:
        return ()
    if columns == "*":
        return "*"
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise ValueError('metadata_columns must be a list of column names or "*"')
    names = tuple(columns)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"metadata_columns: {name!r} is not a column name")
    if len(set(names)) != len(names):
        raise ValueError("metadata_columns lists a column twice")
    return names
