"""What both Enso operators share: the connection, the delivery options, the failure policy, the report."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Literal

from airflow.sdk import BaseOperator

from enso_provider.delivery import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_MAX_BATCH_BYTES
from enso_provider.events import Event
from enso_provider.hooks.enso import EnsoHook
from enso_provider.models import DeliveryReport, FailedRow
from enso_provider.operators.policy import FailurePolicy
from enso_provider.operators.report import log_report

_freeze_lock = threading.Lock()
#: Runs inside the freeze this module made (deliveries in threads of one process share it).
_runs_in_freeze = 0


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """
    Keep the objects the task process held before the run out of the garbage collector's passes
    (``gc.freeze``, as Airflow's own executors and DAG processor do around forks), and give them back
    after it.

    A run makes millions of short-lived objects; each full collection they trigger would otherwise
    walk everything Airflow, its providers and the DAG hold (measured: a quarter of the run's CPU).
    Cyclic garbage made during the run is collected as usual. Nothing is done when objects are frozen
    already by someone else (a worker forked by LocalExecutor inherits its parent's freeze, which
    serves the same end) or the collector is off; runs in threads of one process share one freeze,
    given back when the last ends.
    """
    global _runs_in_freeze
    with _freeze_lock:
        mine = bool(_runs_in_freeze) or not (gc.get_freeze_count() or not gc.isenabled())
        if mine:
            if not _runs_in_freeze:
                gc.freeze()
            _runs_in_freeze += 1
    try:
        yield
    finally:
        if mine:
            with _freeze_lock:
                _runs_in_freeze -= 1
                if not _runs_in_freeze:
                    gc.unfreeze()


class EnsoDeliveryOperator(BaseOperator):
    """
    The base of the Enso operators: it holds the arguments every delivery takes and applies them.

    :param enso_conn_id: the Enso connection.
    :param batch_size: most events per request (default 500).
    :param max_batch_bytes: most bytes per request body (default 512 KiB).
    :param concurrency: most requests in flight (default 4).
    :param max_failures: most failed rows before the run is a breach; None for no limit. Default 0.
    :param max_failure_ratio: most failed rows as a share of all rows (0.0-1.0); None for no limit.
    :param on_breach: ``"fail"`` (the task fails without retrying) or ``"warn"`` (it logs a warning and
        succeeds).
    :param dry_run: read, map and check everything, post nothing.
    """

    def __init__(
        self,
        *,
        enso_conn_id: str = EnsoHook.default_conn_name,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_failures: int | None = 0,
        max_failure_ratio: float | None = None,
        on_breach: Literal["fail", "warn"] = "fail",
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.enso_conn_id = enso_conn_id
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.concurrency = concurrency
        self.max_failures = max_failures
        self.max_failure_ratio = max_failure_ratio
        self.on_breach = on_breach
        # Not `self.dry_run`: that name is BaseOperator's method for rendering templates only.
        self.is_dry_run = dry_run

    @cached_property
    def hook(self) -> EnsoHook:
        """The Enso hook (built on first use, in ``execute``)."""
        return EnsoHook(enso_conn_id=self.enso_conn_id)

    def checked_policy(self) -> FailurePolicy:
        """The failure policy, the delivery options checked (a bad one fails the task, unretried)."""
        return FailurePolicy.checked(self)

    def deliver(
        self,
        items: Iterable[Event | FailedRow],
        *,
        on_failure: Callable[[FailedRow], None] | None,
    ) -> DeliveryReport:
        """Deliver ``items`` with this operator's delivery options, progress in the task log."""
        with older_objects_frozen():
            return self.hook.deliver(
                items,
                batch_size=self.batch_size,
                max_batch_bytes=self.max_batch_bytes,
                concurrency=self.concurrency,
                dry_run=self.is_dry_run,
                on_failure=on_failure,
                logger=self.log,
            )

    def conclude(
        self,
        report: DeliveryReport,
        policy: FailurePolicy,
        *,
        rejected_records_path: str | None,
        unit: str = "rows",
    ) -> dict[str, Any]:
        """Log the report, apply the policy, and return the report as the task's XCom."""
        result = report.as_dict()
        result["rejected_records_path"] = rejected_records_path
        log_report(self.log, result, unit=unit)
        if report.total == 0:
            self.log.info("Nothing to send: nothing was posted.")
        policy.enforce(report, self.log)
        return result
