"""
The event's ``metadata`` object: a mapped object or text, a default, and the metadata columns.

The common case (metadata columns only) is encoded with the event itself; this module settles
every other case into a pre-encoded ``orjson.Fragment`` (sorted keys, values by json_safe's rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import partial
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
    if type(mapped) is dict:  # jsonb, or a dict row's object: the common case first
        base = mapped
    elif is_missing(mapped):
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


# orjson writes strings, ints, bools, null, finite floats in positional form and sorted keys
# exactly as ids.value does (checked by _writes_canonically at import, and by property tests);
# it differs only for floats it writes with an exponent (``1e+16``, ``1e-7``) or a trailing ".0"
# (``1.0``, ``-0.0``): output holding such a token (or text that looks like one) goes to ids.value.
_POINT_ZERO = re.compile(rb"\.0[,}\]]")
_EXPONENT = re.compile(rb"e[+-]")  # a number's when a digit precedes it


def odd_number(out: bytes) -> bool:
    """Whether orjson's ``out`` may hold a float it writes otherwise than the canonical form."""
    return bool(odd_marks(out))


def odd_marks(out: bytes) -> list[int]:
    """The offsets in orjson's ``out`` of the numbers :func:`odd_number` looks for (regex scans run in C)."""
    marks = [m.start() for m in _POINT_ZERO.finditer(out)]
    marks += [at for m in _EXPONENT.finditer(out) if (at := m.start()) > 0 and 48 <= out[at - 1] <= 57]
    return marks


FAST_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
FAST_OPTIONS |= orjson.OPT_PASSTHROUGH_DATACLASS


def canonical_default(value: Any) -> Any:
    """orjson's ``default`` for the fast path: each value as ids.value (with json_safe) writes it."""
    kind = type(value)
    if kind is Decimal:
        return orjson.Fragment(ids.decimal(value)) if value.is_finite() else None
    if kind is datetime and value.tzinfo is None:
        return value.isoformat()  # json_safe's text of a naive datetime
    return json_safe(value, strict=True)


#: orjson with the options and default whose bytes are the canonical form (odd numbers aside).
dump_canonical = partial(orjson.dumps, default=canonical_default, option=FAST_OPTIONS)


def _orjson_canonical(bag: Any) -> str | None:
    """The canonical text of ``bag`` as orjson writes it, or None where orjson's form may differ."""
    try:
        out = dump_canonical(bag)
    except TypeError:  # non-string keys, huge ints, values json_safe refuses, too deep: the exact path
        return None
    return None if odd_number(out) else out.decode()


def _writes_canonically() -> bool:
    """Whether this orjson writes a probe of every shape the fast path relies on as ids.value does."""
    probe = {
        "text": "".join(map(chr, range(0x80))) + "\u2028\u00e9\U0001f600",
        "\uffff": [1, -7, 2**63, 2**64 - 1, -(2**63), True, False, None],
        "\U00010000": [0.1, -2.5, 1e-5, 0.0001, 123456.789, 1 / 3, 999999999999999.9],
        "B": {"b": Decimal("1.50"), "a": datetime(2024, 1, 1, 0, 0, 1, 5)},
    }
    odd = [1.0, -0.0, 1e15, 1e16, 1e21, 1e22, 1e-6, 1e-7, 1.5e-7, 5e-324, 1.2345678901234568e16]
    caught = all(_orjson_canonical({"x": [number]}) is None for number in odd)
    return caught and _orjson_canonical(probe) == ids.value(probe, strict_default)


FAST = _writes_canonically()
_NO_METADATA: dict[str, Any] = {}


def canonical_metadata(bag: Any) -> str:
    """
    The canonical text of a metadata object (:func:`.ids.value`); odd values by json_safe's rules.

    Written by orjson where its output is the canonical form, else by :func:`.ids.value`.

    :raises FieldError: ``invalid_metadata`` when a value has no JSON form.
    """
    if not bag:
        return "{}"
    if FAST and (text := _orjson_canonical(bag)) is not None:
        return text
    try:
        return ids.value(bag, strict_default)
    except (ids.CanonicalError, JsonSafeError, TypeError, ValueError, RecursionError) as exc:
        raise FieldError(INVALID_METADATA, METADATA, f"metadata cannot be encoded as JSON: {exc}") from None


def event_content(
    customer: str, job: str | None, bag: Any, metric: str, timestamp: str, amount: str
) -> bytes:
    """
    The canonical content of an event (:func:`.ids.content`) whose metadata object is ``bag``.

    One orjson call writes the whole object where its bytes are the canonical form (the content's
    keys are already in sorted order); otherwise :func:`canonical_metadata` and :func:`.ids.content`.

    :raises FieldError: ``invalid_metadata`` when a metadata value has no JSON form.
    :raises UnicodeEncodeError: for text with lone surrogates.
    """
    if FAST:
        obj = {"CustomerEntityId": customer, "metadata": bag or _NO_METADATA, "metric": metric}
        obj["timestamp"] = timestamp
        obj["value"] = orjson.Fragment(amount)
        if job is not None:
            obj["JobId"] = job  # sorted into its place by OPT_SORT_KEYS
        try:
            out = dump_canonical(obj)
        except TypeError:
            out = b""
        if out and not odd_number(out):
            return out
    return ids.content(customer, job, canonical_metadata(bag), metric, timestamp, amount)


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
