"""
Seeded random fault schedules: random input (invalid rows, unknown customers, repeated rows and
repeated keys), random batch sizes, concurrency and auth, and random faults of every kind at random
points. Each schedule re-runs the task, as Airflow's retries or a clear would, until it succeeds;
then Enso holds exactly the events of the valid input rows, once each, and every report adds up.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from enso_provider.exceptions import EnsoError
from tests.reliability.reliability_kit import (
    CUSTOMERS,
    DEFECTS,
    METRICS,
    TALLY,
    Outcome,
    ReliabilityEmulator,
    Rows,
    assert_accounting,
    assert_stored_once,
    assert_well_formed_only,
    content_of_row,
    expected_events,
    run_operator,
    sendable_events,
    task_context,
    use_connection,
)
from tests.reliability.secret_watch import SecretWatch

SCHEDULES = 200
# Faults are finite, so re-runs end; this bound only turns a bug into a failure instead of a hang.
MAX_RUNS = 25
# Short, for speed; far above what an unfaulted request takes here, so a timeout is always a fault.
# A hung request is held past the client's read timeout. The timeout leaves room for an ordinary
# request on a busy machine: a spurious timeout would re-send a stored batch the counts do not expect.
HANG_TIMEOUT = 1.0
HANG_SECONDS = 2.0
KEY = "row_key"

WHOLE_REQUEST_FAULTS: list[tuple[str, dict[str, Any], int]] = [
    # (kind, options, weight)
    ("status", {"status": 429, "retry_after": "1"}, 3),
    ("status", {"status": 500}, 3),
    ("status", {"status": 502, "html": True}, 3),
    ("status", {"status": 503}, 3),
    ("reset", {}, 3),
    ("malformed", {"variant": "truncated"}, 1),
    ("malformed", {"variant": "not_json"}, 1),
    ("malformed", {"variant": "wrong_shape"}, 1),
    ("malformed", {"variant": "empty"}, 1),
    ("hang", {"seconds": HANG_SECONDS}, 1),
    # Not the emulator's own: stored, then the answer is lost (see ReliabilityEmulator.lose_answers).
    ("lost", {"how": "reset"}, 2),
    ("lost", {"how": "hang", "seconds": HANG_SECONDS}, 1),
]

# Faults of POST /auth/system-login: a refused client (401) stops the run; the others are retried.
LOGIN_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("status", {"status": 401}),
    ("status", {"status": 500}),
    ("status", {"status": 503, "retry_after": "1"}),
    ("reset", {}),
    ("malformed", {"variant": "not_json"}),
    ("hang", {"seconds": HANG_SECONDS}),
]


@dataclass
class Schedule:
    """One random run plan: input, options, and the faults to schedule before the first run."""

    rows: Rows
    operator: dict[str, Any]
    auth: str
    extra: dict[str, Any]
    faults: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)
    record_faults: tuple[list[str], int, int] | None = None
    expiry_after: int | None = None
    login_fault: tuple[str, int, int, dict[str, Any]] | None = None

    def describe(self) -> str:
        return (
            f"{len(self.rows.rows)} rows, {self.operator}, auth={self.auth}, faults={self.faults}, "
            f"records={self.record_faults and self.record_faults[1:]}, expiry={self.expiry_after}, "
            f"login={self.login_fault}"
        )


def random_rows(rng: random.Random, keyed: bool) -> Rows:
    count = rng.randint(200, 2000)
    p_invalid = rng.choice([0.0, 0.01, 0.05, 0.1])
    p_unknown = rng.choice([0.0, 0.02, 0.05])
    p_repeat = rng.choice([0.0, 0.02, 0.05])
    out = Rows(rows=[])
    previous: dict[str, Any] | None = None
    for n in range(count):
        row: dict[str, Any] = {
            "customer_entity_id": rng.choice(CUSTOMERS),
            "metric": rng.choice(METRICS),
            "value": rng.choice([n, n * 0.5, float(rng.randint(0, 10**6))]),
            "timestamp": f"2024-05-01T10:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        }
        if keyed:
            row[KEY] = f"key-{n}"
        draw = rng.random()
        if draw < p_invalid:
            code, change, _ = rng.choice(DEFECTS)
            row.update(change)
            out.invalid[code] += 1
        elif draw < p_invalid + p_unknown:
            row["customer_entity_id"] = f"ghost_{n}"
            out.refused += 1
        elif previous is not None and rng.random() < p_repeat:
            # The same row again: a second usage event by content, or a repeated key (rejected).
            row = dict(previous)
            if keyed:
                out.invalid["duplicate_event_id"] += 1
            else:
                out.stored[content_of_row(row)] += 1
        else:
            out.stored[content_of_row(row)] += 1
            previous = row
        out.rows.append(row)
    return out


def random_schedule(seed: int) -> Schedule:
    rng = random.Random(seed)
    keyed = rng.random() < 0.3
    rows = random_rows(rng, keyed)
    operator: dict[str, Any] = {
        "events": rows.rows,
        "batch_size": rng.choice([7, 25, 50, 100, 250]),
        "concurrency": rng.randint(1, 4),
        "max_failures": rows.failures,
    }
    if keyed:
        operator["event_id_column"] = KEY
    auth = "client_credentials" if rng.random() < 0.4 else "token"
    schedule = Schedule(rows, operator, auth, extra={})
    sendable = len(rows.rows) - sum(rows.invalid.values())
    batches = max(1, math.ceil(sendable / operator["batch_size"]))
    kinds = [(kind, opts) for kind, opts, weight in WHOLE_REQUEST_FAULTS for _ in range(weight)]
    for _ in range(rng.randint(0, 4)):
        kind, opts = rng.choice(kinds)
        slow = kind == "hang" or opts.get("how") == "hang"
        count = 1 if slow else rng.randint(1, 4)
        schedule.faults.append((kind, count, rng.randint(0, batches + 1), dict(opts)))
        if slow:
            schedule.extra["timeout"] = HANG_TIMEOUT
    if rng.random() < 0.4:
        schedule.record_faults = ([], rng.choice([429, 500, 503]), rng.randint(1, 5))
    if auth == "client_credentials":
        if rng.random() < 0.7:
            schedule.expiry_after = rng.randint(0, batches)
        if rng.random() < 0.3:
            kind, opts = rng.choice(LOGIN_FAULTS)
            slow = kind == "hang"
            schedule.login_fault = (kind, 1 if slow else rng.randint(1, 3), rng.randint(0, 2), dict(opts))
            if slow:
                schedule.extra["timeout"] = HANG_TIMEOUT
    return schedule


@pytest.mark.parametrize("seed", range(SCHEDULES))
def test_random_fault_schedule(
    enso: ReliabilityEmulator, monkeypatch: pytest.MonkeyPatch, secret_watch: SecretWatch, seed: int
) -> None:
    schedule = random_schedule(seed)
    rows = schedule.rows
    context = task_context(dag_id="reliability_random", task_id=f"schedule_{seed}")
    mapping = {"event_id_column": KEY} if "event_id_column" in schedule.operator else {}
    expected_ids = [e.event_id for e in expected_events(rows.rows, context, **mapping)]
    use_connection(monkeypatch, enso, auth=schedule.auth, **schedule.extra)
    rng = random.Random(seed * 7919 + 1)
    for kind, count, after, opts in schedule.faults:
        if kind == "lost":
            enso.lose_answers(count, after, **opts)
        else:
            enso.inject(kind, count, after, **opts)
    if schedule.record_faults is not None:
        _, status, times = schedule.record_faults
        sent_ids = [e.event_id for e in sendable_events(rows.rows, context, **mapping)]
        enso.fail_records(rng.sample(sent_ids, min(len(sent_ids), rng.randint(1, 5))), status, times)
    if schedule.expiry_after is not None:
        enso.expire_tokens_at(schedule.expiry_after)
    if schedule.login_fault is not None:
        kind, count, after, opts = schedule.login_fault
        enso.inject(kind, count, after, endpoint="login", **opts)

    runs: list[Outcome] = []
    while True:
        outcome = run_operator(context, **schedule.operator)
        secret_watch.add(outcome.error, outcome.returned)
        runs.append(outcome)
        report = outcome.report
        assert report is not None, (outcome.error, schedule.describe())
        assert_accounting(report, complete=outcome.state != "retry")
        if outcome.state == "success":
            break
        if outcome.state == "retry":
            # Never a crash: only the provider's typed errors stop a run.
            assert isinstance(outcome.error, EnsoError), repr(outcome.error)
        else:
            # The policy caught rows that stayed failed after their re-sends; the next run re-sends them.
            assert report.failed + report.invalid > rows.failures, schedule.describe()
        assert len(runs) < MAX_RUNS, schedule.describe()
    enso.settle()  # a request given up on by a run may still be being counted

    returned = runs[-1].returned
    assert returned is not None
    assert returned["total"] == len(rows.rows)
    assert (returned["success"], returned["failed"], returned["invalid"]) == (
        rows.accepted,
        rows.refused,
        sum(rows.invalid.values()),
    ), schedule.describe()
    assert returned["errors"] == rows.errors()
    assert_stored_once(enso, rows, expected_ids)
    assert_well_formed_only(enso)
    stats = enso.stats
    # Every acceptance Enso counted is in some run's report (runs that stopped included) unless its
    # answer was lost, and every acceptance beyond the first of an event was a deduplicated re-send.
    accepted = sum(run.report.success for run in runs if run.report is not None)
    assert stats.events_accepted == accepted + enso.lost_accepted, schedule.describe()
    assert stats.duplicates == stats.events_accepted - rows.accepted
    TALLY["random schedules"] += 1
    TALLY["random runs"] += len(runs)
    TALLY["random faults applied"] += sum(stats.faults.values()) + enso.expiries + enso.lost_batches
    TALLY.update(f"random outcome {run.state}" for run in runs)
