"""
The one retry policy of Enso requests: what is transient, how long to wait, and the tenacity loop.

Whole requests (a batch, the token exchange) and the re-send rounds of records Enso failed transiently
inside a 200 use the same :class:`RetryPolicy` and the same :func:`is_transient_status`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from enso_provider.exceptions import EnsoError, EnsoServerError

T = TypeVar("T")


def is_transient_status(status_code: int | None) -> bool:
    """
    Whether a request (or a record) that failed with this status may pass if sent again unchanged.

    Rate limiting (429), request timeouts (408, 425) and server or gateway failures (5xx, but for 501
    and 505, which say the server will never take the request).
    """
    if status_code is None:
        return False
    return status_code in (408, 425, 429) or (500 <= status_code <= 599 and status_code not in (501, 505))


class Transient(Exception):
    """
    An attempt that failed in a way another attempt may fix; carries what the final error needs.

    :param reason: what happened, for a person (never a credential).
    :param status_code: the HTTP status, when there was an answer.
    :param retry_after: seconds the server asked to wait, when it did.
    :param body: the (scrubbed, truncated) answer body.
    :param code: the API's error code, when the body had one.
    :param kind: the error raised once retries ran out.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        body: str = "",
        code: int | str | None = None,
        kind: type[EnsoError] = EnsoServerError,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after
        self.body = body
        self.code = code
        self.kind = kind

    def final(self, message: str) -> EnsoError:
        """The typed error to raise when no retry is left."""
        return self.kind(message, status_code=self.status_code, code=self.code, body=self.body)


@dataclass(frozen=True)
class RetryPolicy:
    """
    How a request is retried.

    :param max_retries: tries after the first one (0 disables retrying).
    :param backoff_factor: the first wait, in seconds; each later wait doubles it, with jitter.
    :param backoff_max: the longest computed wait between two tries, in seconds.
    :param retry_after_max: the longest a ``Retry-After`` header is honoured, in seconds.
    :param total_wait_max: the most time spent waiting across all retries of one request, in seconds.
    """

    max_retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    total_wait_max: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries!r}")
        for name in ("backoff_factor", "backoff_max", "retry_after_max", "total_wait_max"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be 0 or more, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")

    def backoff(self, attempt: int) -> float:
        """
        Wait before the try after ``attempt`` (1-based), exponential with "equal jitter".

        Half the exponential step is kept so waits grow reliably; the other half is random so that
        many workers rejected at once do not come back at once.
        """
        step = min(self.backoff_max, self.backoff_factor * (2 ** min(attempt - 1, 60)))
        return step / 2 + random.uniform(0, step / 2)

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Wait before the next try: the server's ``Retry-After`` when given (capped), else backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        return self.backoff(attempt)

    def retrying(
        self,
        *,
        attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        before_sleep: Callable[[RetryCallState], None] | None = None,
        retry_on: type[BaseException] = Transient,
    ) -> Retrying:
        """
        A tenacity loop of this policy: ``retry_on`` failures (:class:`Transient`) are tried again.

        :param attempts: most attempts (default ``max_retries + 1``).
        :param retry_on: the exception type that calls for another attempt.
        :param sleep: how a wait is spent (replaceable in tests).
        :param before_sleep: called before each wait (logging).
        """
        most = self.max_retries + 1 if attempts is None else max(1, attempts)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, Transient) else None
            budget = max(self.total_wait_max - state.idle_for, 0.0)
            return min(self.wait(state.attempt_number, retry_after), budget)

        def stop(state: RetryCallState) -> bool:
            out_of_time = state.idle_for >= self.total_wait_max and state.attempt_number > 1
            return stop_after_attempt(most)(state) or out_of_time

        return Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(retry_on),
            before_sleep=before_sleep,
            reraise=True,
            sleep=sleep,
        )

    def call(
        self,
        attempt: Callable[[], T],
        *,
        what: str,
        log: Any,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """
        Run ``attempt`` until it returns or fails for good; raise the typed error once retries ran out.

        :param attempt: one try; raises :class:`Transient` when another try may help.
        :param what: what is tried, for log lines and the final error ("batch request").
        :param log: where each retry is logged (WARNING).
        :raises EnsoError: the last :class:`Transient`, as its ``kind``.
        """

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = exc.reason if isinstance(exc, Transient) else type(exc).__name__
            log.warning(
                "Enso %s failed (%s); retry %s of %s in %.2fs",
                what,
                reason,
                state.attempt_number,
                self.max_retries,
                state.upcoming_sleep,
            )

        retrying = self.retrying(sleep=sleep, before_sleep=log_retry)
        try:
            return retrying(attempt)
        except Transient as last:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise last.final(f"Enso {what} failed after {attempts} attempt(s): {last.reason}") from None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """
    Read a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110, section 10.2.3).

    :param value: the header's value, or None.
    :param now: the current time as a UNIX timestamp (for tests); defaults to ``time.time()``.
    :return: seconds to wait (never negative), or None when absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii():
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


__all__ = ["RetryPolicy", "Transient", "is_transient_status", "parse_retry_after"]
