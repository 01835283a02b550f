"""
Run the hourly SQL example DAG with dag.test() and the OpenLineage provider's listener on.

Used by test_integration_lineage.py in a fresh process (OpenLineage reads its configuration once per
process): ``python lineage_probe.py WORKDIR``. The caller's environment sets AIRFLOW_HOME, the
database, the dags folder and ``AIRFLOW__OPENLINEAGE__TRANSPORT`` (a file transport); this script
builds the usage table, starts the emulator, runs the DAG and prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

CUSTOMERS = ["cust_1", "cust_2", "cust_3"]


def main(work: Path) -> int:
    usage = work / "usage.sqlite"
    conn = sqlite3.connect(usage)
    conn.execute(
        "CREATE TABLE usage_hourly (customer_id TEXT, metric TEXT, quantity NUMERIC, hour_start TEXT, "
        "region TEXT, plan TEXT)"
    )
    conn.executemany(
        "INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?)",
        [(c, "api_calls", n + 1, "2024-05-01 10:00:00", "eu-west-1", "pro") for n, c in enumerate(CUSTOMERS)],
    )
    conn.commit()
    conn.close()

    from enso_provider.testing import EnsoEmulator

    with EnsoEmulator(customers=CUSTOMERS, token="lineage-token") as enso:
        os.environ["AIRFLOW_CONN_ENSO_DEFAULT"] = enso.connection_json()
        os.environ["AIRFLOW_CONN_USAGE_DB"] = json.dumps({"conn_type": "sqlite", "host": str(usage)})
        os.environ["ENSO_REJECTED_RECORDS_BASE"] = f"file://{work / 'rejected'}"
        from airflow.utils import db

        from tests.airflow_compat import DagBag

        db.resetdb()
        path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "enso_usage_sql_hourly.py"
        dag = DagBag(dag_folder=str(path)).get_dag("enso_usage_sql_hourly")
        run = dag.test(logical_date=datetime(2024, 5, 1, 11, tzinfo=timezone.utc))
        summary = {"state": str(run.state), "url": enso.url, "stored": enso.stats["events_stored"]}
    print(json.dumps({"usage_db": str(usage), **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
