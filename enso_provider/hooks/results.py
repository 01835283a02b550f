"""Typed results of Enso requests, parsed from the API's documented response shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """
    One record Enso refused, as its ``failedRecords`` entry says.

    :param index: position of the record in the request's ``events`` array.
    :param error: Enso's message.
    :param code: Enso's code as given: a number (2001, 2002) or a string (``"27"``).
    :param status_code: the record's HTTP-like status (400, 404; 429 and 5xx are transient).
    """

    index: int
    error: str
    code: int | str | None
    status_code: int | None

    def as_dict(self) -> dict[str, Any]:
        """The record in the API's own shape."""
        return {"index": self.index, "error": self.error, "code": self.code, "statusCode": self.status_code}


@dataclass(frozen=True, slots=True)
class BatchResult:
    """
    Enso's answer to one ``POST /events/batch``.

    :param success: records Enso accepted.
    :param failed: records Enso refused.
    :param total: records Enso counted in the request.
    :param failed_records: the refused records, each with its index in the request.
    """

    success: int
    failed: int
    total: int
    failed_records: tuple[FailedRecord, ...] = ()


class ResponseShapeError(ValueError):
    """The body is JSON but not the documented batch response."""


def _as_int(value: Any, name: str) -> int:
    # bool is an int subclass; a summary of True/False is not a count. Text counts are taken only as
    # ASCII digits: int() would also read "³" or "٣", which no JSON encoder writes for a number.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ResponseShapeError(f"{name} is not a count: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise ResponseShapeError(f"{name} is not a count: {value!r}")
        return int(text)
    return value


def _status_code(value: Any) -> int | None:
    if value is None:
        return None
    status = _as_int(value, "failedRecords[].statusCode")
    if not 100 <= status <= 599:
        raise ResponseShapeError(f"failedRecords[].statusCode {status} is not an HTTP status")
    return status


def _code(value: Any) -> int | str | None:
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise ResponseShapeError(f"failedRecords[].code is neither a number nor a string: {value!r}")


def parse_batch_response(payload: Any, *, sent: int) -> BatchResult:
    """
    Build a :class:`BatchResult` from a decoded response body.

    Accepts the wrapped shape (``{"data": {"summary": ..., "failedRecords": [...]}}``) and the bare one
    (``{"summary": ..., "failedRecords": [...]}``), both of which the reference shows.

    :param payload: the decoded JSON body.
    :param sent: how many events the request carried, to check indexes against.
    :raises ResponseShapeError: when the body is not one of the two shapes, or contradicts itself.
    """
    if not isinstance(payload, Mapping):
        raise ResponseShapeError("the body is not a JSON object")
    data = payload.get("data")
    body: Mapping[str, Any] = data if isinstance(data, Mapping) else payload
    summary = body.get("summary")
    if not isinstance(summary, Mapping):
        raise ResponseShapeError("the body has no summary object")
    success = _as_int(summary.get("success"), "summary.success")
    failed = _as_int(summary.get("failed"), "summary.failed")
    total = _as_int(summary.get("total", success + failed), "summary.total")
    raw_records = body.get("failedRecords") or []
    if not isinstance(raw_records, list):
        raise ResponseShapeError("failedRecords is not a list")
    records: list[FailedRecord] = []
    for raw in raw_records:
        if not isinstance(raw, Mapping):
            raise ResponseShapeError(f"a failed record is not an object: {raw!r}")
        index = _as_int(raw.get("index"), "failedRecords[].index")
        if not 0 <= index < sent:
            raise ResponseShapeError(f"failed record index {index} is outside the {sent} events sent")
        records.append(
            FailedRecord(
                index=index,
                error=str(raw.get("error") or ""),
                code=_code(raw.get("code")),
                status_code=_status_code(raw.get("statusCode")),
            )
        )
    if len({r.index for r in records}) != len(records):
        raise ResponseShapeError("failedRecords lists the same index twice")
    if success + failed != total or total != sent or failed != len(records):
        # A summary that does not add up cannot be trusted to say which records were stored.
        raise ResponseShapeError(
            f"summary does not add up: success={success} failed={failed} total={total}, "
            f"{len(records)} failed records, {sent} events sent"
        )
    return BatchResult(success=success, failed=failed, total=total, failed_records=tuple(records))
