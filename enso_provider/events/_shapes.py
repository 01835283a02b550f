"""
The shapes a row may come in besides a plain tuple of the columns: a sequence, a mapping, or what a
``row_mapper`` returns. Each helper raises :class:`FieldError` (``invalid_row``) for a row of no shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from enso_provider.events._records import INVALID_ROW, FieldError


def sequence_values(row: Any, width: int) -> Sequence[Any]:
    """The row's values, checked to be a sequence of ``width`` values."""
    if isinstance(row, (str, bytes, bytearray)) or not isinstance(row, Sequence):
        raise FieldError(
            INVALID_ROW, None, f"row of type {type(row).__name__} is not a sequence of column values"
        )
    if len(row) != width:
        raise FieldError(INVALID_ROW, None, f"row has {len(row)} values for {width} columns")
    return row


def as_dict(row: Any, columns: tuple[Any, ...] | None) -> dict[Any, Any]:
    """The row as a dict: a mapping as it is, a sequence named by ``columns``."""
    if type(row) is dict:
        return row
    if columns is not None:
        return dict(zip(columns, sequence_values(row, len(columns)), strict=True))
    if isinstance(row, Mapping):
        return dict(row)
    raise FieldError(
        INVALID_ROW, None, f"row of type {type(row).__name__} is not a mapping (and no columns were given)"
    )


def mapped_by(
    row_mapper: Callable[[Mapping[str, Any]], Mapping[str, Any]], row: Any, columns: tuple[Any, ...] | None
) -> dict[Any, Any]:
    """What ``row_mapper`` makes of the row (given as a dict), checked to be a mapping."""
    source = as_dict(row, columns)
    try:
        out = row_mapper(source)
    except Exception as exc:
        raise FieldError(INVALID_ROW, None, f"row_mapper raised {type(exc).__name__}: {exc}") from None
    if not isinstance(out, Mapping):
        raise FieldError(INVALID_ROW, None, f"row_mapper returned {type(out).__name__}, not a mapping")
    return out if type(out) is dict else dict(out)
