"""
Normalisation of one field value: timestamps, values, identifiers.

These are the slow paths: the mapper's loop handles values already in the right form
(``str`` identifiers, finite ``float``/``int`` values, cached timestamps) inline and calls
these for everything else. Each raises :class:`FieldError` for a value that cannot be sent.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import orjson

from enso_provider.events._json import is_missing

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1)

#: Earliest timestamp sent (inclusive): usage before the Unix epoch is a data error
#: (often a zero or a default date), and some storages (ClickHouse ``DateTime``) start there.
TIMESTAMP_MIN = datetime(1970, 1, 1)
#: Latest timestamp sent (inclusive): inside ClickHouse ``DateTime64`` at any precision
#: (nanosecond precision ends on 2262-04-11) and JavaScript ``Date``.
TIMESTAMP_MAX = datetime(2261, 12, 31, 23, 59, 59, 999999)
_RANGE_TEXT = "1970-01-01T00:00:00Z..2261-12-31T23:59:59.999999Z"
_US_MIN = 0
_US_MAX = (TIMESTAMP_MAX - _EPOCH) // timedelta(microseconds=1)
_UNIT_US = {"s": 1_000_000, "ms": 1_000}

#: Largest finite float: a value beyond it would be Infinity wherever the API parses it as a double.
_FLOAT_MAX = Decimal(sys.float_info.max)
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
#: Floats are exact integers only up to 2**53: a bigger "integral" float id has lost digits.
_FLOAT_EXACT = 2**53

# ISO 8601 / RFC 3339, extended format: date, optional time (seconds and fraction optional,
# 'T', 't' or a space between), optional zone (Z, UTC, +HH:MM, +HHMM, +HH, and the +HH:MM:SS[.ffffff]
# Python's isoformat() writes for historic zones) after an optional space.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r" ?(?:([Zz]|UTC)|([+-])(\d{2})(?::?(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?)?",
    re.ASCII,
)
# A number as JSON writes it: sent verbatim when a value arrives as a string.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
# A number as people write it (leading '+', leading zeros, '.5', '5.'): normalised through Decimal.
_LOOSE_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

# Local rejection codes of the fields handled here.
CODE_INVALID_VALUE = "invalid_value"
CODE_INVALID_TIMESTAMP = "invalid_timestamp"


class FieldError(Exception):
    """
    One field of one row cannot be sent.

    :param code: the local rejection code.
    :param field: the event field at fault.
    :param message: a sentence naming the field and the bad value.
    """

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        #: The event built before the rule failed, when there is one (too large, duplicate id).
        self.event: dict[str, Any] | None = None


def show(value: Any, limit: int = 80) -> str:
    """
    A short, safe ``repr`` of a bad value for an error message.

    :param value: the value.
    :param limit: longest text kept.
    """
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _is_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    np = _numpy()
    return np is not None and isinstance(value, np.bool_)


def _as_number(value: Any) -> int | float | Decimal | None:
    """The number ``value`` holds (int, float, Decimal, numpy number), or None if it is not one."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if isinstance(value, int) and type(value) is not int:
            return int(value)  # IntEnum and other int subclasses
        if isinstance(value, float) and type(value) is not float:
            return float(value)  # numpy.float64
        return value
    np = _numpy()
    if np is not None and isinstance(value, np.number) and not isinstance(value, np.complexfloating):
        return value.item()
    return None


# ---------------------------------------------------------------- timestamps


def format_utc(naive_utc: datetime) -> str:
    """
    ``YYYY-MM-DDTHH:MM:SSZ``, or ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` when there are microseconds.

    :param naive_utc: a plain naive datetime holding a UTC time.
    """
    return naive_utc.isoformat() + "Z"


def _in_range(naive_utc: datetime, shown: Any) -> datetime:
    if TIMESTAMP_MIN <= naive_utc <= TIMESTAMP_MAX:
        return naive_utc
    raise FieldError(
        CODE_INVALID_TIMESTAMP,
        "timestamp",
        f"timestamp {show(shown)} is outside the supported range {_RANGE_TEXT}",
    )


def _plain(value: datetime) -> datetime:
    """A plain naive datetime with the same wall-clock fields and fold (drops pendulum/pandas subclasses)."""
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        fold=value.fold,
    )


class TimestampConverter:
    """
    Turns any supported timestamp value into the API's UTC text.

    :param tz: the zone naive values are read in.
    :param tz_is_utc: ``tz`` is UTC (naive values are taken as they are).
    :param unit: ``"s"`` or ``"ms"`` to read numbers as epoch time; None refuses numbers.
    """

    def __init__(self, tz: tzinfo, tz_is_utc: bool, unit: str | None) -> None:
        self.tz = tz
        self.tz_is_utc = tz_is_utc
        self.unit = unit
        self._scale = _UNIT_US[unit] if unit else 0

    def __call__(self, value: Any) -> str:
        """
        Normalise ``value``; raise :class:`FieldError` (``invalid_timestamp``) when it cannot be.

        :param value: the row's timestamp.
        """
        try:
            return format_utc(self._to_utc(value))
        except FieldError:
            raise
        except (ValueError, OverflowError, ArithmeticError, TypeError) as exc:
            raise FieldError(
                CODE_INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(value)} cannot be read as a date-time ({type(exc).__name__}: {exc})",
            ) from None

    def _naive_to_utc(self, naive: datetime, shown: Any) -> datetime:
        if self.tz_is_utc:
            return _in_range(naive, shown)
        # fold is kept: an ambiguous wall time (DST end) is the first occurrence unless fold=1;
        # a time in a DST gap is read with the offset before the gap (Python's rule).
        aware = naive.replace(tzinfo=self.tz)
        offset = aware.utcoffset()
        assert offset is not None
        return _in_range(naive - offset, shown)

    def _to_utc(self, value: Any) -> datetime:
        if is_missing(value):
            raise FieldError(CODE_INVALID_TIMESTAMP, "timestamp", f"timestamp is missing ({show(value)})")
        if isinstance(value, str):
            return self._from_text(value)
        if isinstance(value, datetime):
            to_py = getattr(value, "to_pydatetime", None)
            if to_py is not None and type(value).__module__.startswith("pandas"):
                value = to_py(warn=False)  # nanoseconds are truncated to microseconds
            offset = value.utcoffset()
            if offset is None:
                return self._naive_to_utc(_plain(value), value)
            return _in_range(_plain(value) - offset, value)
        if isinstance(value, date):
            return self._naive_to_utc(datetime(value.year, value.month, value.day), value)
        if _is_bool(value):
            raise FieldError(
                CODE_INVALID_TIMESTAMP, "timestamp", f"timestamp {show(value)} is a boolean, not a date-time"
            )
        np = _numpy()
        if np is not None and isinstance(value, np.datetime64):
            plain = value.astype("datetime64[us]").item()
            if not isinstance(plain, datetime):
                raise FieldError(
                    CODE_INVALID_TIMESTAMP,
                    "timestamp",
                    f"timestamp {show(value)} is outside the supported range {_RANGE_TEXT}",
                )
            return self._naive_to_utc(plain, value)
        number = _as_number(value)
        if number is not None:
            return self._from_epoch(number, value)
        raise FieldError(
            CODE_INVALID_TIMESTAMP,
            "timestamp",
            f"timestamp {show(value)} of type {type(value).__name__} is not a date-time",
        )

    def _from_text(self, text: str) -> datetime:
        stripped = str.__str__(text).strip()
        if not stripped:
            raise FieldError(
                CODE_INVALID_TIMESTAMP, "timestamp", f"timestamp is missing (blank text {show(text)})"
            )
        match = _ISO.fullmatch(stripped)
        if match is None:
            if _LOOSE_NUMBER.fullmatch(stripped):
                if self.unit:
                    return self._from_epoch(Decimal(stripped), text)
                raise FieldError(
                    CODE_INVALID_TIMESTAMP,
                    "timestamp",
                    f"timestamp {show(text)} is a number: set timestamp_unit ('s' or 'ms') to read "
                    "epoch numbers",
                )
            raise FieldError(
                CODE_INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(text)} is not an ISO 8601 date-time (e.g. 2023-11-07T05:31:56Z)",
            )
        (year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m, off_s, off_f) = (
            match.groups()
        )
        micro = int((fraction + "00000")[:6]) if fraction else 0  # beyond microseconds: truncated
        try:
            naive = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                micro,
            )
        except ValueError as exc:
            raise FieldError(
                CODE_INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(text)} is not a valid date-time ({exc})",
            ) from None
        if zulu:
            return _in_range(naive, text)
        if sign:
            hours, minutes, seconds = int(off_h), int(off_m or 0), int(off_s or 0)
            if hours > 23 or minutes > 59 or seconds > 59:
                raise FieldError(
                    CODE_INVALID_TIMESTAMP, "timestamp", f"timestamp {show(text)} has an invalid UTC offset"
                )
            offset = timedelta(
                hours=hours,
                minutes=minutes,
                seconds=seconds,
                microseconds=int((off_f + "00000")[:6]) if off_f else 0,
            )
            return _in_range(naive - offset if sign == "+" else naive + offset, text)
        return self._naive_to_utc(naive, text)

    def _from_epoch(self, number: int | float | Decimal, shown: Any) -> datetime:
        if not self.unit:
            raise FieldError(
                CODE_INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(shown)} is a number: set timestamp_unit ('s' or 'ms') to read "
                "epoch numbers",
            )
        if isinstance(number, int):
            micros = number * self._scale
        else:
            # Exact: a float is read by its shortest repr, so 1700000000.123456 is .123456, not .123455.
            exact = Decimal(repr(number)) if isinstance(number, float) else number
            if not exact.is_finite():
                raise FieldError(
                    CODE_INVALID_TIMESTAMP, "timestamp", f"timestamp {show(shown)} is not a finite number"
                )
            if exact.adjusted() > 30:  # far out of range: do not build a huge integer
                micros = -1 if exact < 0 else _US_MAX + 1
            else:
                micros = int((exact * self._scale).to_integral_value(rounding=ROUND_FLOOR))
        if not _US_MIN <= micros <= _US_MAX:
            raise FieldError(
                CODE_INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(shown)} ({self.unit} since the epoch) is outside the supported range "
                f"{_RANGE_TEXT}",
            )
        return _EPOCH + timedelta(microseconds=micros)


# ---------------------------------------------------------------- values


def _value_error(message: str) -> FieldError:
    return FieldError(CODE_INVALID_VALUE, "value", message)


def _decimal_bytes(value: Decimal, shown: Any) -> orjson.Fragment:
    if not value.is_finite():
        raise _value_error(f"value {show(shown)} is not a finite number")
    if abs(value) > _FLOAT_MAX:
        raise _value_error(f"value {show(shown)} is beyond the range of a double")
    # str(Decimal) is always a valid JSON number for finite values: digits kept exactly.
    return orjson.Fragment(str(value).encode())


def convert_value(value: Any) -> int | float | orjson.Fragment:
    """
    Normalise a ``value``: an ``int`` or finite ``float`` orjson writes, or a Fragment of exact digits.

    :param value: the row's value.
    :raises FieldError: ``invalid_value`` for a missing, boolean, non-finite or non-numeric value.
    """
    if is_missing(value):
        raise _value_error(f"value is missing ({show(value)})")
    if _is_bool(value):
        raise _value_error(f"value {show(value)} is a boolean, not a number")
    if isinstance(value, str):
        text = str.__str__(value).strip()
        if not text:
            raise _value_error(f"value is missing (blank text {show(value)})")
        if _JSON_NUMBER.fullmatch(text):
            if abs(Decimal(text)) > _FLOAT_MAX:
                raise _value_error(f"value {show(value)} is beyond the range of a double")
            return orjson.Fragment(text.encode())
        if _LOOSE_NUMBER.fullmatch(text):
            return _decimal_bytes(Decimal(text), value)
        raise _value_error(f"value {show(value)} is not a number")
    number = _as_number(value)
    if number is None:
        raise _value_error(f"value {show(value)} of type {type(value).__name__} is not a number")
    if isinstance(number, float):
        if number - number != 0.0:
            raise _value_error(f"value {show(value)} is not a finite number")
        return number
    if isinstance(number, int):
        if _INT64_MIN <= number <= _UINT64_MAX:
            return number
        if number.bit_length() > 1024:  # beyond 2**1024 > float max; str() of it may be refused
            raise _value_error(f"value {show(value)} is beyond the range of a double")
        return _decimal_bytes(Decimal(number), value)
    return _decimal_bytes(number, value)


# ---------------------------------------------------------------- identifiers


def convert_identifier(value: Any, field: str, code: str) -> str | None:
    """
    Normalise an identifier (customer, metric, job, event id) to a stripped string; None if missing.

    Strings are stripped (blank is missing); integers (Python, numpy, integral Decimals, and
    integral floats up to 2**53, which is how a pandas integer column with a gap arrives) become
    their decimal text; UUIDs their text. Anything else raises.

    :param value: the row's value.
    :param field: the event field, for the message.
    :param code: the rejection code for a value of the wrong kind.
    :raises FieldError: for booleans, fractional or huge floats, and non-scalar values.
    """
    if isinstance(value, str):
        return str.__str__(value).strip() or None
    if is_missing(value):
        return None
    if _is_bool(value):
        raise FieldError(code, field, f"{field} {show(value)} is a boolean, not an identifier")
    if isinstance(value, UUID):
        return str(value)
    number = _as_number(value)
    if isinstance(number, int):
        return str(number)
    if isinstance(number, float):
        if number.is_integer() and abs(number) <= _FLOAT_EXACT:
            return str(int(number))
        raise FieldError(
            code, field, f"{field} {show(value)} is a non-integral or imprecise float, not an identifier"
        )
    if isinstance(number, Decimal):
        try:
            if number == number.to_integral_value() and number.adjusted() < 40:
                return str(int(number))
        except (InvalidOperation, OverflowError, ValueError):
            pass
        raise FieldError(code, field, f"{field} {show(value)} is not an integral number")
    raise FieldError(
        code, field, f"{field} {show(value)} of type {type(value).__name__} is not an identifier"
    )
