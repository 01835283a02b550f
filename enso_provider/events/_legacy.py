"""
The ``v1`` content of an event (``event_id_version="v1"``): the landed derivation, kept so that
intervals sent before ``v2`` can be re-run under the ids they were first sent with.

``v1`` hashes orjson's bytes of the event, so its ids follow orjson's number formatting (which
differs between orjson releases for floats such as 1e16) and the value's text (3, 3.0 and 3.00
differ). Use it only to re-run intervals already sent with it; see docs/event-ids.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson

from enso_provider.events._fields import FieldReader
from enso_provider.events._metadata import OPTIONS, metadata_fragment, strict_default
from enso_provider.events._plan import Plan
from enso_provider.events._records import METADATA
from enso_provider.events._values import Number, NumberText


def _wire_value(value: Number) -> Any:
    if type(value) is NumberText:
        return orjson.Fragment(value.encode())  # JSON-number text went verbatim
    if type(value) is Decimal:
        return orjson.Fragment(str(value).encode())
    return value


def v1_content(
    fields: FieldReader,
    vals: Sequence[Any],
    plan: Plan,
    customer: str,
    job: str | None,
    metric: str,
    timestamp: str,
    value: Number,
) -> bytes:
    """
    The event's JSON object without eventId, as orjson wrote it in v1 (sorted keys).

    :raises FieldError: for metadata or text that cannot be encoded.
    """
    columns = {name: vals[i] for name, i in plan.meta}
    meta: Any
    if plan.meta_columns_only:
        meta = columns
    elif plan.i_meta >= 0 or columns:
        mapped = vals[plan.i_meta] if plan.i_meta >= 0 else None
        meta = metadata_fragment(mapped, columns, fields.defaults.get(METADATA))
    else:
        meta = fields.metadata_fragment
    body: dict[str, Any] = {"CustomerEntityId": customer}
    if job is not None:
        body["JobId"] = job
    body["metadata"] = meta
    body["metric"] = metric
    body["timestamp"] = timestamp
    body["value"] = _wire_value(value)
    try:
        if plan.meta_columns_only:  # plain values by orjson, the rest by json_safe, keys sorted
            return orjson.dumps(body, default=strict_default, option=OPTIONS)
        return orjson.dumps(body)
    except TypeError:
        pass
    if isinstance(meta, dict):  # a bag of column values (a Fragment is already encoded)
        body["metadata"] = metadata_fragment(None, meta, None)  # raises invalid_metadata
        try:
            return orjson.dumps(body)
        except TypeError:
            pass
    raise fields.bad_text(customer, metric, job)
