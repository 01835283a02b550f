"""
Normalisation of timestamps: any supported value to the API's UTC text, and the zone option.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from enso_provider.events._json import is_missing
from enso_provider.events._records import INVALID_TIMESTAMP, FieldError
from enso_provider.events._values import LOOSE_NUMBER, as_number, is_bool, numpy_module, show

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

# ISO 8601 / RFC 3339, extended format: date, optional time (seconds and fraction optional,
# 'T', 't' or a space between), optional zone (Z, UTC, +HH:MM, +HHMM, +HH, and the +HH:MM:SS[.ffffff]
# Python's isoformat() writes for historic zones) after an optional space.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r" ?(?:([Zz]|UTC)|([+-])(\d{2})(?::?(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?)?",
    re.ASCII,
)


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
        INVALID_TIMESTAMP,
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
                INVALID_TIMESTAMP,
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
            raise FieldError(INVALID_TIMESTAMP, "timestamp", f"timestamp is missing ({show(value)})")
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
        if is_bool(value):
            raise FieldError(
                INVALID_TIMESTAMP, "timestamp", f"timestamp {show(value)} is a boolean, not a date-time"
            )
        np = numpy_module()
        if np is not None and isinstance(value, np.datetime64):
            plain = value.astype("datetime64[us]").item()
            if not isinstance(plain, datetime):
                raise FieldError(
                    INVALID_TIMESTAMP,
                    "timestamp",
                    f"timestamp {show(value)} is outside the supported range {_RANGE_TEXT}",
                )
            return self._naive_to_utc(plain, value)
        number = as_number(value)
        if number is not None:
            return self._from_epoch(number, value)
        raise FieldError(
            INVALID_TIMESTAMP,
            "timestamp",
            f"timestamp {show(value)} of type {type(value).__name__} is not a date-time",
        )

    def _from_text(self, text: str) -> datetime:
        stripped = str.__str__(text).strip()
        if not stripped:
            raise FieldError(
                INVALID_TIMESTAMP, "timestamp", f"timestamp is missing (blank text {show(text)})"
            )
        match = _ISO.fullmatch(stripped)
        if match is None:
            if LOOSE_NUMBER.fullmatch(stripped):
                if self.unit:
                    return self._from_epoch(Decimal(stripped), text)
                raise FieldError(
                    INVALID_TIMESTAMP,
                    "timestamp",
                    f"timestamp {show(text)} is a number: set timestamp_unit ('s' or 'ms') to read "
                    "epoch numbers",
                )
            raise FieldError(
                INVALID_TIMESTAMP,
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
                INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(text)} is not a valid date-time ({exc})",
            ) from None
        if zulu:
            return _in_range(naive, text)
        if sign:
            hours, minutes, seconds = int(off_h), int(off_m or 0), int(off_s or 0)
            if hours > 23 or minutes > 59 or seconds > 59:
                raise FieldError(
                    INVALID_TIMESTAMP, "timestamp", f"timestamp {show(text)} has an invalid UTC offset"
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
                INVALID_TIMESTAMP,
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
                    INVALID_TIMESTAMP, "timestamp", f"timestamp {show(shown)} is not a finite number"
                )
            if exact.adjusted() > 30:  # far out of range: do not build a huge integer
                micros = -1 if exact < 0 else _US_MAX + 1
            else:
                micros = int((exact * self._scale).to_integral_value(rounding=ROUND_FLOOR))
        if not _US_MIN <= micros <= _US_MAX:
            raise FieldError(
                INVALID_TIMESTAMP,
                "timestamp",
                f"timestamp {show(shown)} ({self.unit} since the epoch) is outside the supported range "
                f"{_RANGE_TEXT}",
            )
        return _EPOCH + timedelta(microseconds=micros)


def parse_timezone(name: Any) -> tuple[str, tzinfo, bool]:
    """
    ``(name, zone, is_utc)`` of the ``timezone`` option.

    :param name: an IANA zone name; ``UTC``, ``Z`` and ``Etc/UTC`` are UTC.
    :raises ValueError: for anything else than a known zone name.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"timezone must be an IANA zone name such as 'UTC' or 'Europe/Paris', not {name!r}")
    name = name.strip()
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return "UTC", _UTC, True
    try:
        return name, ZoneInfo(name), False
    except Exception:
        raise ValueError(f"timezone {name!r} is not a known IANA zone name") from None


#: Entries each timestamp cache holds before it is cleared (a run of distinct values stays flat).
CACHE_LIMIT = 50_000
# The wire form itself, 'YYYY-MM-DDTHH:MM:SSZ' in ASCII digits: checked without the general parser.
_CANONICAL_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)


class TimestampTexts:
    """
    The UTC text of a row's timestamp: strings cached by value (usage data repeats its hourly
    buckets), datetimes formatted directly (cheaper than a cache lookup, and exact for any zone).

    :param converter: the general conversion, for everything the fast checks do not settle.
    """

    __slots__ = ("_texts", "converter", "naive_is_utc")

    def __init__(self, converter: TimestampConverter) -> None:
        self.converter = converter
        #: Naive datetimes are read as UTC (they are sent as they are).
        self.naive_is_utc = converter.tz_is_utc
        self._texts: dict[str, str] = {}

    def __len__(self) -> int:
        """Entries held in the cache."""
        return len(self._texts)

    def lookup(self, raw: Any) -> str | None:
        """
        The text of a string or a plain datetime settled without the general parser; else None.

        :raises FieldError: for an out-of-range datetime.
        """
        kind = type(raw)
        if kind is str:
            text = self._texts.get(raw)
            if text is None and (text := self._wire_form(raw)) is not None:
                self._remember(raw, text)
            return text
        if kind is datetime:
            if raw.tzinfo is not None:
                return self._from_aware(raw)
            if self.naive_is_utc:
                # The year alone decides the range: it is 1970-01-01 .. 2261-12-31T23:59:59.999999.
                return raw.isoformat() + "Z" if 1970 <= raw.year <= 2261 else self.converter(raw)
        return None

    def cached(self, raws: list[Any]) -> list[str | None]:
        """The cached text of each string (None where the cache does not hold it)."""
        return list(map(self._texts.get, raws))

    def _from_aware(self, raw: datetime) -> str:
        """An aware datetime (any zone: psycopg gives the session's) as UTC text."""
        offset = raw.utcoffset()
        if offset is not None and 1970 <= raw.year <= 2261:  # offsets are < 24 h: no overflow below
            if not offset:  # UTC by any name (timezone.utc, ZoneInfo("Etc/UTC")...): isoformat ends "+00:00"
                return raw.isoformat()[:-6] + "Z"
            naive = raw.replace(tzinfo=None) - offset
            if TIMESTAMP_MIN <= naive <= TIMESTAMP_MAX:
                return naive.isoformat() + "Z"
        return self.converter(raw)  # out of range (or a zone without an offset): its message

    def _remember(self, raw: str, text: str) -> None:
        if len(self._texts) >= CACHE_LIMIT:
            self._texts.clear()
        self._texts[raw] = text

    def convert(self, raw: Any) -> str:
        """
        The text of any timestamp value (strings remembered).

        :raises FieldError: ``invalid_timestamp`` when it cannot be read or is out of range.
        """
        text = self.lookup(raw)
        if text is None:
            text = self.converter(raw)
            if type(raw) is str:
                self._remember(raw, text)
        return text

    @staticmethod
    def _wire_form(raw: str) -> str | None:
        """``raw`` itself when it is already the wire form of a real, in-range date."""
        if not _CANONICAL_UTC.fullmatch(raw):
            return None
        try:
            moment = datetime.fromisoformat(raw[:19])
        except ValueError:
            return None
        return raw if TIMESTAMP_MIN <= moment <= TIMESTAMP_MAX else None
