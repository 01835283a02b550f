"""
The benchmark's clients, each run in a fresh process by ``bench.py``: ``python clients.py SPEC``.

SPEC is one JSON object: ``client`` (ceiling, naive, operator, mapper), ``source`` (postgres,
sqlite), ``table`` and ``rows`` (the query reads ids ``0..rows-1``), ``url`` (the emulator),
``conn`` (the Airflow connection of the source, JSON form) and ``options`` (operator arguments).
The last line printed is a JSON object of results: rows accounted for (``success``, ``failed``,
``invalid``), ``sent`` (events posted), ``wall`` and ``cpu`` seconds of the timed part, and
``peak_mb`` (``ru_maxrss`` of this process, which only runs this client). The emulator runs in
another process, so its CPU is not counted here; nor is the database server's.

Only public names of the provider are imported: ``enso_provider.events`` and
``enso_provider.operators``.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from usage_data import TOKEN

BATCH = 500
#: What the naive job and the ceiling read (the table's own names).
RAW_SQL = (
    "SELECT customer_id, metric, quantity, units, event_time, recorded_at, region, attributes "
    "FROM {table} WHERE id < {rows}"
)
#: What the operator reads: the event fields by name, the rest collected into metadata.
OPERATOR_SQL = (
    "SELECT customer_id AS customer_entity_id, metric, quantity AS value, event_time AS timestamp, "
    "attributes AS metadata, units, recorded_at, region FROM {table} WHERE id < {rows}"
)
METADATA_COLUMNS = ["units", "recorded_at", "region"]
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Clock:
    """Wall and CPU seconds (user + system, every thread of this process) of a timed part."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Add the wall and CPU time of the block."""
        start, cpu = time.perf_counter(), _cpu()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - start
            self.cpu += _cpu() - cpu


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sql_hook(spec: dict[str, Any]) -> Any:
    os.environ["AIRFLOW_CONN_USAGE"] = spec["conn"]
    if spec["source"] == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id="usage")
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    return SqliteHook(sqlite_conn_id="usage")


# -- (b) the naive job --------------------------------------------------------------------------------


def _naive_event(source: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """
    One row as a data engineer would write it without the provider, or None to skip it.

    The checks are the few it needs to finish at all (a NaN makes ``json.dumps`` write invalid JSON
    and the whole batch is refused; a None customer has no ``strip``).
    """
    import pendulum

    customer, stamp, value = row["customer_id"], row["event_time"], row["quantity"]
    if customer is None or stamp is None or value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    if source == "postgres":
        timestamp = stamp.isoformat()
        attributes = row["attributes"]
    else:
        parsed = pendulum.parse(stamp)
        assert isinstance(parsed, pendulum.DateTime)
        timestamp = parsed.in_timezone("UTC").to_iso8601_string()
        attributes = json.loads(row["attributes"]) if row["attributes"] else {}
    metadata = dict(attributes) if isinstance(attributes, dict) else {}
    metadata.update(units=row["units"], recorded_at=row["recorded_at"], region=row["region"])
    customer = customer.strip()
    return {
        "CustomerEntityId": customer,
        "metric": row["metric"],
        "value": value,
        "timestamp": timestamp,
        "metadata": metadata,
        "eventId": f"{customer}:{row['metric']}:{timestamp}",
    }


def naive(spec: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """``fetchall``, a dict per row, ``json.dumps(default=str)``, ``HttpHook.run`` per 500 events."""
    from airflow.providers.http.hooks.http import HttpHook

    os.environ["AIRFLOW_CONN_ENSO_HTTP"] = json.dumps({"conn_type": "http", "host": spec["url"]})
    counts = {"success": 0, "failed": 0, "invalid": 0, "sent": 0}
    with clock.timing():
        hook = _sql_hook(spec)
        records = hook.get_records(RAW_SQL.format(table=spec["table"], rows=spec["rows"]))
        names = ("customer_id", "metric", "quantity", "units", "event_time", "recorded_at", "region")
        rows = [dict(zip((*names, "attributes"), record, strict=True)) for record in records]
        events = []
        for row in rows:
            event = _naive_event(spec["source"], row)
            if event is None:
                counts["invalid"] += 1
            else:
                events.append(event)
        http = HttpHook(method="POST", http_conn_id="enso_http")
        for i in range(0, len(events), BATCH):
            batch = events[i : i + BATCH]
            response = http.run(
                "/events/batch", data=json.dumps({"events": batch}, default=str), headers=HEADERS
            )
            summary = response.json()["data"]["summary"]
            counts["success"] += summary["success"]
            counts["failed"] += summary["failed"]
            counts["sent"] += len(batch)
    return counts


# -- (a) the ceiling ----------------------------------------------------------------------------------


def _ceiling_bodies(spec: dict[str, Any]) -> tuple[list[bytes], int, int]:
    """Request bodies of every row the operator would send, encoded up front (not timed)."""
    import orjson

    records = _sql_hook(spec).get_records(RAW_SQL.format(table=spec["table"], rows=spec["rows"]))
    names = ("customer_id", "metric", "quantity", "units", "event_time", "recorded_at", "region")
    events, invalid = [], 0
    for record in records:
        row = dict(zip((*names, "attributes"), record, strict=True))
        event = _naive_event(spec["source"], row)
        # The rows the operator rejects before sending: the naive job's skips, a blank metric, and
        # metadata that is not an object (a JSON array).
        attributes = row["attributes"]
        if event is None or not event["metric"] or not str(attributes).startswith("{"):
            invalid += 1
            continue
        events.append(orjson.dumps(event, default=str, option=orjson.OPT_SORT_KEYS))
    bodies = [b'{"events":[' + b",".join(events[i : i + BATCH]) + b"]}" for i in range(0, len(events), BATCH)]
    return bodies, len(events), invalid


def ceiling(spec: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """Pre-encoded bodies posted over one keep-alive ``http.client`` connection: only HTTP is timed."""
    import http.client
    from urllib.parse import urlsplit

    bodies, sent, invalid = _ceiling_bodies(spec)
    target = urlsplit(spec["url"])
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port)
    counts = {"success": 0, "failed": 0, "invalid": invalid, "sent": sent}
    with clock.timing():
        for body in bodies:
            conn.request("POST", "/events/batch", body=body, headers=HEADERS)
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"ceiling: HTTP {response.status}: {answer}")
            counts["success"] += answer["data"]["summary"]["success"]
            counts["failed"] += answer["data"]["summary"]["failed"]
    conn.close()
    return counts


# -- (c) the operator, and the mapper alone ---------------------------------------------------------------


def _context() -> dict[str, Any]:
    from types import SimpleNamespace

    import pendulum

    start = pendulum.datetime(2024, 1, 1, tz="UTC")
    return {
        "ti": SimpleNamespace(dag_id="bench", task_id="send_usage", map_index=-1),
        "run_id": "bench",
        "data_interval_start": start,
        "data_interval_end": start.add(days=1),
    }


def operator(spec: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """
    ``EnsoBatchEventsOperator`` with the SQL source and default settings, ``execute`` with a minimal
    context. One argument is not the default: ``on_breach="warn"``, so that a run with bad rows
    returns its report instead of failing the task once everything is delivered.
    """
    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    os.environ["AIRFLOW_CONN_USAGE"] = spec["conn"]
    os.environ["AIRFLOW_CONN_ENSO_DEFAULT"] = json.dumps(
        {"conn_type": "enso", "host": spec["url"], "password": TOKEN}
    )
    op = EnsoBatchEventsOperator(
        task_id="send_usage",
        sql=OPERATOR_SQL.format(table=spec["table"], rows=spec["rows"]),
        sql_conn_id="usage",
        metadata_columns=METADATA_COLUMNS,
        on_breach="warn",
        **spec["options"],
    )
    context = _context()
    with clock.timing():
        report = op.execute(context)  # type: ignore[arg-type]
    return {
        "success": report["success"],
        "failed": report["failed"],
        "invalid": report["invalid"],
        "sent": report["success"] + report["failed"],
        "batches": report["batches"],
        "delivery": report["elapsed_seconds"],
        "errors": report["errors"],
    }


def mapper(spec: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """
    The mapper alone: the operator's rows fetched once into memory (not timed), then mapped, as the
    operator hands them over (``map_chunks`` where the mapper has it, else ``map``).
    """
    from enso_provider.events import Event, EventMapper

    conn = _sql_hook(spec).get_conn()
    cursor = conn.cursor()
    cursor.execute(OPERATOR_SQL.format(table=spec["table"], rows=spec["rows"]))
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    conn.close()
    # The rows held in memory are this client's, not the operator's (which streams them): keep them
    # out of the garbage collector's passes, as the operator keeps the task process's older objects.
    gc.collect()
    gc.freeze()
    events_mapper = EventMapper(metadata_columns=METADATA_COLUMNS, namespace="bench|send_usage|mapper")
    chunked: Callable[..., Any] | None = getattr(events_mapper, "map_chunks", None)
    counts = {"success": 0, "failed": 0, "invalid": 0, "sent": 0, "driver": type(conn).__module__}
    with clock.timing():
        if chunked is not None:
            items = [item for chunk in chunked(rows, columns=columns) for item in chunk]
        else:
            items = list(events_mapper.map(rows, columns=columns))
    events = sum(isinstance(item, Event) for item in items)
    counts.update(success=events, invalid=len(items) - events, api="map_chunks" if chunked else "map")
    return counts


def c_fast_path() -> str:
    """Whether the landed code's optional C mapper is loaded (``absent`` once it is deleted)."""
    import importlib

    try:
        native = importlib.import_module("enso_provider.events._native")
    except ImportError:
        return "absent"
    return "loaded" if getattr(native, "speedups", None) is not None else "not loaded"


CLIENTS: dict[str, Callable[[dict[str, Any], Clock], dict[str, Any]]] = {
    "ceiling": ceiling,
    "naive": naive,
    "operator": operator,
    "mapper": mapper,
}


def _warm_imports(source: str) -> None:
    """
    Import what every client would import on first use, before any clock starts: the figures are
    throughput, not a cold start (the same modules for every client, whichever it uses).
    """
    import orjson  # noqa: F401
    import pendulum  # noqa: F401
    from airflow.providers.http.hooks.http import HttpHook  # noqa: F401

    import enso_provider.events
    import enso_provider.operators.batch_events  # noqa: F401

    if source == "postgres":
        from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401
    else:
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook  # noqa: F401


def main() -> int:
    """Run the client SPEC names and print its results as the last line."""
    spec = json.loads(sys.argv[1])
    _warm_imports(spec["source"])
    clock = Clock()
    result = CLIENTS[spec["client"]](spec, clock)
    result.update(
        rows=spec["rows"], wall=clock.wall, cpu=clock.cpu, peak_mb=_peak_mb(), c_fast_path=c_fast_path()
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
