"""Counters of what the emulator saw and answered, and their snapshot."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Counters:
    """
    The live counters (mutated under the emulator's lock).

    :param connections: TCP connections accepted (a keep-alive client makes one).
    :param requests: requests to the API endpoints (``/events/batch`` and
        ``/auth/system-login``), whatever their outcome; admin endpoints are not counted.
    :param batch_requests: ``POST /events/batch`` requests received.
    :param batches: batches whose events were processed (answered 200 with a summary).
    :param events_received: events in processed batches.
    :param events_accepted: events counted as a success (duplicates included).
    :param events_failed: events listed in ``failedRecords``.
    :param largest_batch: the most events in one processed batch.
    :param duplicates: accepted events whose ``eventId`` was already stored.
    :param nan_timestamps: timestamps that contained ``NaN`` (a JavaScript invalid date).
    :param auth_failures: requests answered 401.
    :param logins: successful ``POST /auth/system-login``.
    :param responses: responses by HTTP status (API endpoints only).
    :param faults: injected faults applied, by kind (``reset`` has no status).
    """

    connections: int = 0
    requests: int = 0
    batch_requests: int = 0
    batches: int = 0
    events_received: int = 0
    events_accepted: int = 0
    events_failed: int = 0
    largest_batch: int = 0
    duplicates: int = 0
    nan_timestamps: int = 0
    auth_failures: int = 0
    logins: int = 0
    responses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def snapshot(self, events_stored: int) -> EmulatorStats:
        """
        Return an immutable copy.

        :param events_stored: distinct events stored so far.
        """
        values = asdict(self)
        values["responses"] = dict(sorted(self.responses.items()))
        values["faults"] = dict(sorted(self.faults.items()))
        return EmulatorStats(events_stored=events_stored, **values)


@dataclass(frozen=True)
class EmulatorStats:
    """
    A snapshot of the emulator's counters; see :class:`Counters` for each field.

    Also readable like a dict (``stats["events_accepted"]``).

    :param events_stored: distinct events stored (one per ``eventId``).
    """

    connections: int
    requests: int
    batch_requests: int
    batches: int
    events_received: int
    events_accepted: int
    events_failed: int
    largest_batch: int
    duplicates: int
    nan_timestamps: int
    auth_failures: int
    logins: int
    responses: dict[int, int]
    faults: dict[str, int]
    events_stored: int

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        """Return the snapshot as a plain dict (JSON-ready but for the int keys of ``responses``)."""
        return asdict(self)
