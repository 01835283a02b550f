"""
What the mapper hands out: the wire field names, the local rejection codes, :class:`Event` and
:class:`Rejection`, and :class:`FieldError`, the one exception a field's normalisation raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from enso_provider.models import FailedRow

#: The event fields, as sent.
CUSTOMER_ENTITY_ID = "CustomerEntityId"
METRIC = "metric"
VALUE = "value"
TIMESTAMP = "timestamp"
METADATA = "metadata"
EVENT_ID = "eventId"
JOB_ID = "JobId"
FIELDS = (CUSTOMER_ENTITY_ID, METRIC, VALUE, TIMESTAMP, METADATA, EVENT_ID, JOB_ID)

#: Column names recognised without a field_map entry, compared after lower-casing and
#: removing underscores: ``CustomerEntityId``, ``customer_entity_id``, ``customerentityid``...
RECOGNISED_NAMES: Mapping[str, str] = {
    "customerentityid": CUSTOMER_ENTITY_ID,
    "metric": METRIC,
    "value": VALUE,
    "timestamp": TIMESTAMP,
    "metadata": METADATA,
    "eventid": EVENT_ID,
    "jobid": JOB_ID,
}

MISSING_CUSTOMER_ENTITY_ID = "missing_customer_entity_id"
INVALID_CUSTOMER_ENTITY_ID = "invalid_customer_entity_id"
MISSING_METRIC = "missing_metric"
INVALID_METRIC = "invalid_metric"
INVALID_VALUE = "invalid_value"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_METADATA = "invalid_metadata"
INVALID_EVENT_ID = "invalid_event_id"
DUPLICATE_EVENT_ID = "duplicate_event_id"
INVALID_JOB_ID = "invalid_job_id"
EVENT_TOO_LARGE = "event_too_large"
INVALID_ROW = "invalid_row"
#: Every local rejection code.
REJECTION_CODES = (
    MISSING_CUSTOMER_ENTITY_ID,
    INVALID_CUSTOMER_ENTITY_ID,
    MISSING_METRIC,
    INVALID_METRIC,
    INVALID_VALUE,
    INVALID_TIMESTAMP,
    INVALID_METADATA,
    INVALID_EVENT_ID,
    DUPLICATE_EVENT_ID,
    INVALID_JOB_ID,
    EVENT_TOO_LARGE,
    INVALID_ROW,
)
#: The code of a bad value of each identifier field.
IDENTIFIER_CODES: Mapping[str, str] = {
    CUSTOMER_ENTITY_ID: INVALID_CUSTOMER_ENTITY_ID,
    METRIC: INVALID_METRIC,
    JOB_ID: INVALID_JOB_ID,
    EVENT_ID: INVALID_EVENT_ID,
}


def normalise_name(name: str) -> str:
    """A column or argument name as :data:`RECOGNISED_NAMES` keys it."""
    return name.replace("_", "").lower()


def field_for(name: str) -> str | None:
    """
    The event field a column or argument name stands for, or None.

    :param name: ``"customer_entity_id"``, ``"JobId"``, ``"jobId"``, ``"event_id"``...
    """
    return RECOGNISED_NAMES.get(normalise_name(name)) if isinstance(name, str) else None


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


class Event(NamedTuple):
    """
    One event, encoded once and ready to join into a batch with :func:`encode_batch`.

    :param index: the row's position in the run (0-based, continuing across ``map()`` calls).
    :param event_id: the event's ``eventId``.
    :param data: the complete JSON object of the event, ``eventId`` included.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index, as the interface asks
    event_id: str
    data: bytes


#: A row that cannot become a valid event: never sent, reported in the API's failed-record shape.
#: The one failed-row type (:class:`~enso_provider.models.FailedRow`), made by the mapper with
#: ``local=True`` and status 400.
Rejection = FailedRow
