"""
`make demo`: the hourly SQL example DAG, run once against the local Enso emulator.

Builds a SQLite usage table with realistic rows and a few bad ones, starts the emulator, migrates a
local Airflow metadata database, runs ``enso_usage_sql_hourly`` for one hour with ``dag.test()``, and
prints the report. Everything lives in ``.demo/`` (removed and rebuilt on each run).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".demo"
HOUR = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)  # the interval the demo reports: 10:00-11:00 UTC
CUSTOMERS = [f"cust_{n:03d}" for n in range(1, 121)]
METRICS = ("api_calls", "storage_gb_hours", "compute_seconds")
REGIONS = ("eu-west-1", "us-east-1")
PLANS = {c: ("pro" if i % 3 else "enterprise") for i, c in enumerate(CUSTOMERS)}


def build_usage_db(path: Path) -> int:
    """Write ``usage_hourly`` with three hours of usage; return the rows inside the demo hour."""
    rng = random.Random(20240501)
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE usage_hourly (customer_id TEXT, metric TEXT, quantity NUMERIC, "
        "hour_start TEXT, region TEXT, plan TEXT)"
    )
    rows = []
    for hour in (HOUR - timedelta(hours=1), HOUR, HOUR + timedelta(hours=1)):
        stamp = hour.strftime("%Y-%m-%d %H:%M:%S")
        for customer in CUSTOMERS:
            for metric in METRICS:
                region = REGIONS[(int(customer[5:]) + METRICS.index(metric)) % 2]
                quantity = round(rng.uniform(1, 5000), 3) if metric != "api_calls" else rng.randint(1, 90000)
                rows.append((customer, metric, quantity, stamp, region, PLANS[customer]))
    stamp = HOUR.strftime("%Y-%m-%d %H:%M:%S")
    rows += [
        # A customer who is not in Enso yet: Enso refuses it with 2002 (a replay can send it later).
        ("cust_unknown", "api_calls", 17, stamp, "eu-west-1", "pro"),
        # No customer at all: rejected locally, never sent.
        (None, "api_calls", 5, stamp, "eu-west-1", "pro"),
        # A timestamp no calendar has: rejected locally, never sent as NaN-NaN-NaN.
        ("cust_001", "api_calls", 3, "2024-05-01 10:61:00", "eu-west-1", "sandbox"),
    ]
    conn.executemany("INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return len(CUSTOMERS) * len(METRICS) + 3


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "airflow").mkdir(parents=True)
    usage_db = WORK / "usage.sqlite"
    expected = build_usage_db(usage_db)

    from enso_provider.testing import EnsoEmulator

    with EnsoEmulator(customers=CUSTOMERS, token="demo-token") as enso:
        env = {
            "AIRFLOW_HOME": str(WORK / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{WORK / 'airflow' / 'airflow.db'}",
            "AIRFLOW_CONN_ENSO_DEFAULT": enso.connection_json(),
            "AIRFLOW_CONN_USAGE_DB": f'{{"conn_type": "sqlite", "host": "{usage_db}"}}',
            "ENSO_REJECTED_RECORDS_BASE": f"file://{WORK / 'rejected'}",
        }
        os.environ.update(env)
        print(f"Enso emulator on {enso.url}; usage table with {expected} rows in the demo hour.", flush=True)
        print("Migrating the Airflow metadata database (airflow db migrate)...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "example_dags" / "enso_usage_sql_hourly.py"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.get_dag("enso_usage_sql_hourly")
        end = HOUR + timedelta(hours=1)
        print(f"Running enso_usage_sql_hourly for {HOUR:%Y-%m-%d %H:%M}-{end:%H:%M} UTC", flush=True)
        run = dag.test(logical_date=HOUR + timedelta(hours=1))
        stats = enso.stats

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from enso_provider.operators.report import format_report

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run.run_id, dag_ids=dag.dag_id, task_ids="report_usage", key="return_value"
        )
        report = session.scalars(query).first()
    print()
    if report is not None:
        print(format_report(XComModel.deserialize_value(report)))
    print(
        f"Emulator: {stats['events_stored']} events stored, {stats['batch_requests']} requests, "
        f"{stats['duplicates']} duplicates, {stats['nan_timestamps']} NaN timestamps seen."
    )
    state = str(run.state)
    print(f"DAG run state: {state}")
    return 0 if state.endswith("success") else 1


if __name__ == "__main__":
    sys.exit(main())
