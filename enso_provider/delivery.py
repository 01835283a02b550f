"""
Delivery: encoded events -> batches (by count and bytes) -> concurrent posts -> one report.

The hook's :meth:`~enso_provider.hooks.enso.EnsoHook.send_events` and the operators use this. The caller's
thread reads, maps and cuts batches; at most ``concurrency`` batches are in flight on worker threads, so
memory is bounded by ``concurrency x max_batch_bytes`` whatever the input size. Results are accounted
for in the caller's thread, in one place, so ``sent == success + failed`` holds by construction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from enso_provider.events import Event, decode_event, encode_batch
from enso_provider.exceptions import EnsoConfigError, EnsoError, EnsoRequestError
from enso_provider.hooks.results import BatchResult
from enso_provider.hooks.retry import RetryPolicy, is_transient_status
from enso_provider.models import DeliveryReport, FailedRow

#: The one failed-row type, by the name the delivery has always used.
Failure = FailedRow

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_BATCH_BYTES = 512 * 1024
DEFAULT_CONCURRENCY = 4
#: Rounds of re-sending the records Enso failed transiently (statusCode 429/5xx inside a 200).
DEFAULT_RECORD_RETRIES = 3
#: Seconds between two progress lines in the task log.
PROGRESS_INTERVAL = 15.0

_BATCH_OVERHEAD = len(b'{"events":[]}')


#: A failed record's local code when it stayed transient after every re-send round.
UNDELIVERED = "undelivered_after_retries"


class BatchPoster(Protocol):
    """What delivery needs from the hook: post one encoded body of ``sent`` events, with retries."""

    def post_batch_body(self, body: bytes, *, sent: int) -> BatchResult: ...


class ItemChunks:
    """
    Items that arrive a list at a time (as :meth:`EventMapper.map_chunks` gives them), so that the
    delivery can batch a run of events at once. Iterating it gives the items one by one.

    :param chunks: lists of events and rejections, in input order.
    """

    __slots__ = ("chunks",)

    def __init__(self, chunks: Iterable[list[Event | FailedRow]]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[Event | FailedRow]:
        for chunk in self.chunks:
            yield from chunk


def _refused(event: Event, code: int | str | None, status_code: int | None, error: str) -> FailedRow:
    """A record Enso failed, with what resending it needs (its bytes, index and id)."""
    return FailedRow(
        index=event.index,
        error=error,
        code=code,
        status_code=status_code,
        event_id=event.event_id,
        local=False,
        data=event.data,
    )


def _event_of(row: FailedRow) -> Event:
    assert row.event_id is not None
    assert row.data is not None
    return Event(row.index, row.event_id, row.data)


@dataclass(slots=True)
class _Outcome:
    """What one batch (with its record re-sends) ended with."""

    success: int = 0
    requests: int = 0
    failures: list[FailedRow] = field(default_factory=list)
    #: Records still failing transiently after the last round.
    undelivered: list[FailedRow] = field(default_factory=list)


class _Stopped(Exception):
    """A whole-request error that stopped a batch after some of its 413 halves had landed."""

    def __init__(self, error: EnsoError, outcome: _Outcome) -> None:
        super().__init__(str(error))
        self.error = error
        self.outcome = outcome


class _StillTransient(Exception):
    """A re-send round that left records failing transiently (so tenacity runs another round)."""


class Delivery:
    """
    Sends encoded events in batches, concurrently, and accounts for each of them.

    :param poster: posts one body, with the retries of whole requests (the hook).
    :param batch_size: most events in one request.
    :param max_batch_bytes: most bytes in one request body.
    :param concurrency: most requests in flight at once.
    :param record_retries: rounds of re-sending records that failed transiently inside a 200.
    :param policy: the retry policy whose waits space the re-send rounds (the hook's).
    :param dry_run: cut batches and count, but post nothing.
    :param on_failure: called (in the caller's thread) with every failure, local or remote.
    :param sleep: how waits between re-send rounds are spent (replaceable in tests).
    """

    def __init__(
        self,
        poster: BatchPoster,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        record_retries: int = DEFAULT_RECORD_RETRIES,
        policy: RetryPolicy | None = None,
        dry_run: bool = False,
        on_failure: Callable[[FailedRow], None] | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any = None,
    ) -> None:
        validate_delivery_options(batch_size, max_batch_bytes, concurrency)
        if isinstance(record_retries, bool) or not isinstance(record_retries, int) or record_retries < 0:
            raise ValueError(f"record_retries must be an integer of 0 or more, got {record_retries!r}")
        self.poster = poster
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.concurrency = concurrency
        self.record_retries = record_retries
        self.policy = policy or RetryPolicy()
        self.dry_run = dry_run
        self.on_failure = on_failure
        self.progress_interval = progress_interval
        self._sleep = sleep
        self.log = logger or log
        self.report = DeliveryReport(dry_run=dry_run)

    # -- the caller's thread ----------------------------------------------------------------------------

    def run(self, items: Iterable[Event | FailedRow]) -> DeliveryReport:
        """
        Deliver every item and return the report.

        Whole-request errors that retrying cannot fix (auth, network or server failures after the hook's
        retries) stop the run: batches in flight are finished and accounted for, then the error is raised
        so that Airflow can retry the task; deterministic eventIds make the re-send safe.
        """
        started = time.monotonic()
        report = self.report
        next_progress = started + self.progress_interval
        self._in_flight: dict[Future[_Outcome], list[Event]] = {}
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="enso-send")
        try:
            for batch in self._batches(items):
                if self.dry_run:
                    report.sent += len(batch)
                    report.success += len(batch)
                    report.batches += 1
                    continue
                self._submit(batch)
                self._collect(block=False)
                if self.progress_interval and time.monotonic() >= next_progress:
                    self._log_progress(started)
                    next_progress = time.monotonic() + self.progress_interval
            while self._in_flight:
                self._collect(block=True)
        except BaseException as err:
            # Let what is in flight land and be counted, then re-raise the first error, carrying the
            # counts so far: what was accepted before the stop is known, not guessed.
            self._drain()
            if isinstance(err, EnsoError):
                err.report = report
            raise
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            report.elapsed = time.monotonic() - started
        return report

    def _submit(self, batch: list[Event]) -> None:
        """Hand ``batch`` to a sender thread, keeping at most ``concurrency`` of them busy."""
        while len(self._in_flight) >= self.concurrency:
            self._collect(block=True)
        # A batch counts as sent from when a sender thread holds it.
        self._in_flight[self._pool.submit(self._send, batch)] = batch
        self.report.sent += len(batch)

    def _collect(self, *, block: bool) -> None:
        """Account for finished batches (waiting for one when ``block``); re-raise a batch's error."""
        done, _ = wait(self._in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        first_error: BaseException | None = None
        for future in done:
            batch = self._in_flight.pop(future)
            error = self._settle(future, batch)
            first_error = first_error or error
        if first_error is not None:
            raise first_error

    def _drain(self) -> None:
        for future, batch in list(self._in_flight.items()):
            if future.cancel():
                self.report.sent -= len(batch)
            else:
                self._settle(future, batch)
        self._in_flight.clear()

    def _settle(self, future: Future[_Outcome], batch: list[Event]) -> BaseException | None:
        """Account for a finished batch; return its error, if it failed."""
        error = future.exception()
        if error is None:
            self._account(future.result())
            return None
        landed = 0
        if isinstance(error, _Stopped):
            # Halves of a split batch landed before the error: they count like any batch.
            self._account(error.outcome)
            outcome = error.outcome
            landed = outcome.success + len(outcome.failures) + len(outcome.undelivered)
            error = error.error
        # The rest was never confirmed, so not counted as sent: the task's retry sends it again.
        self.report.sent -= len(batch) - landed
        return error

    def _account(self, outcome: _Outcome) -> None:
        report = self.report
        report.success += outcome.success
        report.batches += outcome.requests
        for refused, transient in [(r, False) for r in outcome.failures] + [
            (r, True) for r in outcome.undelivered
        ]:
            report.failed += 1
            report.undelivered += transient
            assert refused.data is not None
            code = refused.code if refused.code is not None or not transient else UNDELIVERED
            self._fail(replace(refused, code=code, event=decode_event(refused.data), transient=transient))

    def _fail(self, failure: FailedRow) -> None:
        self.report.record(failure)
        if self.on_failure is not None:
            self.on_failure(failure)

    def _batches(self, items: Iterable[Event | FailedRow]) -> Iterator[list[Event]]:
        """Cut events into batches by count and bytes; account for rejections on the way."""
        report = self.report
        limit_count, limit_bytes = self.batch_size, self.max_batch_bytes - _BATCH_OVERHEAD
        batch: list[Event] = []
        size = 0
        for item in items:
            report.total += 1
            if type(item) is not Event:
                if isinstance(item, FailedRow):
                    report.invalid += 1
                    self._fail(item)
                    continue
                raise TypeError(f"delivery takes Event or Rejection items, got {type(item).__name__}")
            n = len(item.data) + 1  # the comma
            if batch and (len(batch) >= limit_count or size + n > limit_bytes):
                yield batch
                batch, size = [], 0
            if n > limit_bytes:
                # Bigger than a whole request may be: never sendable, rejected like invalid input.
                report.invalid += 1
                self._fail(
                    FailedRow(
                        index=item.index,
                        error=f"event of {n - 1} bytes is larger than max_batch_bytes allows",
                        code="event_too_large",
                        event_id=item.event_id,
                        event=decode_event(item.data),
                        data=item.data,
                    )
                )
                continue
            batch.append(item)
            size += n
        if batch:
            yield batch

    def _log_progress(self, started: float) -> None:
        r = self.report
        elapsed = time.monotonic() - started
        rate = r.total / elapsed if elapsed > 0 else 0.0
        self.log.info(
            "Progress: %s rows read, %s events accepted, %s failed, %s invalid; %.0f rows/s, %.0fs elapsed",
            r.total,
            r.success,
            r.failed,
            r.invalid,
            rate,
            elapsed,
        )

    # -- sender threads -------------------------------------------------------------------------------

    def _send(self, batch: list[Event]) -> _Outcome:
        outcome = _Outcome()
        # A whole-request failure of the first post stops the run (raised to the caller's thread).
        try:
            transient = self._post_split(batch, outcome)
        except EnsoError as err:
            if outcome.success or outcome.failures:
                raise _Stopped(err, outcome) from err
            raise
        return self._rounds(transient, outcome)

    def _rounds(self, transient: list[FailedRow], outcome: _Outcome) -> _Outcome:
        """
        Re-send the records that failed transiently, alone, ``record_retries`` rounds at most, spaced by
        the retry policy's waits (one tenacity loop, as for whole requests).

        Whatever happens to a re-send, a record keeps the last code and status Enso gave it until it is
        delivered or refused for good: a round that fails whole (network, deadline, 5xx after the hook's
        retries) leaves its records as they were, never without a code.
        """
        if not transient or not self.record_retries:
            outcome.undelivered.extend(transient)
            return outcome
        pending = transient

        def round_() -> None:
            nonlocal pending
            pending = self._resend(pending, outcome)
            if pending:
                raise _StillTransient

        retrying = self.policy.retrying(
            attempts=self.record_retries, sleep=self._sleep, retry_on=_StillTransient
        )
        try:
            # The batch's own post was the first attempt: wait before the first round too.
            self._sleep(self.policy.wait(1, None))
            retrying(round_)
        except _StillTransient:
            pass
        outcome.undelivered.extend(pending)
        return outcome

    def _resend(self, records: list[FailedRow], outcome: _Outcome) -> list[FailedRow]:
        """One round: post ``records``' events again; return those still failing transiently."""
        previous = {r.index: r for r in records}
        return self._post_split([_event_of(r) for r in records], outcome, previous=previous)

    def _post_split(
        self, batch: list[Event], outcome: _Outcome, *, previous: dict[int, FailedRow] | None = None
    ) -> list[FailedRow]:
        """
        Post ``batch``; on 413 split it in halves. Return the records that failed transiently.

        :param previous: in a re-send round, how each record failed before: a request that fails whole
            for a transient reason (after the hook's retries) leaves its records as they were, with
            Enso's last code and status, instead of stopping the run (their batch already landed).
        """
        body = encode_batch([event.data for event in batch])
        try:
            outcome.requests += 1
            result = self.poster.post_batch_body(body, sent=len(batch))
        except EnsoRequestError as err:
            if err.status_code == 413 and len(batch) > 1:
                # Enso's payload limit is undocumented: a body too large is split, never dropped.
                half = len(batch) // 2
                return self._post_split(batch[:half], outcome, previous=previous) + self._post_split(
                    batch[half:], outcome, previous=previous
                )
            # The whole request was refused for a reason resending cannot fix: every record failed.
            code = err.code if err.code is not None else f"http_{err.status_code}"
            outcome.failures.extend(_refused(event, code, err.status_code, str(err)) for event in batch)
            return []
        except EnsoConfigError:
            # A redirect or a misconfiguration meets every request alike: it stops the run.
            raise
        except EnsoError as err:
            if previous is None:
                raise
            self.log.warning("Re-sending %s transiently failed record(s) failed: %s", len(batch), err)
            kept = [previous[event.index] for event in batch]
            return [replace(r, error=f"{r.error} (re-send: {err})") for r in kept]
        return self._take_result(batch, result, outcome)

    @staticmethod
    def _take_result(batch: list[Event], result: BatchResult, outcome: _Outcome) -> list[FailedRow]:
        """Count Enso's answer into ``outcome``; return the records that failed transiently."""
        transient: list[FailedRow] = []
        outcome.success += result.success
        for record in result.failed_records:
            refused = _refused(batch[record.index], record.code, record.status_code, record.error)
            if is_transient_status(record.status_code):
                transient.append(refused)
            else:
                outcome.failures.append(refused)
        return transient


def validate_delivery_options(batch_size: int, max_batch_bytes: int, concurrency: int) -> None:
    """Raise ``ValueError`` with a clear message for delivery options that cannot work."""
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("max_batch_bytes", max_batch_bytes, 1024),
        ("concurrency", concurrency, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
