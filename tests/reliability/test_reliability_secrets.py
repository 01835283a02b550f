"""
Secrets, across representative scenarios: the API token, the client secret, and wrong ones a user
might configure never appear in logs (recorded raw at DEBUG, before Airflow's masking), captured
output, exception text and tracebacks, XCom values, rendered template fields, reprs, the
rejected-records file or test_connection's answer; not even when Enso echoes them back.

The conftest's ``secret_watch`` scans every test of this directory; here each scenario also hands
over everything a user could see.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from enso_provider.exceptions import EnsoServerError
from enso_provider.hooks.enso import EnsoHook
from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from tests.operator.dagrun import run_dag
from tests.reliability.reliability_kit import (
    CLIENT_KEY,
    FAST_RETRIES,
    SECRET_CLIENT,
    SECRET_TOKEN,
    SECRETS,
    WRONG_CLIENT,
    WRONG_TOKEN,
    Outcome,
    ReliabilityEmulator,
    run_operator,
    task_context,
    usage_rows,
    use_connection,
)
from tests.reliability.secret_watch import SecretWatch

CONTEXT = task_context(dag_id="reliability_secrets")
ROWS = usage_rows(300, invalid_every=50)
OPERATOR: dict[str, Any] = {
    "events": ROWS.rows,
    "batch_size": 50,
    "metadata_columns": ["region"],
    "job_id": "usage-{{ ds }}-{{ ts_nodash }}",
    "max_failures": None,
}


def run_and_collect(watch: SecretWatch, tmp_path: Path, **kwargs: Any) -> Outcome:
    """Run the operator, then hand over all a user can see of it: value, error, file, templates, reprs."""
    rejected = tmp_path / f"rejected-{len(watch.texts)}.jsonl"
    settings = {**OPERATOR, "rejected_records_path": str(rejected), **kwargs}
    outcome = run_operator(CONTEXT, **settings)
    op = EnsoBatchEventsOperator(task_id="send", **settings)
    op.render_template_fields(CONTEXT)  # type: ignore[arg-type]
    rendered = {name: getattr(op, name) for name in op.template_fields}
    watch.add(outcome.error, outcome.returned, rendered, repr(op), repr(op.hook))
    if outcome.error is not None:
        watch.add(pickle.loads(pickle.dumps(outcome.error)))  # as Airflow ships it between processes
    if outcome.returned is not None:
        watch.add(json.dumps(outcome.returned))  # XCom
    if rejected.exists():
        watch.add(rejected.read_text())
    return outcome


def echo_body(secret: str) -> str:
    """An error body that echoes a credential back in every field a client might read."""
    return json.dumps(
        {"message": f"bad credential {secret}", "error": secret, "detail": secret, "code": secret}
    )


def token_success_and_retries(
    enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path
) -> None:
    use_connection(mp, enso, timeout=0.5, max_retries=6)
    enso.fail_next(2, status=503)
    enso.inject("status", 1, 1, status=429, retry_after="1")
    enso.reset_next(1, after=2)
    enso.hang_next(1, seconds=1.0, after=3)
    enso.malformed_next(1, after=4)
    assert run_and_collect(w, p).state == "success"
    enso.fail_next(50, status=502, html=True)  # retries run out
    assert run_and_collect(w, p).state == "retry"


def client_credentials_refresh(
    enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path
) -> None:
    use_connection(mp, enso, auth="client_credentials")
    enso.expire_tokens_at(3)
    enso.inject("status", 1, 1, endpoint="login", status=503)  # the refresh is retried
    assert run_and_collect(w, p).state == "success"
    assert enso.stats.logins == 2


def failed_policy(enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path) -> None:
    use_connection(mp, enso, auth="client_credentials")
    outcome = run_and_collect(w, p, max_failures=0)
    assert outcome.state == "fail"


def wrong_token(enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path) -> None:
    conn = {"conn_type": "enso", "host": enso.url, "password": WRONG_TOKEN, "extra": {"max_retries": 1}}
    mp.setenv("AIRFLOW_CONN_ENSO_DEFAULT", json.dumps(conn))
    outcome = run_and_collect(w, p)
    assert outcome.state == "retry"
    assert "401" in str(outcome.error)
    w.add(EnsoHook().test_connection())


def wrong_client_secret(enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path) -> None:
    conn = {"conn_type": "enso", "host": enso.url, "login": CLIENT_KEY, "password": WRONG_CLIENT}
    mp.setenv("AIRFLOW_CONN_ENSO_DEFAULT", json.dumps(conn))
    outcome = run_and_collect(w, p)
    assert outcome.state == "retry"
    assert "refused the client credentials" in str(outcome.error)
    w.add(EnsoHook().test_connection())


def echoed_in_error_bodies(
    enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path
) -> None:
    use_connection(mp, enso)
    enso.inject("status", 1, 0, status=418, body=echo_body(SECRET_TOKEN))  # a whole batch refused
    enso.inject("status", 50, 2, status=503, body=echo_body(SECRET_TOKEN))  # retries run out
    outcome = run_and_collect(w, p)
    assert outcome.state == "retry"
    # 503s the run did not use up echo the API token, which the next connection does not hold
    # (a hook scrubs its own credentials): drop them.
    enso.clear_faults()
    use_connection(mp, enso, auth="client_credentials")
    enso.inject("status", 1, 0, endpoint="login", status=401, body=echo_body(SECRET_CLIENT))
    assert run_and_collect(w, p).state == "retry"
    enso.inject("malformed", 3, 0, endpoint="login", body=echo_body(SECRET_CLIENT))
    assert run_and_collect(w, p).state == "retry"


def echoed_in_a_failed_record(
    enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path
) -> None:
    # A 200 in the documented shape whose per-record error (and string code) repeats the credential.
    use_connection(mp, enso)
    answer = {
        "status": "success",
        "message": "Success",
        "data": {
            "summary": {"success": 0, "failed": 1, "total": 1},
            "failedRecords": [
                {
                    "index": 0,
                    "error": f"token {SECRET_TOKEN} may not write",
                    "code": SECRET_TOKEN,
                    "statusCode": 404,
                }
            ],
        },
    }
    enso.inject("malformed", 1, 0, body=orjson.dumps(answer).decode())
    outcome = run_and_collect(w, p, events=ROWS.rows[:1], batch_size=1)
    assert outcome.state == "success"
    assert outcome.returned is not None
    assert outcome.returned["failed"] == 1
    assert outcome.returned["errors"] == {"***": 1}


def hook_from_taskflow(enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch, p: Path) -> None:
    # EnsoHook used alone, as in a @task: reprs, settings, results, test_connection, errors.
    use_connection(mp, enso, auth="client_credentials")
    hook = EnsoHook()
    events = [
        {"CustomerEntityId": "cust_01", "metric": "m", "value": n, "timestamp": "2024-05-01T10:00:00Z"}
        for n in range(20)
    ]
    enso.expire_tokens_at(1)
    report = hook.send_events(events, batch_size=5)
    w.add(report.as_dict(), repr(hook), repr(hook.settings), repr(hook.__dict__), hook.test_connection())
    enso.fail_next(10, status=500)
    with pytest.raises(EnsoServerError) as info:
        hook.send_batch(
            [b'{"CustomerEntityId":"cust_01","metric":"m","value":1,"timestamp":"2024-05-01T10:00:00Z"}']
        )
    w.add(info.value)
    hook.close()


def dag_runs(dagbag: Any, enso: ReliabilityEmulator, mp: pytest.MonkeyPatch, w: SecretWatch) -> None:
    # Real task runs: a success with client credentials, and a failure with a wrong secret.
    use_connection(mp, enso, auth="client_credentials")
    enso.expire_tokens_at(2)
    ok = run_dag(dagbag, "enso_test_reliability_concurrent")
    assert ok.task_states[("send", -1)] == "success"
    conn = {
        "conn_type": "enso",
        "host": enso.url,
        "login": CLIENT_KEY,
        "password": WRONG_CLIENT,
        "extra": FAST_RETRIES,
    }
    mp.setenv("AIRFLOW_CONN_ENSO_DEFAULT", json.dumps(conn))
    failed = run_dag(dagbag, "enso_test_reliability_no_retry")
    assert failed.task_states[("send", -1)] == "failed"
    for result, dag_id in (
        (ok, "enso_test_reliability_concurrent"),
        (failed, "enso_test_reliability_no_retry"),
    ):
        w.add(result.xcoms, _rendered(dag_id, result.run_id))


def _rendered(dag_id: str, run_id: str) -> list[Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(RenderedTaskInstanceFields.rendered_fields).where(
            RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
        )
        return list(session.scalars(query))


Scenario = Callable[[ReliabilityEmulator, pytest.MonkeyPatch, SecretWatch, Path], None]
SCENARIOS: dict[str, Scenario] = {
    "token: success and every retry": token_success_and_retries,
    "client credentials: refresh mid-run": client_credentials_refresh,
    "failed policy": failed_policy,
    "wrong API token": wrong_token,
    "wrong client secret": wrong_client_secret,
    "echoed in error bodies": echoed_in_error_bodies,
    "echoed in a failed record": echoed_in_a_failed_record,
    "hook from TaskFlow": hook_from_taskflow,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_secrets_never_appear(
    enso: ReliabilityEmulator,
    monkeypatch: pytest.MonkeyPatch,
    secret_watch: SecretWatch,
    tmp_path: Path,
    scenario: str,
) -> None:
    SCENARIOS[scenario](enso, monkeypatch, secret_watch, tmp_path)
    assert secret_watch.texts
    assert secret_watch.sightings() == 0


@pytest.mark.airflow_db
def test_secrets_never_appear_in_dag_runs(
    reliability_dagbag: Any,
    enso: ReliabilityEmulator,
    monkeypatch: pytest.MonkeyPatch,
    secret_watch: SecretWatch,
) -> None:
    dag_runs(reliability_dagbag, enso, monkeypatch, secret_watch)
    assert secret_watch.sightings() == 0


def test_the_watch_sees_a_leak(secret_watch: SecretWatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The check itself works: a secret in a log line, a value or an error is seen."""
    EnsoHook().log.debug("leaking %s", SECRET_TOKEN)
    assert secret_watch.sightings() == 1  # the raw DEBUG record
    secret_watch.add({"x": SECRET_CLIENT})
    assert secret_watch.sightings() == 3  # its repr and its JSON
    secret_watch.add(ValueError(WRONG_TOKEN))
    assert secret_watch.sightings() == 5  # the traceback and the repr
    # Forget the planted ones, so that the session's check stays about the provider.
    secret_watch.texts.clear()
    capsys.readouterr()
    assert all(secret not in "".join(secret_watch.texts) for secret in SECRETS)
