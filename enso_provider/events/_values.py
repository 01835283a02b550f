"""
Normalisation of values and identifiers: numbers as exact digits, ids as stripped text.

The mapper's row loop takes values already in the right form (``str`` identifiers, finite
``float`` and 64-bit ``int`` values) as they are and calls these for everything else. Each
raises :class:`FieldError` for a value that cannot be sent.
"""

from __future__ import annotations

import re
import sys
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from enso_provider.events._json import is_missing
from enso_provider.events._records import INVALID_VALUE, VALUE, FieldError

#: Largest finite float: a value beyond it would be Infinity wherever the API parses it as a double.
FLOAT_MAX = Decimal(sys.float_info.max)
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
#: Floats are exact integers only up to 2**53: a bigger "integral" float id has lost digits.
_FLOAT_EXACT = 2**53
# A number as JSON writes it: sent verbatim when a value arrives as a string.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
# A number as people write it (leading '+', leading zeros, '.5', '5.'): normalised through Decimal.
LOOSE_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


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


def numpy_module() -> Any:
    """numpy, if something already imported it (never imported here)."""
    return sys.modules.get("numpy")


def is_bool(value: Any) -> bool:
    """Whether ``value`` is a Python or numpy boolean."""
    if isinstance(value, bool):
        return True
    np = numpy_module()
    return np is not None and isinstance(value, np.bool_)


def as_number(value: Any) -> int | float | Decimal | None:
    """The number ``value`` holds (int, float, Decimal, numpy number), or None if it is not one."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if isinstance(value, int) and type(value) is not int:
            return int(value)  # IntEnum and other int subclasses
        if isinstance(value, float) and type(value) is not float:
            return float(value)  # numpy.float64
        return value
    np = numpy_module()
    if np is not None and isinstance(value, np.number) and not isinstance(value, np.complexfloating):
        return value.item()
    return None


class NumberText(str):
    """A value given as JSON-number text, e.g. ``"3.00"``: its number is ``Decimal(self)``."""

    __slots__ = ()


Number = int | float | Decimal | NumberText


def plain_value(raw: Any) -> Number | None:
    """
    The value as sent, for the forms warehouse drivers give (no conversion needed); else None.

    A finite float, a 64-bit int, or a finite ``Decimal`` below 1e308, as is (``x - x`` is 0.0
    only for a finite float). Everything else goes to :func:`convert_value`.

    :param raw: the row's value.
    """
    kind = type(raw)
    if kind is float:
        return raw if raw - raw == 0.0 else None
    if kind is int:
        return raw if INT64_MIN <= raw <= UINT64_MAX else None
    if kind is Decimal and raw.is_finite() and raw.adjusted() < 308:
        return raw
    return None


def _value_error(message: str) -> FieldError:
    return FieldError(INVALID_VALUE, VALUE, message)


def _finite_decimal(value: Decimal, shown: Any) -> Decimal:
    if not value.is_finite():
        raise _value_error(f"value {show(shown)} is not a finite number")
    if abs(value) > FLOAT_MAX:
        raise _value_error(f"value {show(shown)} is beyond the range of a double")
    return value


def convert_value(value: Any) -> Number:
    """
    Normalise a ``value``: an ``int``, a finite ``float``, a finite ``Decimal``, or JSON-number text.

    :param value: the row's value.
    :raises FieldError: ``invalid_value`` for a missing, boolean, non-finite or non-numeric value.
    """
    if is_missing(value):
        raise _value_error(f"value is missing ({show(value)})")
    if is_bool(value):
        raise _value_error(f"value {show(value)} is a boolean, not a number")
    if isinstance(value, str):
        text = str.__str__(value).strip()
        if not text:
            raise _value_error(f"value is missing (blank text {show(value)})")
        if _JSON_NUMBER.fullmatch(text):
            if abs(Decimal(text)) > FLOAT_MAX:
                raise _value_error(f"value {show(value)} is beyond the range of a double")
            return NumberText(text)
        if LOOSE_NUMBER.fullmatch(text):
            return _finite_decimal(Decimal(text), value)
        raise _value_error(f"value {show(value)} is not a number")
    number = as_number(value)
    if number is None:
        raise _value_error(f"value {show(value)} of type {type(value).__name__} is not a number")
    if isinstance(number, float):
        if number - number != 0.0:
            raise _value_error(f"value {show(value)} is not a finite number")
        return number
    if isinstance(number, int):
        if INT64_MIN <= number <= UINT64_MAX:
            return number
        if number.bit_length() > 1024:  # beyond 2**1024 > float max; str() of it may be refused
            raise _value_error(f"value {show(value)} is beyond the range of a double")
        return _finite_decimal(Decimal(number), value)
    return _finite_decimal(number, value)


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
    if is_bool(value):
        raise FieldError(code, field, f"{field} {show(value)} is a boolean, not an identifier")
    if isinstance(value, UUID):
        return str(value)
    number = as_number(value)
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
