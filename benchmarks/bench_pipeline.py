"""
`make bench`: throughput and memory of the operator, side by side with a naive baseline and the ceiling.

One run builds a SQLite usage table of N rows, starts the emulator in its own process (``--no-store``),
and measures, each in a fresh client process (so peak RSS is the client's own):

(a) ceiling   pre-encoded 500-event bodies posted by a bare keep-alive ``http.client`` connection;
(b) naive     what a user writes today: ``fetchall``, a dict per row, ``pendulum.parse``,
              ``json.dumps``, ``HttpHook.run`` per batch of 500;
(c) operator  ``EnsoBatchEventsOperator`` with the SQL source and default settings;

then (c) at 100k rows against N rows for memory, (c) with the pure-Python mapper (what an install
without a C compiler runs), and (c) against an emulator answering after 50 ms with concurrency 1 and 8,
compared with the ideal (batches x latency / concurrency).

    python benchmarks/bench_pipeline.py [--rows 1000000] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TOKEN = "bench-token"
CUSTOMERS = [f"cust_{n:04d}" for n in range(1, 501)]
METRICS = ("api_calls", "storage_gb_hours", "compute_seconds", "seats")
BATCH = 500
OPERATOR_SQL = (
    "SELECT customer_id AS customer_entity_id, metric, quantity AS value, hour AS timestamp, region, plan "
    "FROM usage"
)


# -- set-up ------------------------------------------------------------------------------------------------


def build_table(path: Path, rows: int) -> None:
    """A usage table as a warehouse export would have it: one row per customer, metric and hour."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE usage (customer_id TEXT, metric TEXT, quantity REAL, hour TEXT, region TEXT, plan TEXT)"
    )

    def generate() -> Iterator[tuple[Any, ...]]:
        per_hour = len(CUSTOMERS) * len(METRICS)
        for n in range(rows):
            hour, slot = divmod(n, per_hour)
            customer = CUSTOMERS[slot % len(CUSTOMERS)]
            metric = METRICS[slot // len(CUSTOMERS)]
            day, h = divmod(hour, 24)
            stamp = f"2024-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{h:02d}:00:00Z"
            yield (
                customer,
                metric,
                (n % 9973) * 0.25,
                stamp,
                ("eu", "us")[n % 2],
                ("pro", "team")[n % 3 == 0],
            )

    conn.executemany("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?)", generate())
    conn.commit()
    conn.close()


@contextmanager
def emulator(latency: float = 0.0) -> Iterator[str]:
    """The emulator CLI in its own process; yields its URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "enso_provider.testing", "--port", str(port), "--token", TOKEN, "--no-store"]
    cmd += ["--customers", ",".join(CUSTOMERS), "--latency", str(latency)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        if "listening" not in banner:
            raise RuntimeError(f"emulator did not start: {banner!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def reset(url: str) -> None:
    """Empty the emulator between runs, so each client meets the same server (its id set included)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/_emulator/reset", method="POST"), timeout=10).read()


def run_worker(
    kind: str,
    db: Path,
    url: str,
    rows: int,
    repeat: int = 1,
    env: dict[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """
    Run one measurement in a fresh process (``repeat`` times) and return the fastest run.

    The fastest of a few runs is the least disturbed by the rest of the machine (as ``timeit`` does);
    every client gets the same number of runs, and the peak RSS is the largest seen.
    """
    runs = []
    for _ in range(repeat):
        reset(url)
        cmd = [
            sys.executable,
            str(HERE),
            "--worker",
            kind,
            "--db",
            str(db),
            "--url",
            url,
            "--rows",
            str(rows),
        ]
        cmd += ["--options", json.dumps(options)]
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
        )
        if out.returncode != 0:
            raise RuntimeError(f"{kind} failed:\n{out.stderr[-4000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["wall"])
    best["peak_mb"] = max(r["peak_mb"] for r in runs)
    best["runs"] = len(runs)
    return best


# -- the three clients ------------------------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_ceiling(db: Path, url: str, rows: int, options: dict[str, Any]) -> dict[str, Any]:
    """
    Pre-encode every body first (not timed): the very bytes the operator sends, built by the same
    mapper from the same rows. Then post them over one keep-alive connection: nothing but HTTP is timed.
    """
    import http.client
    from urllib.parse import urlsplit

    from enso_provider.events import EventMapper, encode_batch

    conn_sql = sqlite3.connect(db)
    cursor = conn_sql.execute(OPERATOR_SQL)
    columns = [c[0] for c in cursor.description]
    mapper = EventMapper(metadata_columns=["region", "plan"], namespace="ceiling")
    datas = [event.data for event in mapper.map(cursor, columns=columns)]
    bodies = [encode_batch(datas[i : i + BATCH]) for i in range(0, len(datas), BATCH)]
    del datas
    target = urlsplit(url)
    http = http.client.HTTPConnection(target.hostname, target.port)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    start = time.perf_counter()
    for body in bodies:
        http.request("POST", "/events/batch", body=body, headers=headers)
        response = http.getresponse()
        response.read()
        assert response.status == 200, response.status
    wall = time.perf_counter() - start
    return {"events": rows, "wall": wall, "peak_mb": _peak_mb()}


def worker_naive(db: Path, url: str, rows: int, options: dict[str, Any]) -> dict[str, Any]:
    """The job a user writes without the provider (what DESIGN.md calls the naive job)."""
    import pendulum
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    os.environ["AIRFLOW_CONN_USAGE"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    os.environ["AIRFLOW_CONN_ENSO_HTTP"] = json.dumps({"conn_type": "http", "host": url})
    start = time.perf_counter()
    records = SqliteHook(sqlite_conn_id="usage").get_records(
        "SELECT customer_id, metric, quantity, hour, region, plan FROM usage"
    )
    events = []
    for customer, metric, quantity, hour, region, plan in records:
        events.append(
            {
                "CustomerEntityId": customer,
                "metric": metric,
                "value": quantity,
                "timestamp": pendulum.parse(hour).in_timezone("UTC").to_iso8601_string(),
                "metadata": {"region": region, "plan": plan},
                "eventId": f"{customer}:{metric}:{hour}",
            }
        )
    hook = HttpHook(method="POST", http_conn_id="enso_http")
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for i in range(0, len(events), BATCH):
        hook.run("/events/batch", data=json.dumps({"events": events[i : i + BATCH]}), headers=headers)
    wall = time.perf_counter() - start
    return {"events": len(events), "wall": wall, "peak_mb": _peak_mb()}


def worker_operator(db: Path, url: str, rows: int, options: dict[str, Any]) -> dict[str, Any]:
    """EnsoBatchEventsOperator, SQL source, default settings (plus what ``options`` overrides)."""
    from types import SimpleNamespace

    import pendulum

    from enso_provider.events import _native as native
    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

    os.environ["AIRFLOW_CONN_USAGE"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    os.environ["AIRFLOW_CONN_ENSO_DEFAULT"] = json.dumps(
        {"conn_type": "enso", "host": url, "password": TOKEN}
    )
    op = EnsoBatchEventsOperator(
        task_id="bench",
        sql=OPERATOR_SQL,
        sql_conn_id="usage",
        metadata_columns=["region", "plan"],
        **options,
    )
    start_dt = pendulum.datetime(2024, 1, 1, tz="UTC")
    context = {
        "ti": SimpleNamespace(dag_id="bench", task_id="bench", map_index=-1),
        "run_id": "bench",
        "data_interval_start": start_dt,
        "data_interval_end": start_dt.add(days=1),
    }
    start = time.perf_counter()
    report = op.execute(context)  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    assert report["success"] == rows, report
    return {
        "events": report["success"],
        "wall": wall,
        "delivery": report["elapsed_seconds"],
        "peak_mb": _peak_mb(),
        "batches": report["batches"],
        "c_fast_path": native.speedups is not None,
    }


WORKERS = {"ceiling": worker_ceiling, "naive": worker_naive, "operator": worker_operator}


# -- the run ---------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        match = re.search(r"model name\s*:\s*(.+)", text)
        if match:
            cpu = match.group(1).strip()
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def rate(result: dict[str, Any]) -> float:
    return result["events"] / result["wall"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--latency-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each client; the fastest counts")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-naive", action="store_true", help="skip the (slow) naive baseline")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        result = WORKERS[args.worker](args.db, args.url, args.rows, json.loads(args.options))
        print(json.dumps(result))
        return 0

    results: dict[str, Any] = {"machine": machine(), "rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="enso-bench-") as tmp:
        big, small, lat = Path(tmp) / "big.sqlite", Path(tmp) / "small.sqlite", Path(tmp) / "lat.sqlite"
        print(f"Building usage tables ({args.rows:,}, {args.small_rows:,} and {args.latency_rows:,} rows)...")
        build_table(big, args.rows)
        build_table(small, args.small_rows)
        build_table(lat, args.latency_rows)
        print(f"Machine: {results['machine']}")
        with emulator() as url:
            for kind in ("ceiling", "naive", "operator"):
                if kind == "naive" and args.skip_naive:
                    continue
                print(f"  {kind} ({args.rows:,} rows)...", flush=True)
                results[kind] = run_worker(kind, big, url, args.rows, args.repeat)
            print(f"  operator ({args.small_rows:,} rows)...", flush=True)
            results["operator_small"] = run_worker("operator", small, url, args.small_rows, args.repeat)
            print(f"  operator, pure-Python mapper ({args.rows:,} rows)...", flush=True)
            results["operator_pure"] = run_worker(
                "operator", big, url, args.rows, args.repeat, env={"ENSO_PROVIDER_PURE_PYTHON": "1"}
            )
        with emulator(latency=0.05) as url:
            for concurrency in (1, 8):
                print(f"  operator, 50 ms latency, concurrency {concurrency}...", flush=True)
                results[f"latency_c{concurrency}"] = run_worker(
                    "operator", lat, url, args.latency_rows, 1, concurrency=concurrency
                )

    print()
    print(f"Machine: {results['machine']}; fastest of {args.repeat} run(s) of each client")
    print(f"{'run':<34}{'events/s':>12}{'wall (s)':>10}{'peak RSS (MB)':>15}")
    labels = [
        ("ceiling", f"(a) ceiling, {args.rows:,} rows"),
        ("naive", f"(b) naive baseline, {args.rows:,} rows"),
        ("operator", f"(c) operator, {args.rows:,} rows"),
        ("operator_small", f"(c) operator, {args.small_rows:,} rows"),
        ("operator_pure", f"(c) pure Python, {args.rows:,} rows"),
    ]
    for key, label in labels:
        if key in results:
            r = results[key]
            print(f"{label:<34}{rate(r):>12,.0f}{r['wall']:>10.2f}{r['peak_mb']:>15.1f}")
    c = rate(results["operator"])
    if "naive" in results:
        results["ratio_vs_naive"] = c / rate(results["naive"])
        print(f"(c)/(b) = {results['ratio_vs_naive']:.2f}x   (target >= 4x)")
    results["ratio_vs_ceiling"] = c / rate(results["ceiling"])
    print(f"(c)/(a) = {results['ratio_vs_ceiling']:.0%}   (target >= 70%)")
    growth = results["operator"]["peak_mb"] - results["operator_small"]["peak_mb"]
    results["rss_growth_mb"] = growth
    print(f"peak RSS growth {args.small_rows:,} -> {args.rows:,} rows: {growth:.1f} MB   (target < 30 MB)")
    for concurrency in (1, 8):
        r = results[f"latency_c{concurrency}"]
        # The ideal is the sending alone; the delivery's own elapsed time (reading, mapping and sending,
        # not the task's set-up) is what it compares with. The task's whole wall time is shown too.
        ideal = r["batches"] * 0.05 / concurrency
        results[f"latency_c{concurrency}"]["ideal"] = ideal
        results[f"latency_c{concurrency}"]["efficiency"] = ideal / r["delivery"]
        print(
            f"50 ms latency, concurrency {concurrency}: {r['delivery']:.2f}s delivering "
            f"{r['batches']} batches ({r['wall']:.2f}s task), ideal {ideal:.2f}s "
            f"-> {ideal / r['delivery']:.0%} of ideal" + ("   (target >= 80%)" if concurrency == 8 else "")
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
