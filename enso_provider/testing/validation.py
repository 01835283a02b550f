"""
What the emulator checks in each event, and the codes and messages it answers with.

The codes the API documents are 2001, 2002, 2003 and the storage's ``"27"`` (a
string). The emulator adds its own, all strings, for what the reference leaves
unsaid: :data:`CODE_INVALID_EVENT`, :data:`CODE_METRIC_REQUIRED`,
:data:`CODE_INVALID_VALUE` and :data:`CODE_TRANSIENT`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson

#: ``CustomerEntityId`` missing, empty or not a string.
CODE_ENTITY_REQUIRED = 2001
#: ``CustomerEntityId`` is not a known customer entity.
CODE_ENTITY_NOT_FOUND = 2002
#: The body is not JSON, or has no non-empty ``events`` array (a whole-request 400).
CODE_EVENTS_REQUIRED = 2003
#: The storage could not parse a value (the emulator: the ``timestamp``).
CODE_STORAGE_PARSE = "27"
#: Emulator only: an element of ``events`` that is not a JSON object.
CODE_INVALID_EVENT = "invalid_event"
#: Emulator only: ``metric`` missing, empty or not a string.
CODE_METRIC_REQUIRED = "metric_required"
#: Emulator only: ``value`` missing, not a number (booleans are not), or not finite.
CODE_INVALID_VALUE = "invalid_value"
#: Emulator only: a transient failure injected with ``EnsoEmulator.fail_records``.
CODE_TRANSIENT = "transient_failure"

MSG_ENTITY_REQUIRED = "Customer entity ID required"
MSG_ENTITY_NOT_FOUND = "Customer entity not found"
MSG_EVENTS_REQUIRED = "events array is required"
MSG_INVALID_EVENT = "Event must be a JSON object"
MSG_METRIC_REQUIRED = "metric is required and must be a non-empty string"
MSG_INVALID_VALUE = "value is required and must be a finite number"
MSG_TRANSIENT = "Service temporarily unavailable, retry the record"

# ISO 8601 date and time, 'T' or a space between, optional fraction (up to ns),
# optional zone: Z, +HH:MM, +HHMM or +HH. A value without a zone is read as UTC,
# as the storage (a DateTime64 column) does. Field ranges are checked by the
# pattern itself; only days 29-31 need a calendar.
_TIMESTAMP = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?"
)
# The storage reads a fixed-width date first, then expects the closing quote:
# that is where the reference's message for "NaN-NaN-NaN ..." points.
_STORAGE_DATE_WIDTH = 10
# The storage quotes 160 characters of the row from where it stopped.
_STORAGE_SNIPPET = 160
#: Most timestamp verdicts the emulator caches; real batches repeat timestamps
#: (an hour's window, a day's date), and the bound keeps all-distinct runs flat.
TIMESTAMP_CACHE_LIMIT = 100_000


def timestamp_is_valid(value: str) -> bool:
    """
    Whether the storage can parse ``value`` as a timestamp.

    :param value: the ``timestamp`` field as sent.
    """
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return False
    year, month, day = match.group(1, 2, 3)
    if day > "28":
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return False
    return year != "0000"


def value_is_valid(value: Any) -> bool:
    """
    Whether ``value`` is a finite number (``bool`` is not a number here).

    :param value: the ``value`` field as parsed.
    """
    kind = type(value)
    if kind is int:
        return True
    # inf - inf and nan - nan are nan, which is not equal to 0.0.
    return kind is float and value - value == 0.0


def storage_parse_error(event: dict[str, Any], organisation_id: str) -> str:
    """
    Build the storage's message for an unparsable timestamp, in the reference's form.

    The storage quotes the row it was inserting from where it stopped reading,
    so the message is built from the event the same way.

    :param event: the event whose ``timestamp`` could not be parsed.
    :param organisation_id: the organisation the storage row belongs to.
    """
    timestamp = event.get("timestamp")
    job_id = event.get("JobId", event.get("jobId"))
    metadata = event.get("metadata")
    row = (
        b'{"timestamp":'
        + orjson.dumps(timestamp if isinstance(timestamp, str) else _json_text(timestamp))
        + b',"metadata":'
        + (orjson.dumps(metadata) if metadata else b"null")
        + b',"status":"active","CustomerEntityId":'
        + orjson.dumps(event.get("CustomerEntityId"))
        + b',"JobId":'
        + orjson.dumps(job_id)
        + b',"OrganisationId":'
        + orjson.dumps(organisation_id)
        + b"}"
    ).decode()
    stop = len('{"timestamp":"') + min(_STORAGE_DATE_WIDTH, len(str(timestamp)))
    quoted = row[stop : stop + _STORAGE_SNIPPET]
    return (
        f"Cannot parse input: expected '\"' before: '{quoted}': "
        "(while reading the value of key timestamp): (at row 1)\n: While executing WaitForAsyncInsert. "
    )


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)
