"""
The one JSON encoder of the provider, and the rules that make any value JSON-safe.

Everything that leaves the process as JSON goes through :func:`dumps` (orjson), and
every value the mapper did not expect goes through :func:`json_safe`, which is
deterministic: the same value always gives the same JSON, so the same row always
encodes to the same bytes (and so to the same content ``eventId``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

_UTC = timezone.utc
_SORT = orjson.OPT_SORT_KEYS
#: Deepest nesting json_safe follows (about orjson's own limit); deeper or cyclic values are not metadata.
MAX_DEPTH = 250
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_EPOCH = datetime(1970, 1, 1)

_BATCH_HEAD = b'{"events":['
_BATCH_TAIL = b"]}"


class JsonSafeError(TypeError):
    """A value that cannot be made JSON-safe in strict mode."""


def _pandas_missing(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ in ("NaTType", "NAType") and kind.__module__.startswith("pandas")


def is_missing(value: Any) -> bool:
    """
    Whether ``value`` stands for "no value": ``None``, a float NaN, pandas ``NaT``/``NA``, a NaN Decimal.

    :param value: any value from a row.
    """
    if value is None:
        return True
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return False
    if kind is float:
        return value != value
    if _pandas_missing(value):
        return True
    if isinstance(value, float):  # numpy.float64 and other float subclasses
        return value != value
    if isinstance(value, Decimal):
        return value.is_nan()
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.floating):
            return bool(value != value)
        if isinstance(value, (np.datetime64, np.timedelta64)):
            return bool(np.isnat(value))
    return False


def _numpy_scalar(value: Any) -> tuple[bool, Any]:
    """Return ``(True, python_value)`` for a numpy scalar or array, else ``(False, None)``."""
    np = sys.modules.get("numpy")
    if np is None:
        return False, None
    if isinstance(value, np.ndarray):
        return True, value.tolist()
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return True, None
        # Microsecond unit so that .item() gives a datetime rather than an int of nanoseconds.
        return True, value.astype("datetime64[us]").item()
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            return True, None
        return True, value.astype("timedelta64[us]").item()
    if isinstance(value, np.generic):
        return True, value.item()
    return False, None


def datetime_utc_text(value: datetime) -> str:
    """
    An aware datetime as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC; a naive one as its ISO text.

    :param value: a datetime (pandas ``Timestamp`` and pendulum ``DateTime`` included).
    """
    to_py = getattr(value, "to_pydatetime", None)
    if to_py is not None and type(value).__module__.startswith("pandas"):
        value = to_py(warn=False)  # nanoseconds are dropped, as everywhere else
    offset = value.utcoffset()
    plain = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
    )
    if offset is None:
        return plain.isoformat()
    return (plain - offset).isoformat() + "Z"


def encodable_text(text: str) -> str:
    """``text``, with lone surrogates (not UTF-8, refused by any encoder) escaped as ``\\udXXX``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _key(key: Any, depth: int, strict: bool) -> str:
    if type(key) is str:
        return key if strict else encodable_text(key)
    safe = json_safe(key, strict=False, _depth=depth)
    if isinstance(safe, str):
        return safe
    return orjson.dumps(safe, option=_SORT).decode()


def _sort_key(value: Any) -> bytes:
    return orjson.dumps(value, option=_SORT)


def json_safe(value: Any, *, strict: bool = False, _depth: int = 0) -> Any:
    """
    Convert ``value`` to plain JSON types (dict, list, str, int, float, bool, None), deterministically.

    The rules, in order:

    - ``None``, pandas ``NaT``/``NA``, NaN and infinite floats and Decimals become ``None``;
    - ``bool`` and ``str`` stay (lenient mode escapes lone surrogates, which no encoder accepts);
      ``int`` stays in the 64-bit range orjson writes, else becomes its string;
    - ``Decimal`` becomes an ``int`` when integral (and in range), else the nearest ``float``;
    - aware ``datetime`` (stdlib, pendulum, pandas) becomes UTC text ending in ``Z``; naive ones
      their ISO text unchanged; ``date`` and ``time`` their ISO text; ``timedelta`` its seconds;
    - ``UUID`` its text, ``bytes`` their UTF-8 text (undecodable bytes escaped), ``Enum`` its value;
    - numpy scalars and arrays their Python values; mappings become dicts with string keys;
      lists and tuples lists; sets lists sorted by their JSON encoding.

    Anything else becomes ``str(value)``, or raises :class:`JsonSafeError` when ``strict``.

    :param value: the value to convert.
    :param strict: raise instead of falling back to ``str(value)`` (used for metadata, which must be
        real data, not a ``repr``), and for nesting deeper than :data:`MAX_DEPTH`.
    """
    kind = type(value)
    if kind is str:
        return value if strict else encodable_text(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if kind is float:
        return value if value - value == 0.0 else None
    if _depth > MAX_DEPTH:
        if strict:
            raise JsonSafeError(f"nested deeper than {MAX_DEPTH} levels")
        return "<too deep>"
    depth = _depth + 1
    if kind is dict or isinstance(value, Mapping):
        return {_key(k, depth, strict): json_safe(v, strict=strict, _depth=depth) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [json_safe(v, strict=strict, _depth=depth) for v in value]
    if _pandas_missing(value):
        return None
    if isinstance(value, Enum):
        return json_safe(value.value, strict=strict, _depth=depth)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return json_safe(str.__str__(value), strict=strict, _depth=depth)
    if isinstance(value, int):
        return json_safe(int(value), strict=strict, _depth=depth)
    if isinstance(value, float):
        return json_safe(float(value), strict=strict, _depth=depth)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value() and value.adjusted() < 19:
            return json_safe(int(value), strict=strict, _depth=depth)
        number = float(value)
        return number if math.isfinite(number) else str(value)
    if isinstance(value, datetime):
        try:
            return datetime_utc_text(value)
        except (OverflowError, ValueError):
            return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, (set, frozenset)):
        items = [json_safe(v, strict=strict, _depth=depth) for v in value]
        return sorted(items, key=_sort_key)
    is_numpy, plain = _numpy_scalar(value)
    if is_numpy:
        return json_safe(plain, strict=strict, _depth=depth)
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [json_safe(v, strict=strict, _depth=depth) for v in value]
    if strict:
        raise JsonSafeError(f"{kind.__name__} is not a JSON value")
    try:
        return encodable_text(str(value))
    except Exception:
        return f"<unprintable {kind.__name__}>"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value.is_finite():
            return orjson.Fragment(str(value).encode())
        return float("nan")  # written as null, then refused by dumps' finiteness check
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda v: orjson.dumps(v, default=_default, option=_SORT))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    is_numpy, plain = _numpy_scalar(value)
    if is_numpy:
        return plain
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _has_non_finite(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Decimal):
        return not value.is_finite()
    if isinstance(value, Mapping):
        return any(_has_non_finite(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_non_finite(v, depth + 1) for v in value)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, (np.floating, np.ndarray)):
        with np.errstate(all="ignore"):
            return not bool(np.all(np.isfinite(value)))
    return False


def dumps(obj: Any, *, sort_keys: bool = True) -> bytes:
    """
    Encode ``obj`` as compact JSON bytes with orjson: the single encoder of the provider.

    Decimals are written with their exact digits, sets as sorted lists, numpy values as Python
    values. NaN and infinity are refused (orjson would write ``null``): a silent ``null`` in a
    usage record is worse than an error.

    :param obj: the value to encode.
    :param sort_keys: sort object keys, so equal values encode to equal bytes.
    :raises ValueError: if ``obj`` holds NaN or infinity.
    :raises TypeError: if ``obj`` holds a value JSON cannot represent.
    """
    out = orjson.dumps(obj, default=_default, option=_SORT if sort_keys else 0)
    # orjson writes NaN/inf as null: only when a null is present can one have been written.
    if b"null" in out and _has_non_finite(obj):
        raise ValueError("NaN and infinity cannot be encoded as JSON")
    return out


def encode_batch(datas: Sequence[bytes]) -> bytes:
    """
    Join pre-encoded events into a request body: ``{"events":[e1,e2,...]}``.

    :param datas: the ``data`` of each :class:`Event`, in order.
    """
    return b"".join((_BATCH_HEAD, b",".join(datas), _BATCH_TAIL))


def decode_event(data: bytes) -> dict[str, Any]:
    """
    Decode one event's bytes back into a dict (numbers as ``int``/``float``).

    :param data: an :attr:`Event.data`.
    """
    event = orjson.loads(data)
    if not isinstance(event, dict):
        raise ValueError("an event is a JSON object")
    return event
