"""
The event's ``metadata`` object: a mapped object or text, a default, and the metadata columns.

The common case (metadata columns only) is encoded with the event itself; this module settles
every other case into a pre-encoded ``orjson.Fragment`` (sorted keys, values by json_safe's rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from enso_provider.events import ids
from enso_provider.events._json import JsonSafeError, is_missing, json_safe
from enso_provider.events._records import INVALID_METADATA, METADATA, FieldError
from enso_provider.events._values import show

EMPTY = orjson.Fragment(b"{}")
#: Sorted keys, and every value orjson would write its own way (datetimes, subclasses,
#: dataclasses, numpy, Decimal...) handed to json_safe, so the bytes follow json_safe's rules.
OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def strict_default(value: Any) -> Any:
    """orjson's ``default`` for metadata values: json_safe, strict (no ``repr`` as data)."""
    return json_safe(value, strict=True)


def constant(default: Any) -> orjson.Fragment:
    """The encoded metadata default (``{}`` without one)."""
    return orjson.Fragment(orjson.dumps(default, option=orjson.OPT_SORT_KEYS)) if default else EMPTY


def metadata_bag(mapped: Any, columns: dict[str, Any], default: Any) -> Any:
    """
    The metadata object: the mapped one (or the default), with the metadata columns on top.

    :param mapped: the row's metadata value (a mapping, JSON object text, or missing).
    :param columns: the metadata columns' values, by key.
    :param default: the metadata default, or None.
    :raises FieldError: ``invalid_metadata`` when it is not an object.
    """
    base: Any
    if is_missing(mapped):
        base = default
    elif isinstance(mapped, (str, bytes, bytearray)):
        if not mapped.strip():
            base = default
        else:
            try:
                base = orjson.loads(mapped)
            except orjson.JSONDecodeError:
                base = None
            if not isinstance(base, dict):
                raise FieldError(INVALID_METADATA, METADATA, f"metadata {show(mapped)} is not a JSON object")
    elif isinstance(mapped, Mapping):
        base = mapped
    else:
        raise FieldError(
            INVALID_METADATA,
            METADATA,
            f"metadata {show(mapped)} of type {type(mapped).__name__} is not an object",
        )
    # The metadata columns win over the object's keys.
    return {**base, **columns} if base and columns else base or columns


def canonical_metadata(bag: Any) -> str:
    """
    The canonical text of a metadata object (:func:`.ids.value`); odd values by json_safe's rules.

    :raises FieldError: ``invalid_metadata`` when a value has no JSON form.
    """
    if not bag:
        return "{}"
    try:
        return ids.value(bag, strict_default)
    except (ids.CanonicalError, JsonSafeError, TypeError, ValueError, RecursionError) as exc:
        raise FieldError(INVALID_METADATA, METADATA, f"metadata cannot be encoded as JSON: {exc}") from None


def metadata_fragment(mapped: Any, columns: dict[str, Any], default: Any) -> orjson.Fragment:
    """The v1 (orjson) encoding of :func:`metadata_bag`'s object."""
    bag = metadata_bag(mapped, columns, default)
    if not bag:
        return EMPTY
    try:
        return orjson.Fragment(orjson.dumps(bag, default=strict_default, option=OPTIONS))
    except TypeError:
        pass  # non-string keys, huge ints, values json_safe refuses: decide below
    try:
        safe = json_safe(bag, strict=True)
        return orjson.Fragment(orjson.dumps(safe, option=orjson.OPT_SORT_KEYS))
    except (JsonSafeError, TypeError, ValueError, RecursionError) as exc:
        raise FieldError(INVALID_METADATA, METADATA, f"metadata cannot be encoded as JSON: {exc}") from None
