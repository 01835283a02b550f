"""Retry policy for Enso requests: which failures are transient and how long to wait before the next try."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: Statuses worth sending the same request again for: rate limiting, gateway and server failures.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


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
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)!r}")

    def backoff(self, attempt: int) -> float:
        """
        Wait before the try after ``attempt`` (1-based), exponential with "equal jitter".

        Half the exponential step is kept so waits grow reliably; the other half is random so that
        many workers rejected at once do not come back at once.
        """
        step = min(self.backoff_max, self.backoff_factor * (2 ** (attempt - 1)))
        return step / 2 + random.uniform(0, step / 2)

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Wait before the next try: the server's ``Retry-After`` when given (capped), else backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        return self.backoff(attempt)


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
