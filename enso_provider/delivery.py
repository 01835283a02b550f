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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from enso_provider.events import Event, Rejection, decode_event, encode_batch
from enso_provider.exceptions import EnsoError, EnsoRequestError
from enso_provider.hooks.results import BatchResult

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_BATCH_BYTES = 512 * 1024
DEFAULT_CONCURRENCY = 4
#: Rounds of re-sending the records Enso failed transiently (statusCode 429/5xx inside a 200).
DEFAULT_RECORD_RETRIES = 3
#: How many failures a report keeps whole; the rest are counted by code.
SAMPLE_SIZE = 20
#: Seconds between two progress lines in the task log.
PROGRESS_INTERVAL = 15.0

_BATCH_OVERHEAD = len(b'{"events":[]}')


def is_transient_status(status_code: int | None) -> bool:
    """Whether a record that failed with this status may pass if sent again unchanged."""
    return status_code is not None and (status_code == 429 or status_code >= 500)


class BatchPoster(Protocol):
    """What delivery needs from the hook: post one encoded body of ``sent`` events, with retries."""

    def post_batch_body(self, body: bytes, *, sent: int, prior_attempts: int = 0) -> BatchResult: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """
    One row that did not become an accepted event, in the API's failed-record shape.

    :param index: the row's position in the caller's input.
    :param error: why, for a person.
    :param code: Enso's code (int or str) or a local code (str).
    :param status_code: Enso's per-record status, or 400 for a local rejection.
    :param event_id: the event's id when an event was built.
    :param event: the event (decoded) when one was built.
    :param row: the source row (JSON-safe) when known.
    :param row_key: the row's key column value when known.
    :param local: True when rejected before sending.
    :param data: the event's bytes exactly as built and sent (what a replay sends again).
    """

    index: int
    error: str
    code: int | str | None
    status_code: int | None
    event_id: str | None = None
    event: dict[str, Any] | None = None
    row: Any = None
    row_key: str | None = None
    local: bool = False
    data: bytes | None = None

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready record for reports and the rejected-records file."""
        return {
            "index": self.index,
            "error": self.error,
            "code": self.code,
            "statusCode": self.status_code,
            "eventId": self.event_id,
            "rowKey": self.row_key,
            "rejectedBy": "local" if self.local else "enso",
            "row": self.row,
            "event": self.event,
            # The event as sent, as JSON text: every digit kept (``event`` reads numbers as doubles).
            "eventJson": self.data.decode() if self.data is not None else None,
        }

    @classmethod
    def from_rejection(cls, rejection: Rejection) -> Failure:
        event = rejection.event
        return cls(
            index=rejection.index,
            error=rejection.error,
            code=rejection.code,
            status_code=rejection.status_code,
            event_id=(event or {}).get("eventId"),
            event=event,
            row=rejection.row,
            row_key=rejection.row_key,
            local=True,
        )


class ItemChunks:
    """
    Items that arrive a list at a time (as :meth:`EventMapper.map_chunks` gives them), so that the
    delivery can batch a run of events at once. Iterating it gives the items one by one.

    :param chunks: lists of events and rejections, in input order.
    """

    __slots__ = ("chunks",)

    def __init__(self, chunks: Iterable[list[Event | Rejection]]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[Event | Rejection]:
        for chunk in self.chunks:
            yield from chunk


@dataclass
class DeliveryReport:
    """
    What happened to every input item. ``total == success + failed + invalid`` and
    ``sent == success + failed`` always hold.

    :param total: items read from the input.
    :param sent: events posted to Enso (each counted once, however often it was re-sent).
    :param success: events Enso accepted.
    :param failed: events Enso refused (or that stayed undeliverable after retries).
    :param invalid: items rejected locally, never sent.
    :param batches: requests that carried events (re-sends included).
    :param errors: failures counted by code.
    :param sample: the first failures, whole.
    :param dry_run: nothing was posted; ``sent`` counts what would have been.
    """

    total: int = 0
    sent: int = 0
    success: int = 0
    failed: int = 0
    invalid: int = 0
    batches: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    elapsed: float = 0.0

    @property
    def failures(self) -> int:
        """Rows that were not accepted: rejected locally plus refused by Enso."""
        return self.failed + self.invalid

    def record(self, failure: Failure) -> None:
        self.errors[str(failure.code)] += 1
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(failure.as_record())

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values (XCom)."""
        return {
            "total": self.total,
            "sent": self.sent,
            "success": self.success,
            "failed": self.failed,
            "invalid": self.invalid,
            "batches": self.batches,
            "errors": dict(self.errors.most_common()),
            "sample": list(self.sample),
            "dry_run": self.dry_run,
            "elapsed_seconds": round(self.elapsed, 3),
        }


#: A record Enso refused: the event, its code, its status, the error.
_Failed = tuple[Event, int | str | None, int | None, str]
#: Work a batch still needs from a sender thread: the task, the batch, the task's arguments.
_Need = tuple[Callable[..., "_Outcome"], list[Event], tuple[Any, ...]]


@dataclass(slots=True)
class _Outcome:
    """What one batch (with its record re-sends) ended with."""

    success: int = 0
    requests: int = 0
    failures: list[_Failed] = field(default_factory=list)


class _Stopped(Exception):
    """A whole-request error that stopped a batch after some of its 413 halves had landed."""

    def __init__(self, error: EnsoError, outcome: _Outcome) -> None:
        super().__init__(str(error))
        self.error = error
        self.outcome = outcome


class Delivery:
    """
    Sends encoded events in batches, concurrently, and accounts for each of them.

    :param poster: posts one body (the hook).
    :param batch_size: most events in one request.
    :param max_batch_bytes: most bytes in one request body.
    :param concurrency: most requests in flight at once.
    :param record_retries: rounds of re-sending records that failed transiently inside a 200.
    :param dry_run: cut batches and count, but post nothing.
    :param on_failure: called (in the caller's thread) with every failure, local or remote.
    :param sleep: waits between record re-send rounds (replaceable in tests).
    """

    def __init__(
        self,
        poster: BatchPoster,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        record_retries: int = DEFAULT_RECORD_RETRIES,
        record_backoff: float = 0.5,
        dry_run: bool = False,
        on_failure: Callable[[Failure], None] | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any = None,
    ) -> None:
        validate_delivery_options(batch_size, max_batch_bytes, concurrency)
        if record_retries < 0:
            raise ValueError(f"record_retries must be 0 or more, got {record_retries!r}")
        self.poster = poster
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.concurrency = concurrency
        self.record_retries = record_retries
        self.record_backoff = record_backoff
        self.dry_run = dry_run
        self.on_failure = on_failure
        self.progress_interval = progress_interval
        self._sleep = sleep
        self.log = logger or log
        self.report = DeliveryReport(dry_run=dry_run)

    # -- the caller's thread ----------------------------------------------------------------------------

    def run(self, items: Iterable[Event | Rejection]) -> DeliveryReport:
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
        open_pipeline = getattr(self.poster, "open_pipeline", None)
        self._pipeline = open_pipeline(self.concurrency) if open_pipeline and not self.dry_run else None
        self._slots: list[list[Event] | None] = [None] * self.concurrency
        turn = 0
        try:
            for batch in self._batches(items):
                if self.dry_run:
                    report.sent += len(batch)
                    report.success += len(batch)
                    report.batches += 1
                    continue
                # A batch counts as sent from when a slot or a sender thread holds it.
                if self._pipeline is not None:
                    self._pipelined(turn, batch)
                    turn = (turn + 1) % self.concurrency
                else:
                    self._submit(self._send, batch, batch)
                self._collect(block=False)
                if self.progress_interval and time.monotonic() >= next_progress:
                    self._log_progress(started)
                    next_progress = time.monotonic() + self.progress_interval
            self._finish_slots()
            while self._in_flight:
                self._collect(block=True)
        except BaseException as err:
            # Let what is in flight land and be counted, then re-raise the first error, carrying the
            # counts so far: what was accepted before the stop is known, not guessed.
            self._finish_slots(after_error=True)
            self._drain()
            if isinstance(err, EnsoError):
                err.report = report
            raise
        finally:
            if self._pipeline is not None:
                self._pipeline.close()
            self._pool.shutdown(wait=True, cancel_futures=True)
            report.elapsed = time.monotonic() - started
        return report

    def _submit(self, task: Callable[..., _Outcome], batch: list[Event], *args: Any) -> None:
        """Run ``task(*args)`` on a sender thread, keeping at most ``concurrency`` of them busy."""
        while len(self._in_flight) >= self.concurrency:
            self._collect(block=True)
        self._in_flight[self._pool.submit(task, *args)] = batch
        self.report.sent += len(batch)

    # -- pipelined first attempts (the caller's thread) -----------------------------------------------
    #
    # While every answer is a clean 200, the caller's thread posts and reads in turn on ``concurrency``
    # connections. The first answer that is not (an error status, a network error, records to re-send)
    # ends pipelining for the run: every slot's answer is read, then the batches that need more go to
    # sender threads, as does the rest of the run. So at most ``concurrency`` requests are ever in
    # flight, and all retry rules are the hook's.

    def _pipelined(self, slot: int, batch: list[Event]) -> None:
        """Post ``batch`` on ``slot``, after reading the answer of the batch posted there before."""
        assert self._pipeline is not None
        need = self._read_slot(slot)
        if need is not None:
            self._degrade([need, (self._send, batch, (batch,))])
            return
        try:
            self._pipeline.send(slot, encode_batch([event.data for event in batch]))
        except EnsoError:
            # The credentials themselves failed (a refused or broken token exchange, after its
            # retries): as on the threaded path, that stops the run.
            raise
        except Exception as err:
            self.log.debug("Pipelined post failed (%s); switching to sender threads", type(err).__name__)
            self._degrade([(self._retry, batch, (batch, 0.0, 0))])
            return
        self._slots[slot] = batch
        self.report.sent += len(batch)

    def _read_slot(self, slot: int) -> _Need | None:
        """Account for ``slot``'s answer if it is a clean 2xx; else return what the batch still needs."""
        assert self._pipeline is not None
        batch = self._slots[slot]
        self._slots[slot] = None
        if batch is None:
            return None
        # Only a poster that opened a pipeline gets here: the hook, with the methods used below.
        poster: Any = self.poster
        status: int | None = None
        headers: Any = None
        result: BatchResult | None = None
        try:
            status, content, headers = self._pipeline.receive(slot)
            if 200 <= status < 300:
                result = poster.read_batch_answer(content, sent=len(batch))
        except Exception as err:
            # No answer, or a 2xx that is not the documented shape: retried like a 5xx, after a backoff.
            self.log.debug("Pipelined answer unusable (%s); switching to sender threads", type(err).__name__)
            status = None if status is not None and 200 <= status < 300 else status
        except BaseException:
            # Interrupted (task timeout, kill): never confirmed, so not counted.
            self.report.sent -= len(batch)
            raise
        if result is not None:
            outcome = _Outcome(requests=1)
            transient = self._take_result(batch, result, outcome)
            if not transient:
                # Outside the try: an error of the failure callback (the rejected-records file) is the
                # run's error, never a reason to send the batch again.
                self._account(outcome)
                return None
            self.report.sent -= len(batch)  # held again when a sender thread takes it
            return (self._rounds, batch, (transient, outcome))
        self.report.sent -= len(batch)  # held again when a sender thread takes it
        if status == 401:
            poster.invalidate_token(self._pipeline.generations[slot])
        return (self._retry, batch, (batch, poster.first_retry_wait(status, headers), 1, status))

    def _degrade(self, needs: list[_Need]) -> None:
        """End pipelining: read every slot, then hand what needs more to sender threads."""
        try:
            if self._pipeline is not None:
                for slot in range(self.concurrency):
                    need = self._read_slot(slot)
                    if need is not None:
                        needs.append(need)
                self._pipeline.close()
                self._pipeline = None
            while needs:
                task, batch, args = needs[0]
                self._submit(task, batch, *args)
                needs.pop(0)
        except BaseException:
            # The run is stopping: answers already read still count, what they left undone does not.
            self._settle_needs(needs)
            raise

    def _settle_needs(self, needs: list[_Need]) -> None:
        """Count what Enso answered for in needs that will not run (the accepted part of a 2xx)."""
        for task, _, args in needs:
            if task == self._rounds:
                _, outcome = args
                self.report.sent += outcome.success + len(outcome.failures)
                self._account(outcome)

    def _finish_slots(self, *, after_error: bool = False) -> None:
        """Read every slot at the end of the run; after an error, drop what is not confirmed."""
        if self._pipeline is None:
            return
        if not after_error:
            self._degrade([])
            return
        for slot in range(self.concurrency):
            need = self._read_slot(slot)
            # The run is stopping: what needs more is not counted (the task's retry sends it again),
            # except the records of a 2xx that Enso did answer for.
            if need is not None:
                self._settle_needs([need])
        self._pipeline.close()
        self._pipeline = None

    def _retry(
        self, batch: list[Event], wait_first: float, requests_so_far: int = 0, status: int | None = None
    ) -> _Outcome:
        """The retry path of a batch whose pipelined attempt failed: wait, then send with retries."""
        if wait_first:
            self._sleep(wait_first)
        # Like the hook's own retries, the failed attempt is not a batch of its own in the report.
        return self._send(batch, prior_attempts=requests_so_far, split=status == 413)

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
            landed = error.outcome.success + len(error.outcome.failures)
            error = error.error
        # The rest was never confirmed, so not counted as sent: the task's retry sends it again.
        self.report.sent -= len(batch) - landed
        return error

    def _account(self, outcome: _Outcome) -> None:
        report = self.report
        report.success += outcome.success
        report.batches += outcome.requests
        for event, code, status, error in outcome.failures:
            report.failed += 1
            self._fail(
                Failure(
                    index=event.index,
                    error=error,
                    code=code,
                    status_code=status,
                    event_id=event.event_id,
                    event=decode_event(event.data),
                    data=event.data,
                )
            )

    def _fail(self, failure: Failure) -> None:
        self.report.record(failure)
        if self.on_failure is not None:
            self.on_failure(failure)

    def _batches(self, items: Iterable[Event | Rejection]) -> Iterator[list[Event]]:
        """Cut events into batches by count and bytes; account for rejections on the way."""
        report = self.report
        limit_count, limit_bytes = self.batch_size, self.max_batch_bytes - _BATCH_OVERHEAD
        chunks: Iterable[list[Event | Rejection]]
        chunks = items.chunks if isinstance(items, ItemChunks) else ([item] for item in items)
        batch: list[Event] = []
        size = 0
        for chunk in chunks:
            for item in chunk:
                report.total += 1
                if type(item) is not Event:
                    if isinstance(item, Rejection):
                        report.invalid += 1
                        self._fail(Failure.from_rejection(item))
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
                        Failure(
                            index=item.index,
                            error=f"event of {n - 1} bytes is larger than max_batch_bytes allows",
                            code="event_too_large",
                            status_code=400,
                            event_id=item.event_id,
                            event=decode_event(item.data),
                            local=True,
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

    # -- worker threads -------------------------------------------------------------------------------

    def _send(self, batch: list[Event], prior_attempts: int = 0, *, split: bool = False) -> _Outcome:
        outcome = _Outcome()
        # A whole-request failure of the first post stops the run (raised to the caller's thread).
        try:
            if split and len(batch) > 1:
                # Its pipelined attempt was refused as too large: start with the halves.
                half = len(batch) // 2
                transient = self._post_split(batch[:half], outcome) + self._post_split(batch[half:], outcome)
            else:
                transient = self._post_split(batch, outcome, prior_attempts)
        except EnsoError as err:
            if outcome.success or outcome.failures:
                raise _Stopped(err, outcome) from err
            raise
        return self._rounds(transient, outcome)

    def _rounds(self, transient: list[_Failed], outcome: _Outcome) -> _Outcome:
        """Re-send the records that failed transiently, alone, ``record_retries`` rounds at most."""
        for round_number in range(1, self.record_retries + 1):
            if not transient:
                return outcome
            self._sleep(min(self.record_backoff * 2 ** (round_number - 1), 30.0))
            # The batch itself landed; a re-send that fails whole leaves its records failed, with the
            # cause, and only those (halves of a split that landed stay counted once).
            transient = self._post_split([event for event, *_ in transient], outcome, fail_whole=True)
        outcome.failures.extend(transient)
        return outcome

    def _post_split(
        self, batch: list[Event], outcome: _Outcome, prior_attempts: int = 0, *, fail_whole: bool = False
    ) -> list[_Failed]:
        """
        Post ``batch``; on 413 split it in halves. Return the records that failed transiently.

        With ``fail_whole``, a request that fails beyond the hook's retries marks its own records failed
        instead of raising (record re-send rounds, whose batch already landed).
        """
        body = encode_batch([event.data for event in batch])
        try:
            outcome.requests += 1
            if prior_attempts:
                result = self.poster.post_batch_body(body, sent=len(batch), prior_attempts=prior_attempts)
            else:
                result = self.poster.post_batch_body(body, sent=len(batch))
        except EnsoRequestError as err:
            if err.status_code == 413 and len(batch) > 1:
                # Enso's payload limit is undocumented: a body too large is split, never dropped.
                half = len(batch) // 2
                return self._post_split(batch[:half], outcome, fail_whole=fail_whole) + self._post_split(
                    batch[half:], outcome, fail_whole=fail_whole
                )
            # The whole request was refused for a reason resending cannot fix: every record failed.
            code = err.code if err.code is not None else f"http_{err.status_code}"
            outcome.failures.extend((event, code, err.status_code, str(err)) for event in batch)
            return []
        except EnsoError as err:
            if not fail_whole:
                raise
            cause: int | str | None = err.code if err.code is not None else err.status_code
            outcome.failures.extend((event, cause, err.status_code, str(err)) for event in batch)
            return []
        return self._take_result(batch, result, outcome)

    @staticmethod
    def _take_result(batch: list[Event], result: BatchResult, outcome: _Outcome) -> list[_Failed]:
        """Count Enso's answer into ``outcome``; return the records that failed transiently."""
        transient: list[_Failed] = []
        outcome.success += result.success
        for record in result.failed_records:
            failed = (batch[record.index], record.code, record.status_code, record.error)
            if is_transient_status(record.status_code):
                transient.append(failed)
            else:
                outcome.failures.append(failed)
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
