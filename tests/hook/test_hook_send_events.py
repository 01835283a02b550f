"""EnsoHook.send_events: batching by count and bytes, concurrency, record re-sends, index mapping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from enso_provider.delivery import Delivery
from enso_provider.events import EventMapper
from enso_provider.exceptions import EnsoConfigError, EnsoServerError
from enso_provider.hooks.enso import EnsoHook
from enso_provider.testing import EnsoEmulator

TOKEN = "send-events-token-77"


@pytest.fixture
def enso(monkeypatch) -> Iterator[EnsoEmulator]:
    with EnsoEmulator(customers=["c1", "c2"], token=TOKEN) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ENSO_DEFAULT",
            emulator.connection_json(timeout=5, max_retries=2, backoff_factor=0.001, backoff_max=0.01),
        )
        yield emulator


def rows(n: int, customer: str = "c1") -> list[dict]:
    return [
        {
            "CustomerEntityId": customer,
            "metric": "api_calls",
            "value": i,
            "timestamp": f"2024-05-01T10:{i % 60:02d}:00Z",
            "metadata": {"i": i},
        }
        for i in range(n)
    ]


def no_wait(seconds: float) -> None:
    return None


def test_send_events_accounts_for_every_item(enso):
    events = rows(10)
    events[3] = dict(events[3], CustomerEntityId="ghost")  # refused by Enso: 2002
    events[5] = dict(events[5], value="lots")  # rejected locally
    failures = []
    report = EnsoHook().send_events(events, batch_size=4, on_failure=failures.append)
    assert (report.total, report.sent, report.success, report.failed, report.invalid) == (10, 9, 8, 1, 1)
    assert report.batches == 3
    assert dict(report.errors) == {"2002": 1, "invalid_value": 1}
    # Failed-record indexes are positions in the caller's input, not in the request.
    assert sorted((f.index, str(f.code)) for f in failures) == [(3, "2002"), (5, "invalid_value")]
    assert len(enso.events) == 8
    assert all(e["eventId"].startswith("ev_") for e in enso.events)


def test_batches_are_cut_by_bytes(enso):
    report = EnsoHook().send_events(rows(200), batch_size=500, max_batch_bytes=4096)
    assert report.success == 200
    assert report.batches > 1
    assert enso.stats["largest_batch"] < 200
    assert len(enso.events) == 200


def test_an_event_larger_than_a_request_is_rejected_not_sent(enso):
    big = rows(2)
    big[1]["metadata"] = {"blob": "x" * 5000}
    report = EnsoHook().send_events(big, max_batch_bytes=4096)
    assert (report.success, report.invalid) == (1, 1)
    assert "event_too_large" in report.errors


def count_in_flight(hook: EnsoHook) -> dict[str, int]:
    """Wrap the hook's batch post to record how many run at once (the most, and now)."""
    post = hook.post_batch_body
    lock = threading.Lock()
    seen = {"peak": 0, "now": 0}

    def counting_post(body: bytes, *, sent: int):
        with lock:
            seen["now"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
        try:
            return post(body, sent=sent)
        finally:
            with lock:
                seen["now"] -= 1

    hook.post_batch_body = counting_post  # type: ignore[method-assign]
    return seen


def test_at_most_concurrency_requests_in_flight(enso):
    enso.set_latency(0.02)
    hook = EnsoHook()
    seen = count_in_flight(hook)
    report = hook.send_events(rows(300), batch_size=10, concurrency=3)
    assert report.success == 300
    assert report.batches == 30
    assert seen["peak"] == 3
    assert seen["now"] == 0


def test_retried_batches_also_respect_concurrency(enso):
    enso.set_latency(0.02)
    enso.inject("status", count=3, status=503)  # the first attempts fail
    hook = EnsoHook()
    seen = count_in_flight(hook)
    report = hook.send_events(rows(300), batch_size=10, concurrency=3)
    assert report.success == 300
    assert 1 < seen["peak"] <= 3
    assert len(enso.events) == 300


def test_transient_records_are_resent_alone(enso):
    events = rows(6)
    hook = EnsoHook()
    # Learn the ids the hook generates, then make two of them fail once with 503 inside a 200.
    from enso_provider.events import EventMapper

    generated = [item.event_id for item in EventMapper().map(events)]
    enso.fail_records(generated[1:3], status_code=503, times=1)
    delivery = Delivery(hook, sleep=no_wait)
    report = delivery.run(EventMapper().map(events))
    assert (report.success, report.failed) == (6, 0)
    assert report.batches == 2  # the batch, then a batch of the two transient records only
    assert enso.stats["events_received"] == 8
    assert sorted(e["eventId"] for e in enso.events) == sorted(generated)


def test_records_still_failing_after_the_rounds_are_failed(enso):
    from enso_provider.events import EventMapper

    events = rows(3)
    generated = [item.event_id for item in EventMapper().map(events)]
    enso.fail_records(generated[:1], status_code=503, times=10)
    report = Delivery(EnsoHook(), sleep=no_wait, record_retries=2).run(EventMapper().map(events))
    assert (report.success, report.failed) == (2, 1)
    assert report.batches == 3
    assert report.sample[0]["statusCode"] == 503


def test_payload_too_large_splits_the_batch(monkeypatch):
    with EnsoEmulator(customers=["c1"], token=TOKEN, max_batch_events=3) as enso:
        monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", enso.connection_json())
        report = EnsoHook().send_events(rows(10), batch_size=10)
        assert report.success == 10
        assert len(enso.events) == 10
        assert enso.stats["largest_batch"] <= 3


def test_a_batch_that_exhausts_retries_stops_the_run_after_in_flight_batches_land(enso):
    enso.inject("status", count=10, status=503, after=2)
    with pytest.raises(EnsoServerError) as info:
        EnsoHook().send_events(rows(50), batch_size=5, concurrency=1)
    # The first two batches landed; nothing after the failing one was sent.
    assert len(enso.events) == 10
    # The error carries the counts up to the stop; the failed batch is not counted as sent.
    report = info.value.report
    assert (report.sent, report.success, report.failed) == (10, 10, 0)


def test_dry_run_posts_nothing_and_needs_no_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ENSO_DEFAULT", raising=False)
    report = EnsoHook(enso_conn_id="nowhere").send_events(rows(5), dry_run=True)
    assert (report.total, report.sent, report.success, report.dry_run) == (5, 5, 5, True)


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"concurrency": 0}, {"max_batch_bytes": 100}, {"batch_size": 1.5}]
)
def test_bad_delivery_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EnsoHook().send_events(rows(1), dry_run=True, **kwargs)


def test_proxy_settings_are_read_once_from_the_environment(enso, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert EnsoHook().get_conn().proxies.get("http") == "http://127.0.0.1:9"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert "http" not in EnsoHook().get_conn().proxies


def test_faults_mid_run_are_retried_and_each_event_is_stored_once(enso):
    # Faults at the 3rd and 7th requests: a 502 page and a reset.
    enso.inject("status", count=1, after=2, status=502, html=True)
    enso.inject("reset", count=1, after=6)
    report = EnsoHook().send_events(rows(200), batch_size=10, concurrency=3)
    assert (report.total, report.success, report.failed) == (200, 200, 0)
    assert len(enso.events) == 200
    assert enso.stats["events_stored"] == 200


def keyed(n: int) -> list[dict]:
    return [dict(r, eventId=f"ev-{i:06d}") for i, r in enumerate(rows(n))]


def test_a_record_resend_split_by_413_then_failing_counts_each_record_once(monkeypatch):
    with EnsoEmulator(customers=["c1"], token=TOKEN) as enso:
        conn = enso.connection_json(max_retries=0, backoff_factor=0.001, backoff_max=0.002)
        monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", conn)
        enso.fail_records(["ev-000000", "ev-000001"], status_code=503, times=1)
        enso.inject("status", 1, after=1, status=413)  # the re-send round of 2 records
        enso.inject("status", 1, after=3, status=500)  # its second half
        from enso_provider.events import EventMapper

        items = [EventMapper().map_one(r) for r in keyed(4)]
        delivery = Delivery(EnsoHook(), sleep=no_wait, batch_size=4, concurrency=1, record_retries=1)
        report = delivery.run(items)
        assert (report.sent, report.success, report.failed, report.undelivered) == (4, 3, 1, 1)
        assert report.success == len(enso.events)
        # The half whose re-send met a 500 keeps the code and status Enso gave it: still transient.
        [undelivered] = report.sample
        assert undelivered["eventId"] == "ev-000001"
        assert undelivered["statusCode"] == 503
        assert undelivered["code"] is not None


def test_an_error_of_the_failure_callback_is_the_runs_error_and_nothing_is_sent_twice(enso):
    events = keyed(10)
    events[3]["CustomerEntityId"] = "ghost"

    def broken_writer(failure):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        EnsoHook().send_events(events, batch_size=5, concurrency=2, on_failure=broken_writer)
    assert enso.stats["events_received"] == 10
    assert enso.stats["duplicates"] == 0


def test_max_retries_zero_means_one_attempt(monkeypatch):
    with EnsoEmulator(customers=["c1"], token=TOKEN) as enso:
        monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", enso.connection_json(max_retries=0))
        enso.inject("status", 10, status=503)
        with pytest.raises(EnsoServerError, match="after 1 attempt"):
            EnsoHook().send_events(rows(5))
        assert enso.stats["batch_requests"] == 1


def test_answers_are_asked_uncompressed_and_any_2xx_counts(enso):
    hook = EnsoHook()
    assert hook.get_conn().headers["Accept-Encoding"] == "identity"
    accepted = '{"summary": {"success": 5, "failed": 0, "total": 5}, "failedRecords": []}'
    enso.inject("status", 1, status=201, body=accepted)
    report = hook.send_events(rows(5))
    assert (report.success, report.failed) == (5, 0)
    assert enso.stats["batch_requests"] == 1  # a 201 is an answer, not a reason to post again


def test_a_credential_with_a_control_character_is_refused_without_being_shown(monkeypatch, enso):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_DEFAULT",
        f'{{"conn_type": "enso", "host": "{enso.url}", "password": "{TOKEN}\\u0007x"}}',
    )
    with pytest.raises(EnsoConfigError, match="control character") as info:
        EnsoHook().send_events(rows(1))
    assert TOKEN not in str(info.value)
    # A trailing newline (a secrets file's last line) is only white space: stripped, and it works.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENSO_DEFAULT",
        f'{{"conn_type": "enso", "host": "{enso.url}", "password": "{TOKEN}\\n"}}',
    )
    assert EnsoHook().send_events(rows(1)).success == 1


def test_records_failed_transiently_stay_transient_whatever_their_resends_meet(monkeypatch):
    from enso_provider.delivery import UNDELIVERED
    from enso_provider.exceptions import EnsoUndeliveredError
    from enso_provider.operators.policy import FailurePolicy

    with EnsoEmulator(customers=["c1"], token=TOKEN) as enso:
        conn = enso.connection_json(max_retries=1, backoff_factor=0.001, backoff_max=0.002)
        monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", conn)
        events = keyed(20)
        failing = [f"ev-{i:06d}" for i in range(0, 20, 4)]
        enso.fail_records(failing, status_code=503, times=100)
        enso.inject("reset", 1000, after=1)  # every re-send round meets a network error
        items = [EventMapper().map_one(r) for r in events]
        report = Delivery(EnsoHook(), sleep=no_wait, record_retries=2).run(items)
        assert (report.success, report.failed, report.undelivered) == (15, 5, 5)
        assert len(enso.events) == 15
        for record in report.sample:
            # Enso's last code and status, never null: the replay's defaults pick 429/5xx records up.
            assert record["code"] not in (None, UNDELIVERED)
            assert record["statusCode"] == 503
            assert "re-send" in record["error"]
        # The operators' policy turns that into a retryable error (never AirflowFailException), even
        # with a policy that tolerates any failure.
        with pytest.raises(EnsoUndeliveredError, match="5 event") as info:
            FailurePolicy(max_failures=None, on_breach="warn").enforce(report, logging.getLogger())
        from enso_provider.version_compat import AirflowFailException

        assert not isinstance(info.value, AirflowFailException)
