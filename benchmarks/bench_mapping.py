"""
Micro-benchmark of the mapper: rows/s on one core, and peak RSS growth from 100k to N rows.

Run: ``.venv/bin/python benchmarks/bench_mapping.py --rows 1000000``

Rows are built in chunks of ``--chunk`` (as the operator's ``fetchmany`` delivers them),
outside the timed region, with fresh string objects per row (as a database driver gives
them) and distinct contents (so the duplicate-occurrence counter holds one entry per row).
Each measurement runs in its own child process so that ``ru_maxrss`` (a high-water mark)
belongs to that run alone; the RSS growth is the peak of the N-row run minus the peak of
the 100k-row run, which removes the interpreter's and the libraries' own footprint.

Shapes:

- ``tuple-str``: SQL tuples ``(customer, metric, value float|int, 'YYYY-MM-DDTHH:MM:SSZ')``, job_id set;
- ``tuple-datetime``: the same with naive ``datetime`` timestamps;
- ``tuple-meta2``: ``tuple-str`` plus two columns collected by ``metadata_columns``;
- ``dict-str``: the ``tuple-str`` rows as dicts (XCom rows);
- ``tuple-str-distinct-ts``: ``tuple-str`` with a distinct timestamp per row (no cache hits).

Each tuple shape runs twice: with the C fast path (where it is built) and with the pure-Python
mapper (``ENSO_PROVIDER_PURE_PYTHON=1``), which gives the same bytes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from enso_provider.events import Event, EventMapper, encode_batch
from enso_provider.events import _native as native

SHAPES = ("tuple-str", "tuple-datetime", "tuple-meta2", "dict-str", "tuple-str-distinct-ts")
COLUMNS = ["customer_entity_id", "metric", "value", "timestamp"]
META_COLUMNS = ["region", "plan"]
METRICS = ("api_calls", "storage_gb", "seats")
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")
PLANS = ("free", "pro", "enterprise")
_BASE = datetime(2023, 11, 1)


def _chunk(shape: str, start: int, size: int) -> list[Any]:
    rows: list[Any] = []
    for i in range(start, start + size):
        customer = f"cust_{i % 5000:05d}"
        metric = METRICS[i % 3]
        value: float | int = i * 0.25 if i & 1 else i
        if shape == "tuple-str-distinct-ts":
            stamp: Any = (_BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif shape == "tuple-datetime":
            stamp = datetime(2023, 11, 1 + (i // 24) % 28, i % 24)
        else:
            # 28 days of hourly buckets: heavy repetition, fresh str objects.
            stamp = f"2023-11-{1 + (i // 24) % 28:02d}T{i % 24:02d}:00:00Z"
        if shape == "tuple-meta2":
            rows.append((customer, metric, value, stamp, REGIONS[i % 3], PLANS[i % 3]))
        elif shape == "dict-str":
            rows.append(
                {"customer_entity_id": customer, "metric": metric, "value": value, "timestamp": stamp}
            )
        else:
            rows.append((customer, metric, value, stamp))
    return rows


def _mapper(shape: str) -> tuple[EventMapper, list[str] | None]:
    if shape == "tuple-meta2":
        mapper = EventMapper(job_id="job_bench", metadata_columns=META_COLUMNS, namespace="bench")
        return mapper, COLUMNS + META_COLUMNS
    mapper = EventMapper(job_id="job_bench", namespace="bench")
    return mapper, None if shape == "dict-str" else COLUMNS


def _chunks(shape: str, rows: int, chunk: int) -> Iterator[list[Any]]:
    for start in range(0, rows, chunk):
        yield _chunk(shape, start, min(chunk, rows - start))


def run_child(shape: str, rows: int, chunk: int) -> dict[str, Any]:
    """Map ``rows`` rows of ``shape`` in this process; time only the mapping."""
    mapper, columns = _mapper(shape)
    gc.collect()
    events = rejected = 0
    cpu = wall = batching = 0.0
    for rows_chunk in _chunks(shape, rows, chunk):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        datas = []
        for part in mapper.map_chunks(rows_chunk, columns):  # as the operator maps its chunks
            for item in part:
                if type(item) is Event:
                    datas.append(item.data)
                else:
                    rejected += 1
        cpu += time.process_time() - cpu_start
        wall += time.perf_counter() - wall_start
        events += len(datas)
        started = time.perf_counter()
        for i in range(0, len(datas), 500):
            encode_batch(datas[i : i + 500])
        batching += time.perf_counter() - started
    return {
        "shape": shape,
        "rows": rows,
        "events": events,
        "rejected": rejected,
        "cpu_rows_per_s": rows / cpu if cpu else 0.0,
        "wall_rows_per_s": rows / wall if wall else 0.0,
        "encode_batch_us_per_event": batching / max(events, 1) * 1e6,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "distinct_fingerprints": mapper.distinct_fingerprints,
    }


def _spawn(shape: str, rows: int, chunk: int, pure: bool) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--shape", shape, "--rows", str(rows), "--chunk", str(chunk)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "ENSO_PROVIDER_PURE_PYTHON": "1" if pure else "0"},
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large run (default 1M)")
    parser.add_argument("--small", type=int, default=100_000, help="rows of the small run (default 100k)")
    parser.add_argument("--chunk", type=int, default=10_000, help="rows per map() call (fetchmany size)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the best rate is kept")
    parser.add_argument("--shape", choices=SHAPES, action="append", help="shapes to run (default: all)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.shape[0], args.rows, args.chunk)))
        return
    print(
        f"mapper benchmark: {args.rows:,} rows (RSS growth vs {args.small:,}), chunks of {args.chunk:,}, "
        f"best of {args.repeat}; rows/s on one core (CPU time) and by the clock"
    )
    header = (
        f"{'shape (mapper)':<32}{'rows/s cpu':>12}{'rows/s wall':>13}{'batch us/ev':>13}"
        f"{'peak RSS':>11}{'RSS growth':>12}"
    )
    print(header)
    print("-" * len(header))
    paths = [("C", False), ("Python", True)] if native.speedups is not None else [("Python", True)]
    for shape in args.shape or SHAPES:
        for path, pure in paths:
            if path == "C" and shape == "dict-str":
                continue  # mappings take the Python loop
            _report(f"{shape} ({path})", args, pure, shape)


def _report(label: str, args: argparse.Namespace, pure: bool, shape: str) -> None:
    smalls = [_spawn(shape, args.small, args.chunk, pure) for _ in range(args.repeat)]
    larges = [_spawn(shape, args.rows, args.chunk, pure) for _ in range(args.repeat)]
    large = max(larges, key=lambda r: r["cpu_rows_per_s"])
    growth = min(r["maxrss_mb"] for r in larges) - min(r["maxrss_mb"] for r in smalls)
    print(
        f"{label:<32}{large['cpu_rows_per_s']:>12,.0f}"
        f"{max(r['wall_rows_per_s'] for r in larges):>13,.0f}"
        f"{large['encode_batch_us_per_event']:>13.2f}"
        f"{large['maxrss_mb']:>9.1f}MB{growth:>+10.1f}MB"
    )


if __name__ == "__main__":
    main()
