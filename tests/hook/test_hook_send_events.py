"""EnsoHook.send_events: batching by count and bytes, concurrency, record re-sends, index mapping."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from enso_provider.delivery import Delivery
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


def test_at_most_concurrency_requests_in_flight(enso, monkeypatch):
    from enso_provider.hooks.pipeline import PipelinedPoster

    enso.set_latency(0.02)
    in_flight = peak = 0
    lock = threading.Lock()

    def counted(method, step):
        def wrapper(*args, **kwargs):
            nonlocal in_flight, peak
            if step > 0:
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
            try:
                return method(*args, **kwargs)
            finally:
                if step < 0:
                    with lock:
                        in_flight -= 1

        return wrapper

    # Pipelined first attempts are in flight from send() until receive().
    monkeypatch.setattr(PipelinedPoster, "send", counted(PipelinedPoster.send, +1))
    monkeypatch.setattr(PipelinedPoster, "receive", counted(PipelinedPoster.receive, -1))
    report = EnsoHook().send_events(rows(300), batch_size=10, concurrency=3)
    assert report.success == 300
    assert report.batches == 30
    assert peak == 3
    assert in_flight == 0


def test_retried_batches_also_respect_concurrency(enso):
    enso.set_latency(0.02)
    enso.inject("status", count=3, status=503)  # the first pipelined attempts fail
    peak = 0
    in_flight = 0
    lock = threading.Lock()
    hook = EnsoHook()
    post = hook.post_batch_body

    def counting_post(body: bytes, *, sent: int, prior_attempts: int = 0):
        nonlocal peak, in_flight
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return post(body, sent=sent, prior_attempts=prior_attempts)
        finally:
            with lock:
                in_flight -= 1

    hook.post_batch_body = counting_post  # type: ignore[method-assign]
    report = hook.send_events(rows(300), batch_size=10, concurrency=3)
    assert report.success == 300
    assert 1 < peak <= 3
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


def test_no_pipeline_behind_a_proxy(enso, monkeypatch):
    # A proxy is the session's business (its pools tunnel or forward): first attempts then go through
    # sender threads like every retry.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert EnsoHook().open_pipeline(2) is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert EnsoHook().open_pipeline(2) is not None


def test_pipelined_runs_hand_failures_to_the_retry_path_and_store_each_event_once(enso):
    # Faults at the 3rd and 7th requests: a 502 page and a reset, both on pipelined first attempts.
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
        report = Delivery(EnsoHook(), sleep=no_wait, batch_size=4, concurrency=1).run(items)
        assert (report.sent, report.success, report.failed) == (4, 3, 1)
        assert report.success == len(enso.events)
        assert [s["eventId"] for s in report.sample] == ["ev-000001"]


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


def test_pipelined_answers_are_never_compressed_and_any_2xx_counts(enso):
    hook = EnsoHook()
    pipeline = hook.open_pipeline(2)
    assert pipeline is not None
    assert pipeline.headers["Accept-Encoding"] == "identity"
    pipeline.close()
    accepted = '{"summary": {"success": 5, "failed": 0, "total": 5}, "failedRecords": []}'
    enso.inject("status", 1, status=201, body=accepted)
    report = hook.send_events(rows(5))
    assert (report.success, report.failed) == (5, 0)
    assert enso.stats["batch_requests"] == 1  # a 201 is an answer, not a reason to post again


def test_retry_after_is_read_whatever_its_case(enso):
    from email.message import Message

    headers = Message()
    headers["retry-after"] = "7"
    assert EnsoHook().first_retry_wait(503, headers) == 7.0
    assert EnsoHook().first_retry_wait(400, headers) == 0.0


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
