"""
Shared pieces of the reliability suite: distinctive secrets, the emulator with token expiry on cue,
usage rows whose fate is known in advance, task runs classified as Airflow would, and the checks.

Expectations are computed independently of the provider where it matters (which rows are valid,
which customers exist, what each stored event must contain); the mapper is only used to name the
eventIds a fault should hit.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pendulum

from enso_provider.delivery import Delivery, DeliveryReport
from enso_provider.events import Event, EventMapper
from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.testing import EnsoEmulator
from enso_provider.testing.faults import FaultQueue, make_fault
from enso_provider.testing.server import Request, Response
from enso_provider.version_compat import AirflowFailException

# Distinctive, so that a sighting anywhere is unambiguous (and never a substring of anything else).
SECRET_TOKEN = "enso-api-token-R3L14B1L1TY-7f3c9e1d4b2a"
SECRET_CLIENT = "enso-client-secret-R3L14B1L1TY-b8a2d4f60c91"
CLIENT_KEY = "reliability-client-key"
# Wrong credentials a user might configure: they must not leak either.
WRONG_TOKEN = "enso-api-token-WR0NG-R3L14B1L1TY-55aa66bb77"
WRONG_CLIENT = "enso-client-secret-WR0NG-R3L14B1L1TY-88cc99dd"
SECRETS = (SECRET_TOKEN, SECRET_CLIENT, WRONG_TOKEN, WRONG_CLIENT)

CUSTOMERS = [f"cust_{n:02d}" for n in range(20)]
METRICS = ("api_calls", "storage_gb_hours", "compute_seconds")
INTERVAL_START = pendulum.datetime(2024, 5, 1, 10, tz="UTC")

#: Retry waits of a few milliseconds: the matrix is about outcomes, not about waiting.
FAST_RETRIES: dict[str, Any] = {
    "timeout": 10,
    "max_retries": 2,
    "backoff_factor": 0.001,
    "backoff_max": 0.004,
    "retry_after_max": 0.01,
}
#: Figures of the session (cases, schedules, runs), printed in the terminal summary.
TALLY: Counter[str] = Counter()
#: Record re-send rounds of the delivery (its default), and their backoff in these tests.
RECORD_RETRIES = 3


class ReliabilityEmulator(EnsoEmulator):
    """
    The emulator, plus two faults it does not have, both counted in arrival order like
    ``inject(after=...)`` so that "the middle batch" means the same thing for all:

    - token expiry on cue: ``expire_tokens_at(after)`` lets ``after`` batch requests through, then
      expires every issued token just before the next one is handled;
    - lost answers: ``lose_answers(count, after, how)`` lets a request be stored as usual, then loses
      its answer (``how="reset"``: the connection is reset; ``"hang"``: held past the client's read
      timeout). The client cannot know the events were stored: the case that makes duplicates.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cue_lock = threading.Lock()
        # Batch requests being handled and not yet counted (lost ones included): see settle().
        self._counting = 0
        self._counted = threading.Condition(self._cue_lock)
        self._expiry_countdown: int | None = None
        self.expiries = 0
        self._lost = FaultQueue()
        #: What was processed in requests whose answer was then lost: batches, accepted and failed events.
        self.lost_batches = self.lost_accepted = self.lost_failed = 0

    def lose_answers(
        self, count: int = 1, after: int = 0, *, how: str = "reset", seconds: float = 2.0
    ) -> None:
        """Store the next ``count`` batch requests (after ``after``), then lose their answers."""
        if how == "hang":
            self._lost.add(make_fault("hang", count, after, seconds=seconds))
        else:
            self._lost.add(make_fault("reset", count, after))

    def expire_tokens_at(self, after: int) -> None:
        """Expire the issued tokens when the ``after + 1``-th batch request from now arrives."""
        with self._cue_lock:
            self._expiry_countdown = after

    def quiesce(self) -> None:
        """
        Before the next test: end every open connection (a request written by the last test and not
        yet read is dropped), then wait for the requests being handled to be counted, so that no
        straggler of one test lands in the next one's figures.
        """
        if self._server is not None:
            self._server.close_connections()
        self.settle()

    def settle(self, timeout: float = 30.0) -> None:
        """
        Wait until every batch request that has reached the emulator is counted, in its stats and
        in ``lost_*``: a client that gave up on an answer (its read timeout) may finish its run
        while its request is still being handled here.
        """
        with self._counted:
            if not self._counted.wait_for(lambda: self._counting == 0, timeout):
                raise AssertionError("the emulator is still counting a batch request")

    def _post_events(self, request: Request) -> Response:
        with self._counted:
            self._counting += 1
        try:
            lost, response = self._count_events(request)
        finally:
            with self._counted:
                self._counting -= 1
                self._counted.notify_all()
        if lost is None:
            return response
        if lost.kind == "hang":
            self._stopping.wait(float(lost.options["seconds"]))
        return Response(reset=True)

    def _count_events(self, request: Request) -> tuple[Any, Response]:
        with self._cue_lock:
            due = self._expiry_countdown == 0
            if self._expiry_countdown is not None:
                self._expiry_countdown -= 1
                if due:
                    self._expiry_countdown = None
                    self.expiries += 1
        if due:
            self.expire_tokens()
        lost = self._lost.take()
        response = super()._post_events(request)
        if lost is not None and response.status == 200:
            summary = orjson.loads(response.body)["data"]["summary"]
            with self._cue_lock:
                self.lost_batches += 1
                self.lost_accepted += summary["success"]
                self.lost_failed += summary["failed"]
        return lost, response

    def clear_faults(self) -> None:
        super().clear_faults()
        self._lost.clear()
        with self._cue_lock:
            self._expiry_countdown = None

    def reset(self) -> None:
        super().reset()
        with self._cue_lock:
            self.expiries = 0
            self.lost_batches = self.lost_accepted = self.lost_failed = 0


def start_emulator(**kwargs: Any) -> ReliabilityEmulator:
    """A running emulator that knows ``CUSTOMERS`` and both distinctive credentials."""
    kwargs.setdefault("customers", CUSTOMERS)
    emulator = ReliabilityEmulator(
        token=SECRET_TOKEN, client_key=CLIENT_KEY, client_secret=SECRET_CLIENT, **kwargs
    )
    emulator.start()
    return emulator


def task_context(
    dag_id: str = "reliability",
    task_id: str = "send",
    run_id: str = "scheduled__2024-05-01T10:00:00+00:00",
    start: pendulum.DateTime = INTERVAL_START,
) -> dict[str, Any]:
    """The part of an Airflow context the operator reads (see ``run_namespace``)."""
    ti = SimpleNamespace(dag_id=dag_id, task_id=task_id, map_index=-1, try_number=1)
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "data_interval_start": start,
        "data_interval_end": start.add(hours=1),
        "ds": start.to_date_string(),
        "ts_nodash": start.format("YYYYMMDDTHHmmss"),
    }


# -- rows whose fate is known ------------------------------------------------------------------------

Content = tuple[str, str, float, str]


@dataclass
class Rows:
    """
    Input rows and what must become of them.

    :param rows: the rows, as the operator's ``events`` takes them.
    :param stored: the content (customer, metric, value, timestamp) of every event Enso must store,
        as a multiset: one per valid row of a known customer, repeated rows included.
    :param refused: rows Enso refuses (unknown customers: code 2002).
    :param invalid: rows rejected locally, by code.
    """

    rows: list[dict[str, Any]]
    stored: Counter[Content] = field(default_factory=Counter)
    refused: int = 0
    invalid: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return sum(self.stored.values())

    @property
    def failures(self) -> int:
        return self.refused + sum(self.invalid.values())

    def errors(self, **extra: int) -> dict[str, int]:
        """The report's ``errors`` this input must give, plus ``extra`` codes."""
        expected: Counter[str] = Counter(self.invalid)
        if self.refused:
            expected["2002"] += self.refused
        expected.update(extra)
        return dict(expected)


def _timestamp(n: int) -> str:
    return f"2024-05-01T10:{n % 60:02d}:{(n // 60) % 60:02d}Z"


#: Local defects the matrix rows carry; XCom-safe ones only when the rows go through dag.test.
DEFECTS: list[tuple[str, dict[str, Any], bool]] = [
    ("missing_customer_entity_id", {"customer_entity_id": None}, True),
    ("invalid_value", {"value": float("nan")}, False),
    ("invalid_timestamp", {"timestamp": "2024-13-01T00:00:00Z"}, True),
    ("missing_metric", {"metric": "   "}, True),
    ("invalid_value", {"value": "n/a"}, True),
    ("invalid_timestamp", {"timestamp": None}, True),
]


def usage_rows(count: int, *, xcom_safe: bool = False, invalid_every: int = 100) -> Rows:
    """
    ``count`` usage rows: one in ``invalid_every`` rejected locally, one in ``invalid_every`` of an
    unknown customer (refused by Enso), every 250th a verbatim repeat of the row before it.
    """
    defects = [d for d in DEFECTS if d[2] or not xcom_safe]
    out = Rows(rows=[])
    previous: dict[str, Any] | None = None
    for n in range(count):
        row: dict[str, Any] = {
            "customer_entity_id": CUSTOMERS[n % len(CUSTOMERS)],
            "metric": METRICS[n % len(METRICS)],
            "value": n * 0.25,
            "timestamp": _timestamp(n),
            "region": ("eu", "us")[n % 2],
        }
        if n % invalid_every == invalid_every // 3:
            code, change, _ = defects[(n // invalid_every) % len(defects)]
            row.update(change)
            out.invalid[code] += 1
        elif n % invalid_every == 2 * invalid_every // 3:
            row["customer_entity_id"] = f"ghost_{n}"
            out.refused += 1
        else:
            if n % 250 == 1 and previous is not None:
                row = dict(previous)
            out.stored[content_of_row(row)] += 1
            previous = row
        out.rows.append(row)
    return out


def content_of_row(row: Mapping[str, Any]) -> Content:
    return (row["customer_entity_id"], row["metric"], float(row["value"]), row["timestamp"])


def content_of_event(event: Mapping[str, Any]) -> Content:
    return (event["CustomerEntityId"], event["metric"], float(event["value"]), event["timestamp"])


def stored_content(enso: EnsoEmulator) -> Counter[Content]:
    return Counter(content_of_event(e) for e in enso.events)


def operator_mapper(context: Mapping[str, Any], **mapping: Any) -> EventMapper:
    """The mapper the operator builds for this task run and these mapping options (its namespaces)."""
    op = EnsoBatchEventsOperator(task_id=context["ti"].task_id, events=[], **mapping)
    return op._mapper(context)  # type: ignore[arg-type]


def expected_events(
    rows: Iterable[Mapping[str, Any]],
    context: Mapping[str, Any],
    known: Iterable[str] = CUSTOMERS,
    **mapping: Any,
) -> list[Event]:
    """The events the operator builds for ``rows`` in this task run, for customers Enso knows."""
    customers = set(known)
    items = operator_mapper(context, **mapping).map(rows)
    return [item for item in items if isinstance(item, Event) and _customer_of(item) in customers]


def sendable_events(
    rows: Iterable[Mapping[str, Any]], context: Mapping[str, Any], **mapping: Any
) -> list[Event]:
    """Every event the operator sends for ``rows``, in order (batches are cut from these)."""
    return [item for item in operator_mapper(context, **mapping).map(rows) if isinstance(item, Event)]


def _customer_of(event: Event) -> str:
    return str(orjson.loads(event.data)["CustomerEntityId"])


# -- running the task as Airflow would ---------------------------------------------------------------


class RecordingDelivery(Delivery):
    """Delivery as the hook builds it, remembered so that a run that raised still shows its report."""

    made: list[Delivery] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingDelivery.made.append(self)


@dataclass
class Outcome:
    """
    One task run, classified by what Airflow does with it.

    ``state`` is ``"success"``, ``"retry"`` (any exception but ``AirflowFailException``: the task is
    retried while it has retries left) or ``"fail"`` (``AirflowFailException``: failed, no retry).
    """

    state: str
    report: DeliveryReport | None
    returned: dict[str, Any] | None = None
    error: BaseException | None = None


def run_operator(context: Mapping[str, Any], **kwargs: Any) -> Outcome:
    """Build the operator afresh (as each try does) and run ``execute``; never raises."""
    RecordingDelivery.made.clear()
    kwargs.setdefault("task_id", context["ti"].task_id)
    op = EnsoBatchEventsOperator(**kwargs)
    try:
        returned = op.execute(context)  # type: ignore[arg-type]
    except AirflowFailException as err:
        return Outcome("fail", _report(), error=err)
    except Exception as err:
        return Outcome("retry", _report(), error=err)
    finally:
        op.hook.close()
    return Outcome("success", _report(), returned=returned)


def _report() -> DeliveryReport | None:
    return RecordingDelivery.made[-1].report if RecordingDelivery.made else None


# -- checks ------------------------------------------------------------------------------------------


def assert_accounting(report: DeliveryReport, *, complete: bool) -> None:
    """The report's own identities: ``sent == success + failed`` always; ``total`` when complete."""
    assert report.sent == report.success + report.failed, report.as_dict()
    if complete:
        assert report.total == report.success + report.failed + report.invalid, report.as_dict()


def assert_stored_once(enso: EnsoEmulator, rows: Rows, expected_ids: Sequence[str] | None = None) -> None:
    """Everything Enso should have is stored, exactly once, and nothing else."""
    events = enso.events
    ids = [e["eventId"] for e in events]
    assert len(ids) == len(set(ids))
    assert stored_content(enso) == rows.stored
    assert len(events) == rows.accepted
    if expected_ids is not None:
        assert set(ids) == set(expected_ids)


def assert_subset_stored_once(
    enso: EnsoEmulator, rows: Rows, expected_ids: Iterable[str], *, duplicates: bool = False
) -> None:
    """
    After an interrupted run: what is stored is expected, each at most once, nothing foreign; and
    nothing was even re-sent unless answers were lost.
    """
    stored = stored_content(enso)
    assert not stored - rows.stored, "stored events that no row asked for"
    assert enso.event_ids <= set(expected_ids)
    if not duplicates:
        assert enso.stats.duplicates == 0


def assert_well_formed_only(enso: EnsoEmulator) -> None:
    """Nothing malformed ever reached Enso."""
    assert enso.stats.nan_timestamps == 0


def use_connection(monkeypatch: Any, enso: EnsoEmulator, auth: str = "token", **extra: Any) -> None:
    """Point ``enso_default`` at ``enso`` with this auth and these extras (fast retries by default)."""
    settings = {**FAST_RETRIES, **extra}
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", enso.connection_json(auth=auth, **settings))
