"""
The fault matrix: every fault the emulator injects, at the first, a middle and the last batch of a
10,000-row run, once short enough for the retries to absorb and once long enough to outlast them.

Each case checks the first run (outcome, what is stored, the report against the emulator's counts)
and then a second run of the same task, as an Airflow retry or a cleared task would do it (same
namespace): everything is then stored exactly once, and every event re-sent was deduplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from enso_provider.exceptions import (
    EnsoAuthError,
    EnsoConnectionError,
    EnsoResponseError,
    EnsoServerError,
    EnsoUndeliveredError,
)
from enso_provider.hooks.enso import EnsoHook
from tests.reliability.reliability_kit import (
    FAST_RETRIES,
    RECORD_RETRIES,
    Outcome,
    ReliabilityEmulator,
    assert_accounting,
    assert_stored_once,
    assert_subset_stored_once,
    assert_well_formed_only,
    expected_events,
    run_operator,
    sendable_events,
    task_context,
    usage_rows,
    use_connection,
)
from tests.reliability.secret_watch import SecretWatch

ROWS = usage_rows(10_000)
CONTEXT = task_context(dag_id="reliability_matrix")
# A cleared task (or a re-run of the interval from another DAG run) has another run id, same interval.
RERUN_CONTEXT = task_context(dag_id="reliability_matrix", run_id="manual__2024-05-02T08:00:00+00:00")
MAPPING: dict[str, Any] = {"metadata_columns": ["region"]}
EXPECTED_IDS = [e.event_id for e in expected_events(ROWS.rows, CONTEXT, **MAPPING)]
BATCH_SIZE = 500
SENT_IDS = [e.event_id for e in sendable_events(ROWS.rows, CONTEXT, **MAPPING)]
BATCHES = [SENT_IDS[i : i + BATCH_SIZE] for i in range(0, len(SENT_IDS), BATCH_SIZE)]
POSITIONS = {"first": 0, "middle": len(BATCHES) // 2, "last": len(BATCHES) - 1}
# Requests failing in a row for longer than any in-flight batch can retry: an outage.
OUTAGE = 100
# Per-record faults hit this many records of the batch at the position.
RECORDS_HIT = 3
OPERATOR = {
    "events": ROWS.rows,
    "batch_size": BATCH_SIZE,
    **MAPPING,
    # Exactly the input's own failures are tolerated: one more failed row breaches the policy.
    "max_failures": ROWS.failures,
}


@dataclass(frozen=True)
class Fault:
    """
    One kind of fault, and what it must lead to when it outlasts the retries.

    :param name: the case id.
    :param schedule: ``(emulator, persist, after, ids of the batch at the position)``.
    :param persists_as: the documented outcome when it outlasts the retries.
    :param error: the exception that outcome carries.
    :param auth: the connection's auth.
    :param extra: the connection's extras on top of ``FAST_RETRIES``.
    :param record_times: per-record faults: how often each record fails (recover, persist).
    """

    name: str
    schedule: Callable[[ReliabilityEmulator, bool, int, Sequence[str]], None]
    persists_as: str
    error: type[Exception]
    auth: str = "token"
    extra: Mapping[str, Any] = field(default_factory=dict)
    record_times: tuple[int, int] | None = None
    loses_answers: bool = False


def whole_request(kind: str, **opts: Any) -> Callable[[ReliabilityEmulator, bool, int, Sequence[str]], None]:
    def schedule(enso: ReliabilityEmulator, persist: bool, after: int, ids: Sequence[str]) -> None:
        # Within the retries: as many failures in a row as one request may retry.
        enso.inject(kind, OUTAGE if persist else FAST_RETRIES["max_retries"], after, **opts)

    return schedule


def per_record(status: int) -> Callable[[ReliabilityEmulator, bool, int, Sequence[str]], None]:
    def schedule(enso: ReliabilityEmulator, persist: bool, after: int, ids: Sequence[str]) -> None:
        # The batch and RECORD_RETRIES re-send rounds: failing that often is the most that recovers.
        times = RECORD_RETRIES + 1 if persist else RECORD_RETRIES
        enso.fail_records(ids[:: len(ids) // RECORDS_HIT][:RECORDS_HIT], status_code=status, times=times)

    return schedule


def lost_answers(how: str) -> Callable[[ReliabilityEmulator, bool, int, Sequence[str]], None]:
    def schedule(enso: ReliabilityEmulator, persist: bool, after: int, ids: Sequence[str]) -> None:
        enso.lose_answers(OUTAGE if persist else FAST_RETRIES["max_retries"], after, how=how)

    return schedule


def token_expiry(enso: ReliabilityEmulator, persist: bool, after: int, ids: Sequence[str]) -> None:
    enso.expire_tokens_at(after)
    if persist:
        # The refresh after the 401 is refused too (a revoked client): the first login passes.
        enso.inject("status", 1, 1, endpoint="login", status=401)


FAULTS = [
    Fault("429-retry-after", whole_request("status", status=429, retry_after="30"), "retry", EnsoServerError),
    Fault("500", whole_request("status", status=500), "retry", EnsoServerError),
    Fault("502-html", whole_request("status", status=502, html=True), "retry", EnsoServerError),
    Fault("503", whole_request("status", status=503), "retry", EnsoServerError),
    Fault(
        "timeout",
        whole_request("hang", seconds=2.0),
        "retry",
        EnsoConnectionError,
        extra={"timeout": 0.5},
    ),
    Fault("connection-reset", whole_request("reset"), "retry", EnsoConnectionError),
    Fault("malformed-truncated", whole_request("malformed", variant="truncated"), "retry", EnsoResponseError),
    Fault("malformed-not-json", whole_request("malformed", variant="not_json"), "retry", EnsoResponseError),
    Fault(
        "malformed-wrong-shape", whole_request("malformed", variant="wrong_shape"), "retry", EnsoResponseError
    ),
    Fault("malformed-empty", whole_request("malformed", variant="empty"), "retry", EnsoResponseError),
    # Records that keep failing transiently are undelivered, not refused: whatever the policy, the task
    # ends with a retryable error, and its retry sends them again under the same eventIds.
    Fault("record-503", per_record(503), "retry", EnsoUndeliveredError, record_times=(3, 4)),
    Fault("record-429", per_record(429), "retry", EnsoUndeliveredError, record_times=(3, 4)),
    Fault("token-expiry", token_expiry, "retry", EnsoAuthError, auth="client_credentials"),
    # Stored, but the answer never arrives: the re-sends are what deterministic eventIds are for.
    Fault("answer-lost-reset", lost_answers("reset"), "retry", EnsoConnectionError, loses_answers=True),
    Fault(
        "answer-lost-timeout",
        lost_answers("hang"),
        "retry",
        EnsoConnectionError,
        extra={"timeout": 0.5},
        loses_answers=True,
    ),
]


@pytest.mark.parametrize("mode", ["recovers", "persists"])
@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_matrix(
    enso: ReliabilityEmulator,
    monkeypatch: pytest.MonkeyPatch,
    secret_watch: SecretWatch,
    fault: Fault,
    position: str,
    mode: str,
) -> None:
    persist = mode == "persists"
    after = POSITIONS[position]
    use_connection(monkeypatch, enso, auth=fault.auth, **fault.extra)
    fault.schedule(enso, persist, after, BATCHES[after])

    first = run_operator(CONTEXT, **OPERATOR)
    enso.settle()
    secret_watch.add(first.error, first.returned)
    expected_state = fault.persists_as if persist else "success"
    assert first.state == expected_state, first.error
    if first.state != "success":
        assert isinstance(first.error, fault.error), repr(first.error)
    check_first_run(enso, fault, first, persist)
    if fault.name == "token-expiry":
        assert enso.expiries == 1
        assert enso.stats.auth_failures >= 1
        if not persist:
            # One refresh, shared by every sender thread that met the 401.
            assert enso.stats.logins == 2

    # The same task again (the outage is over): the retry or the clear an operator would do.
    enso.clear_faults()
    stored_before = enso.event_ids
    order_before = [e["eventId"] for e in enso.events]
    before = enso.stats
    second = run_operator(RERUN_CONTEXT, **OPERATOR)
    enso.settle()
    secret_watch.add(second.error, second.returned)
    assert second.state == "success", second.error
    after_stats = enso.stats
    assert_stored_once(enso, ROWS, EXPECTED_IDS)
    assert_well_formed_only(enso)
    # Every event re-sent that was already stored was deduplicated, and only those.
    assert after_stats.duplicates - before.duplicates == len(stored_before)
    assert after_stats.events_stored - before.events_stored == ROWS.accepted - len(stored_before)
    assert [e["eventId"] for e in enso.events][: len(order_before)] == order_before
    check_complete_report(second.returned, failed=ROWS.refused)
    assert second.report is not None
    assert second.report.success == after_stats.events_accepted - before.events_accepted


def check_first_run(enso: ReliabilityEmulator, fault: Fault, first: Outcome, persist: bool) -> None:
    stats = enso.stats
    report = first.report
    assert report is not None
    assert_well_formed_only(enso)
    if fault.loses_answers:
        # Events whose answer was lost were stored, then sent again: each is stored once all the same.
        assert enso.lost_accepted > 0
        assert stats.duplicates > 0 or first.state == "retry"
    else:
        assert stats.duplicates == 0  # a failed request never stored anything, so nothing was re-stored
    hit, recovered = 0, 0
    if fault.record_times is not None:
        times = fault.record_times[1] if persist else fault.record_times[0]
        hit = RECORDS_HIT if persist else 0
        # Each record failed `times` times; all but the last failure of a persisting record recovered.
        recovered = RECORDS_HIT * times - hit
    # The report and the emulator agree, batches in flight when the run stopped included; what the
    # client never heard of (a lost answer) is the only difference.
    assert report.success == stats.events_accepted - enso.lost_accepted
    assert report.batches == stats.batches - enso.lost_batches
    assert report.failed == stats.events_failed - enso.lost_failed - recovered
    if first.state == "retry" and not isinstance(first.error, EnsoUndeliveredError):
        assert_accounting(report, complete=False)
        assert_subset_stored_once(enso, ROWS, EXPECTED_IDS, duplicates=fault.loses_answers)
        return
    assert_accounting(report, complete=True)
    extra = {"transient_failure": hit} if hit else {}
    assert report.failed == ROWS.refused + hit
    assert report.undelivered == hit
    assert dict(report.errors) == ROWS.errors(**extra)
    if first.state == "retry":
        # Undelivered records: the retry's error says how many, and they are not stored yet.
        assert f"{hit} event(s) were failed transiently" in str(first.error)
        assert len(enso.events) == ROWS.accepted - hit
        assert_subset_stored_once(enso, ROWS, EXPECTED_IDS)
        return
    assert_stored_once(enso, ROWS, EXPECTED_IDS)
    check_complete_report(first.returned, failed=ROWS.refused)


def check_complete_report(returned: dict[str, Any] | None, *, failed: int) -> None:
    assert returned is not None
    assert returned["total"] == len(ROWS.rows)
    assert returned["total"] == returned["success"] + returned["failed"] + returned["invalid"]
    assert returned["sent"] == returned["success"] + returned["failed"]
    assert (returned["success"], returned["failed"], returned["invalid"]) == (
        ROWS.accepted,
        failed,
        sum(ROWS.invalid.values()),
    )
    assert returned["errors"] == dict(ROWS.errors())


def test_a_split_batch_stopped_by_an_outage_counts_the_halves_that_landed(
    enso: ReliabilityEmulator, monkeypatch: pytest.MonkeyPatch, secret_watch: SecretWatch
) -> None:
    # Enso's payload limit is undocumented: a 413 splits a batch in halves until they pass. When an
    # outage then stops the run, the halves that landed are in the report like any other batch.
    monkeypatch.setattr(enso, "max_batch_events", 120)
    use_connection(monkeypatch, enso)
    enso.fail_next(OUTAGE, status=503, after=4)  # 500 -> 413, 250 -> 413, 125 -> 413, 62 ok, then 503s
    first = run_operator(CONTEXT, **{**OPERATOR, "concurrency": 1})
    secret_watch.add(first.error)
    assert first.state == "retry", first.error
    report, stats = first.report, enso.stats
    assert report is not None
    assert stats.events_stored > 0
    assert report.success == stats.events_accepted
    assert report.failed == stats.events_failed
    assert_accounting(report, complete=False)
    assert_subset_stored_once(enso, ROWS, EXPECTED_IDS)

    enso.clear_faults()
    stored_before = len(enso.event_ids)
    second = run_operator(RERUN_CONTEXT, **OPERATOR)
    assert second.state == "success", second.error
    assert_stored_once(enso, ROWS, EXPECTED_IDS)
    assert enso.stats.duplicates == stored_before


def test_a_hook_keeps_its_retries_after_test_connection(
    enso: ReliabilityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A TaskFlow task may check the connection first, then send with the same hook: the check's
    # "answer quickly, no retries" must not stay with the hook, or a passing 503 fails the send.
    use_connection(monkeypatch, enso, auth="client_credentials")
    hook = EnsoHook()
    assert hook.test_connection()[0]
    enso.fail_next(FAST_RETRIES["max_retries"], status=503)
    events = [{"CustomerEntityId": "cust_01", "metric": "m", "value": 1, "timestamp": "2024-05-01T10:00:00Z"}]
    assert hook.send_batch(events).success == 1
    hook.close()
