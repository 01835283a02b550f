"""The fail/warn policy applied to a delivery report once everything deliverable was delivered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from enso_provider.exceptions import EnsoUndeliveredError
from enso_provider.version_compat import AirflowFailException

if TYPE_CHECKING:
    from enso_provider.delivery import DeliveryReport

ON_BREACH = ("fail", "warn")


@dataclass(frozen=True)
class FailurePolicy:
    """
    When a run's failures are too many.

    :param max_failures: most failed rows allowed (None: no limit).
    :param max_failure_ratio: most failed rows as a share of all rows, 0.0-1.0 (None: no limit).
    :param on_breach: ``"fail"`` or ``"warn"``.
    """

    max_failures: int | None = 0
    max_failure_ratio: float | None = None
    on_breach: str = "fail"

    def __post_init__(self) -> None:
        m = self.max_failures
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
            raise ValueError(f"max_failures must be None or an integer of 0 or more, got {m!r}")
        r = self.max_failure_ratio
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r <= 1):
            raise ValueError(f"max_failure_ratio must be None or a number from 0 to 1, got {r!r}")
        if self.on_breach not in ON_BREACH:
            raise ValueError(f"on_breach must be 'fail' or 'warn', got {self.on_breach!r}")

    def breach(self, report: DeliveryReport) -> str | None:
        """A sentence describing the breach, with counts and top error codes; None when within policy."""
        failures = report.failures
        reasons = []
        if self.max_failures is not None and failures > self.max_failures:
            reasons.append(f"{failures} failed rows exceed max_failures={self.max_failures}")
        if self.max_failure_ratio is not None and report.total:
            ratio = failures / report.total
            if ratio > self.max_failure_ratio:
                reasons.append(
                    f"failure ratio {ratio:.4f} exceeds max_failure_ratio={self.max_failure_ratio}"
                )
        if not reasons:
            return None
        top = ", ".join(f"{code}: {count}" for code, count in report.errors.most_common(10))
        return (
            f"Enso delivery breached the failure policy: {'; '.join(reasons)}. "
            f"total={report.total} success={report.success} failed={report.failed} "
            f"invalid={report.invalid}. Top error codes: {top or 'none'}."
        )

    @classmethod
    def checked(cls, task: Any) -> FailurePolicy:
        """
        The policy of an operator's arguments, its delivery options checked: a bad one fails the task.

        :param task: an operator with ``max_failures``, ``max_failure_ratio`` and ``on_breach``, and
            the delivery options ``batch_size``, ``max_batch_bytes`` and ``concurrency``.
        """
        from enso_provider.delivery import validate_delivery_options

        try:
            validate_delivery_options(task.batch_size, task.max_batch_bytes, task.concurrency)
            return cls(
                max_failures=task.max_failures,
                max_failure_ratio=task.max_failure_ratio,
                on_breach=task.on_breach,
            )
        except ValueError as err:
            raise AirflowFailException(str(err)) from None

    def enforce(self, report: DeliveryReport, log: Any) -> None:
        """
        After delivery: fail the task (no retry) on a breach, or log a warning, as ``on_breach`` says.

        Events Enso failed only transiently (408/425/429/5xx on every re-send round) are not a breach but not
        delivered either: whatever the policy, the task then ends with a retryable error, so that
        Airflow's retry sends them again under the same eventIds.
        """
        if report.undelivered and not report.dry_run:
            raise EnsoUndeliveredError(
                f"{report.undelivered} event(s) were failed transiently by Enso (408/425/429/5xx) on every "
                f"re-send round and are not delivered; the task's retry sends them again under the same "
                f"eventIds. total={report.total} success={report.success} failed={report.failed} "
                f"invalid={report.invalid}.",
                report=report,
            )
        breach = self.breach(report)
        if not breach:
            return
        if self.on_breach == "fail":
            raise AirflowFailException(breach)
        log.warning("%s (on_breach='warn': the task succeeds)", breach)
