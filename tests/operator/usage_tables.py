"""Usage tables for the SQL tests, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

#: The database the tables go in (one per checkout when several test runs share the servers).
DATABASE = os.environ.get("ENSO_TEST_DATABASE", "test")

HOUR = datetime(2024, 5, 1, 10)
CUSTOMERS = [f"cust_{n:03d}" for n in range(1, 121)]
METRICS = ("api_calls", "storage_gb_hours", "compute_seconds")


@dataclass
class UsageTable:
    """Rows in the table, split into what the hourly query of ``HOUR`` should yield."""

    conn_json: str
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    good_in_hour: int = 0
    unknown_in_hour: int = 0
    invalid_in_hour: int = 0


def usage_rows(days: int = 0) -> tuple[list[tuple[Any, ...]], int]:
    """Rows of ``HOUR`` (and of the hours around it), plus ``days`` more days of one row per hour."""
    rows: list[tuple[Any, ...]] = []
    in_hour = 0
    for hour in (HOUR - timedelta(hours=1), HOUR, HOUR + timedelta(hours=1)):
        for i, customer in enumerate(CUSTOMERS):
            for j, metric in enumerate(METRICS):
                quantity = Decimal(f"{(i * 7 + j * 13) % 997}.{(i + j) % 1000:03d}")
                rows.append((customer, metric, quantity, hour, ("eu", "us")[(i + j) % 2], "pro"))
                in_hour += hour == HOUR
    for d in range(days):
        for h in range(24):
            stamp = HOUR.replace(hour=0) + timedelta(days=d + 1, hours=h)
            rows.append(("cust_001", "api_calls", Decimal(h + 1), stamp, "eu", "pro"))
    return rows, in_hour


BAD_ROWS = [
    ("cust_unknown", "api_calls", Decimal(17), HOUR, "eu", "pro"),  # Enso: 2002
    (None, "api_calls", Decimal(5), HOUR, "eu", "pro"),  # local: missing customer
]

DDL = (
    "CREATE TABLE usage_hourly (customer_id VARCHAR(64), metric VARCHAR(64), quantity NUMERIC(18, 3), "
    "hour_start {ts}, region VARCHAR(16), plan VARCHAR(16))"
)


@contextmanager
def sqlite_table(path: Path, days: int = 0) -> Iterator[UsageTable]:
    import sqlite3

    rows, in_hour = usage_rows(days)
    rows += BAD_ROWS
    conn = sqlite3.connect(path)
    conn.execute(DDL.format(ts="TEXT").replace("NUMERIC(18, 3)", "TEXT"))
    conn.executemany(
        "INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?, ?)",
        [(c, m, str(q), ts.strftime("%Y-%m-%d %H:%M:%S"), r, p) for c, m, q, ts, r, p in rows],
    )
    conn.commit()
    conn.close()
    yield UsageTable(
        conn_json=json.dumps({"conn_type": "sqlite", "host": str(path)}),
        rows=rows,
        good_in_hour=in_hour,
        unknown_in_hour=1,
        invalid_in_hour=1,
    )


def postgres_connection() -> Any:
    """An autocommit psycopg2 connection to :data:`DATABASE` on the local server, created if missing."""
    import psycopg2

    if DATABASE != "test":
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}"')
        admin.close()
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=DATABASE)
    conn.autocommit = True
    return conn


@contextmanager
def postgres_table(days: int = 0) -> Iterator[UsageTable]:
    rows, in_hour = usage_rows(days)
    rows += BAD_ROWS
    conn = postgres_connection()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS usage_hourly")
        cur.execute(DDL.format(ts="TIMESTAMP"))
        cur.executemany("INSERT INTO usage_hourly VALUES (%s, %s, %s, %s, %s, %s)", rows)
    try:
        yield UsageTable(
            conn_json=json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "login": "postgres",
                    "schema": DATABASE,
                }
            ),
            rows=rows,
            good_in_hour=in_hour,
            unknown_in_hour=1,
            invalid_in_hour=1,
        )
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS usage_hourly")
        conn.close()


@contextmanager
def mariadb_table(days: int = 0) -> Iterator[UsageTable]:
    import MySQLdb

    rows, in_hour = usage_rows(days)
    rows += BAD_ROWS
    conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="")
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
    conn.select_db(DATABASE)
    conn.autocommit(True)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS usage_hourly")
    cur.execute(DDL.format(ts="DATETIME"))
    cur.executemany("INSERT INTO usage_hourly VALUES (%s, %s, %s, %s, %s, %s)", rows)
    try:
        yield UsageTable(
            conn_json=json.dumps(
                {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": DATABASE}
            ),
            rows=rows,
            good_in_hour=in_hour,
            unknown_in_hour=1,
            invalid_in_hour=1,
        )
    finally:
        cur.execute("DROP TABLE IF EXISTS usage_hourly")
        conn.close()
