"""
The fields of one row, from their raw values: the slow paths of the row loop.

The loop takes values already in the right form itself (stripped text, finite floats, 64-bit
ints, cached timestamps) and calls :class:`FieldReader` for the rest: defaults for missing
values, conversions, and messages that name the column at fault.
"""

from __future__ import annotations

from typing import Any

from enso_provider.events._json import is_missing
from enso_provider.events._metadata import canonical_metadata, constant, metadata_bag
from enso_provider.events._plan import Plan
from enso_provider.events._records import (
    CUSTOMER_ENTITY_ID,
    FIELDS,
    IDENTIFIER_CODES,
    INVALID_METADATA,
    INVALID_TIMESTAMP,
    INVALID_VALUE,
    JOB_ID,
    METADATA,
    METRIC,
    MISSING_CUSTOMER_ENTITY_ID,
    MISSING_METRIC,
    TIMESTAMP,
    VALUE,
    FieldError,
)
from enso_provider.events._timestamps import TimestampTexts
from enso_provider.events._values import Number, convert_identifier, convert_value, show


def absent(value: Any) -> bool:
    """Missing (None, NaN, NaT, NA) or blank text: what a default fills."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


class FieldReader:
    """
    Reads the fields the row loop did not settle itself.

    :param defaults: the checked defaults (:func:`._options.check_defaults`).
    :param timestamps: the mapper's timestamp texts (and their cache).
    """

    __slots__ = ("defaults", "metadata_constant", "metadata_fragment", "timestamps")

    def __init__(self, defaults: dict[str, Any], timestamps: TimestampTexts) -> None:
        self.defaults = defaults
        self.timestamps = timestamps
        #: The metadata of events with neither a metadata column nor a mapped object (v2, v1).
        self.metadata_constant = defaults.get(METADATA) or {}
        canonical_metadata(self.metadata_constant)  # checked once: raises for a default without a JSON form
        self.metadata_fragment = constant(defaults.get(METADATA))

    def _missing(self, field: str, raw: Any, plan: Plan) -> FieldError:
        code = MISSING_CUSTOMER_ENTITY_ID if field == CUSTOMER_ENTITY_ID else MISSING_METRIC
        source = plan.sources.get(field)
        if source is None:
            where = "no column maps to it and there is no default"
        elif plan.slots[FIELDS.index(field)] < 0:
            where = f"column {source!r} is not in the row"
        else:
            where = f"column {source!r} is {show(raw)}"
        return FieldError(code, field, f"{field} is missing: {where}")

    def _not_in_row(self, field: str, code: str, slot: int, plan: Plan) -> FieldError | None:
        source = plan.sources.get(field)
        if source is not None and plan.slots[slot] >= 0:
            return None
        where = "no column maps to it" if source is None else f"column {source!r} is not in the row"
        return FieldError(code, field, f"{field} is missing: {where}")

    def identifier(self, raw: Any, field: str, plan: Plan) -> str | None:
        """CustomerEntityId, metric or JobId: stripped text, else the default; None only for JobId."""
        text = convert_identifier(raw, field, IDENTIFIER_CODES[field])
        if text is None:
            text = self.defaults.get(field)
        if text is None and field != JOB_ID:
            raise self._missing(field, raw, plan)
        return text

    def required(self, raw: Any, field: str, plan: Plan) -> str:
        """CustomerEntityId or metric: stripped text, else the default, else an error."""
        text = self.identifier(raw, field, plan)
        if text is None:
            raise self._missing(field, raw, plan)
        return text

    def value(self, raw: Any, plan: Plan) -> Number:
        """The value's number (see :func:`._values.convert_value`); the default fills a missing one."""
        if VALUE in self.defaults and absent(raw):
            return self.defaults[VALUE]
        try:
            return convert_value(raw)
        except FieldError:
            error = self._not_in_row(VALUE, INVALID_VALUE, 2, plan) if raw is None else None
            if error is not None:
                raise error from None
            raise

    def timestamp(self, raw: Any, plan: Plan) -> str:
        """The timestamp text of a value the cache did not hold; the default fills a missing one."""
        if absent(raw):
            default = self.defaults.get(TIMESTAMP)
            if default is not None:
                return default
            error = self._not_in_row(TIMESTAMP, INVALID_TIMESTAMP, 3, plan) if raw is None else None
            if error is not None:
                raise error
        return self.timestamps.convert(raw)

    def metadata(self, vals: Any, plan: Plan) -> Any:
        """The metadata object of a row (its mapped object, the default, the metadata columns)."""
        columns = {name: vals[i] for name, i in plan.meta}
        if plan.meta_columns_only:
            return columns
        mapped = vals[plan.i_meta] if plan.i_meta >= 0 else None
        return metadata_bag(mapped, columns, self.defaults.get(METADATA))

    def bad_text(self, customer: str, metric: str, job: str | None) -> FieldError:
        """The error of an event whose text cannot be encoded: lone surrogates (not UTF-8) in a field."""
        for field, text in ((CUSTOMER_ENTITY_ID, customer), (METRIC, metric), (JOB_ID, job)):
            try:
                if text is not None:
                    text.encode()
            except UnicodeEncodeError as exc:
                message = f"{field} {show(text)} is not valid text: {exc}"
                return FieldError(IDENTIFIER_CODES[field], field, message)
        return FieldError(
            INVALID_METADATA,
            METADATA,
            "metadata holds text that is not valid UTF-8: it cannot be encoded as JSON",
        )
