"""
What a rejection reports besides its reason: the source row, the fields mapped so far, the row key.

Every helper here is for the report of a row that already failed, so none of them may raise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from enso_provider.events._json import encodable_text, json_safe
from enso_provider.events._plan import Plan, find
from enso_provider.events._records import EVENT_ID, FIELDS, INVALID_EVENT_ID, METADATA
from enso_provider.events._values import convert_identifier

_ERROR_LIMIT = 300


def truncate(text: str) -> str:
    """Report text: at most 300 characters, and always encodable (no lone surrogates)."""
    return encodable_text(text if len(text) <= _ERROR_LIMIT else text[:_ERROR_LIMIT] + "...")


def decode_quietly(data: bytes) -> dict[str, Any] | None:
    """An encoded event as a dict, or None."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def source_row(row: Any, fixed: Plan | None) -> dict[str, Any] | None:
    """The source row as a JSON-safe dict."""
    try:
        if fixed is not None and isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
            if len(row) == len(fixed.columns):
                return json_safe(dict(zip(fixed.columns, row, strict=True)))
            return {"_values": json_safe(list(row))}
        if isinstance(row, Mapping):
            return json_safe(row)
        return {"_row": json_safe(row)}
    except Exception:
        return None


def mapped_fields(vals: Any, plan: Plan) -> dict[str, Any] | None:
    """The raw values the plan maps to each field (JSON-safe)."""
    try:
        event: dict[str, Any] = {}
        for field, i in zip(FIELDS, plan.slots[:7], strict=True):
            if i >= 0:
                event[field] = json_safe(vals[i])
        if plan.meta:
            # Under the field they become part of (on top of a mapped object, as in the event).
            columns = {name: json_safe(vals[i]) for name, i in plan.meta}
            mapped = event.get(METADATA)
            if mapped is None or isinstance(mapped, dict):
                event[METADATA] = {**(mapped or {}), **columns}
        return event
    except Exception:
        return None


def row_key(
    key_column: str | None, vals: Any, plan: Plan | None, source: dict[str, Any] | None
) -> str | None:
    """The row's ``event_id_column`` value as text, when that option is set and the value readable."""
    if not key_column:
        return None
    try:
        if plan is not None and not plan.error and plan.i_key >= 0:
            key = convert_identifier(vals[plan.i_key], EVENT_ID, INVALID_EVENT_ID)
            if key is not None:
                return truncate(key)
        if source is not None:
            names = [k if isinstance(k, str) else None for k in source]
            found = find(names, key_column)
            if found.index >= 0:
                key = convert_identifier(source[names[found.index]], EVENT_ID, INVALID_EVENT_ID)
                return truncate(key) if key is not None else None
    except Exception:
        return None
    return None
