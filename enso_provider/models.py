"""
What a delivery produces, shared from mapping to report to file: one type for a row that did not become
an accepted event, and the report that accounts for every row. Pure data: no I/O, no HTTP.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: How many failures a report keeps whole, in all; the rest are counted by code.
SAMPLE_SIZE = 20
#: How many failures of one code a report keeps whole, so that every code present shows.
SAMPLE_PER_CODE = 3


@dataclass(frozen=True, slots=True)
class FailedRow:
    """
    One row that did not become an accepted event, in the API's failed-record shape: rejected locally
    by the mapper (``local``, never sent) or refused by Enso. The same type travels from the mapper to
    the delivery report, the task's XCom and the rejected-records file.

    :param index: the row's position in the run's input (0-based).
    :param error: why, for a person (a sentence naming the field and the bad value, or Enso's message).
    :param code: a local code (str, see the rows-to-events docs) or Enso's code (int or str).
    :param status_code: Enso's per-record status, or 400 for a local rejection.
    :param row_key: the row's ``event_id_column`` value, when that option is set and readable.
    :param row: the source row, made JSON-safe, when known.
    :param event: the event (or the fields mapped before a rule failed), decoded, when one was built.
    :param field: the event field at fault, if one is.
    :param event_id: the event's id when an event was built (else read from ``event``).
    :param local: True when rejected before sending.
    :param transient: True when Enso failed it transiently and it stayed undelivered after every
        re-send round: a retry of the task (or a replay) sends it again under the same eventId.
    :param data: the event's bytes exactly as built and sent (what a replay sends again).
    """

    index: int
    error: str
    code: int | str | None
    status_code: int | None = 400
    row_key: str | None = None
    row: Any = None
    event: dict[str, Any] | None = None
    field: str | None = None
    event_id: str | None = None
    local: bool = True
    transient: bool = False
    data: bytes | None = None

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready record: the API's failed-record shape plus what a replay and a person need."""
        event_id = self.event_id
        if event_id is None and isinstance(self.event, dict):
            found = self.event.get("eventId")
            event_id = found if isinstance(found, str) else None
        return {
            "index": self.index,
            "error": self.error,
            "code": self.code,
            "statusCode": self.status_code,
            "eventId": event_id,
            "rowKey": self.row_key,
            "rejectedBy": "local" if self.local else "enso",
            "row": self.row,
            "event": self.event,
            # The event as sent, as JSON text: every digit kept (``event`` reads numbers as doubles).
            "eventJson": self.data.decode() if self.data is not None else None,
            "field": self.field,
        }


@dataclass
class DeliveryReport:
    """
    What happened to every input item. ``total == success + failed + invalid`` and
    ``sent == success + failed`` always hold.

    :param total: items read from the input.
    :param sent: events posted to Enso (each counted once, however often it was re-sent).
    :param success: events Enso accepted.
    :param failed: events Enso refused, or that stayed undelivered after retries (``undelivered``).
    :param invalid: items rejected locally, never sent.
    :param undelivered: of ``failed``, the events Enso failed transiently (408/425/429/5xx) on every re-send
        round: not refused, only not delivered yet.
    :param batches: requests that carried events (re-sends included).
    :param errors: failures counted by code.
    :param sample: a few failures of every code present (at most ``SAMPLE_PER_CODE`` of one code,
        ``SAMPLE_SIZE`` in all), whole, in the order they came.
    :param dry_run: nothing was posted; ``sent`` counts what would have been.
    """

    total: int = 0
    sent: int = 0
    success: int = 0
    failed: int = 0
    invalid: int = 0
    undelivered: int = 0
    batches: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    elapsed: float = 0.0

    @property
    def failures(self) -> int:
        """Rows that were not accepted: rejected locally plus refused by Enso."""
        return self.failed + self.invalid

    def record(self, failure: FailedRow) -> None:
        """Count a failure by code, and keep it whole if its code has fewer than a few in the sample."""
        code = str(failure.code)
        self.errors[code] += 1
        seen = self.errors[code]
        if seen > SAMPLE_PER_CODE:
            return  # the common case of a long run: this code's few are in
        sample = self.sample
        if len(sample) < SAMPLE_SIZE:
            sample.append(failure.as_record())
            return
        if seen > 1:
            return  # full: only a code not shown yet earns a place
        # Make room: drop the latest failure of the code shown most often, if it shows more than one.
        shown = Counter(str(s["code"]) for s in sample)
        crowded, count = shown.most_common(1)[0]
        if count < 2:
            return  # as many codes as places
        last = max(i for i, s in enumerate(sample) if str(s["code"]) == crowded)
        del sample[last]
        sample.append(failure.as_record())

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values (XCom)."""
        return {
            "total": self.total,
            "sent": self.sent,
            "success": self.success,
            "failed": self.failed,
            "invalid": self.invalid,
            "undelivered": self.undelivered,
            "batches": self.batches,
            "errors": dict(self.errors.most_common()),
            "sample": list(self.sample),
            "dry_run": self.dry_run,
            "elapsed_seconds": round(self.elapsed, 3),
        }
