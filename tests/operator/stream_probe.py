"""
Run the operator over an N-row SQLite table in a fresh process and print its peak memory as JSON.

Used by test_operator_streaming.py: ``python stream_probe.py ROWS EMULATOR_URL TOKEN WORKDIR``.
"""

from __future__ import annotations

import json
import resource
import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace


def build(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE usage (customer_id TEXT, metric TEXT, value REAL, ts TEXT, note TEXT)")
    conn.executemany(
        "INSERT INTO usage VALUES (?, ?, ?, ?, ?)",
        (
            (f"cust_{n % 3 + 1}", "api_calls", n * 0.5, f"2024-05-01T10:{n % 60:02d}:00Z", "x" * 40)
            for n in range(rows)
        ),
    )
    conn.commit()
    conn.close()


def main() -> None:
    rows, url, token, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    db = workdir / f"usage-{rows}.sqlite"
    build(db, rows)
    import os

    os.environ["AIRFLOW_CONN_USAGE"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    os.environ["AIRFLOW_CONN_ENSO_DEFAULT"] = json.dumps(
        {"conn_type": "enso", "host": url, "password": token}
    )

    import pendulum

    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    op = EnsoBatchEventsOperator(
        task_id="stream",
        sql="SELECT customer_id AS customer_entity_id, metric, value, ts AS timestamp, note FROM usage",
        sql_conn_id="usage",
        metadata_columns=["note"],
        fetch_size=1000,
    )
    start = pendulum.datetime(2024, 5, 1, 10, tz="UTC")
    context = {
        "ti": SimpleNamespace(dag_id="probe", task_id="stream", map_index=-1),
        "run_id": "probe",
        "data_interval_start": start,
        "data_interval_end": start.add(hours=1),
    }
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = op.execute(context)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "before_kb": before, "peak_kb": peak, "report": report}))


if __name__ == "__main__":
    main()
