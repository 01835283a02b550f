"""Helpers for the replay tests: rejected files made by the batch operator or by hand, a replay run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum

CUSTOMERS = ["cust_1", "cust_2", "cust_3"]
TOKEN = "replay-test-token-0042"
TS = "2024-05-01T10:00:00Z"


def context(hour: int = 10) -> dict[str, Any]:
    """Enough of a task context for the batch operator's eventId namespace."""
    start = pendulum.datetime(2024, 5, 1, hour, tz="UTC")
    ti = SimpleNamespace(dag_id="usage", task_id="send", map_index=-1)
    return {
        "ti": ti,
        "run_id": "manual__1",
        "data_interval_start": start,
        "data_interval_end": start.add(hours=1),
    }


def row(customer: str | None, value: float = 1, **extra: Any) -> dict[str, Any]:
    return {"customer_entity_id": customer, "metric": "api_calls", "value": value, "timestamp": TS, **extra}


def send_rows(rows: Sequence[dict[str, Any]], rejected: Path, hour: int = 10) -> dict[str, Any]:
    """Run the batch operator on ``rows``; its rejected records go to ``rejected``."""
    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    op = EnsoBatchEventsOperator(
        task_id="send",
        events=list(rows),
        rejected_records_path=str(rejected),
        max_failures=None,
        batch_size=5,
    )
    return op.execute(context(hour))


def replay(**kwargs: Any) -> dict[str, Any]:
    """Run the replay operator once (no Airflow run: ``execute`` with an empty context)."""
    from enso_provider.operators.replay import EnsoReplayRejectedOperator

    kwargs.setdefault("max_failures", None)
    kwargs.setdefault("batch_size", 3)
    op = EnsoReplayRejectedOperator(task_id="replay", **kwargs)
    return op.execute({})  # type: ignore[arg-type]


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_lines(path)]


def write_records(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    """Write records (or raw lines, given as strings) as JSON Lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def enso_record(
    event_id: str,
    customer: str = "cust_1",
    *,
    index: int = 0,
    code: int | str | None = 2002,
    status: int | None = 404,
    value: float = 1,
) -> dict[str, Any]:
    """A record as the batch operator writes one Enso refused."""
    return {
        "index": index,
        "error": "Customer entity not found",
        "code": code,
        "statusCode": status,
        "eventId": event_id,
        "rowKey": None,
        "rejectedBy": "enso",
        "row": None,
        "event": {
            "CustomerEntityId": customer,
            "eventId": event_id,
            "metric": "api_calls",
            "timestamp": TS,
            "value": value,
        },
    }


def local_record(index: int = 0) -> dict[str, Any]:
    """A record as the batch operator writes one it rejected before sending."""
    return {
        "index": index,
        "error": "CustomerEntityId is missing",
        "code": "missing_customer_entity_id",
        "statusCode": 400,
        "eventId": None,
        "rowKey": None,
        "rejectedBy": "local",
        "row": {"customer_entity_id": None, "metric": "api_calls", "value": 5, "timestamp": TS},
        "event": None,
    }


def accounting_holds(report: dict[str, Any]) -> None:
    assert report["total"] == report["success"] + report["failed"] + report["invalid"]
    assert report["sent"] == report["success"] + report["failed"]
