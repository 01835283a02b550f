"""
How fast the Enso emulator ingests events, so that it is never what a benchmark measures.

Starts ``python -m enso_provider.testing --no-store`` in its own process, posts
pre-encoded 500-event bodies (events of about 200 bytes, every ``eventId``
distinct) over one keep-alive connection with ``http.client``, and prints
events per second. Only the posting is timed; the bodies are built beforehand.

    .venv/bin/python benchmarks/bench_emulator.py --events 1000000
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import time
from urllib.parse import urlsplit

import orjson

CUSTOMERS = [f"cust_{i:05d}" for i in range(100)]
TOKEN = "bench-token"


def build_bodies(events: int, batch_size: int, distinct_timestamps: int) -> list[bytes]:
    """
    Encode the request bodies up front, as a client that pre-encodes would.

    :param events: total events.
    :param batch_size: events per body.
    :param distinct_timestamps: how many distinct timestamps the events cycle through.
    """
    bodies = []
    for start in range(0, events, batch_size):
        batch = []
        for i in range(start, min(start + batch_size, events)):
            second = i % distinct_timestamps
            batch.append(
                {
                    "CustomerEntityId": CUSTOMERS[i % len(CUSTOMERS)],
                    "metric": "api_calls",
                    "value": (i % 1000) / 4,
                    "timestamp": f"2024-05-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:"
                    f"{second % 60:02d}.{second * 7919 % 1_000_000:06d}Z",
                    "metadata": {"region": "eu-west-1", "plan": "pro"},
                    "eventId": f"evt_{i:012d}_5f3a9c1e",
                    "JobId": "job_2024050112",
                }
            )
        bodies.append(orjson.dumps({"events": batch}))
    return bodies


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """Start the emulator CLI on a free port; return the process and its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "enso_provider.testing",
            "--port",
            "0",
            "--customers",
            ",".join(CUSTOMERS),
            "--token",
            TOKEN,
            "--no-store",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    if "listening on " not in banner:
        proc.kill()
        raise SystemExit(f"the emulator did not start: {banner!r}")
    return proc, banner.split("listening on ", 1)[1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to post (default 1000000)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per request (default 500)")
    parser.add_argument(
        "--distinct-timestamps",
        type=int,
        default=1_000_000,
        help="distinct timestamp strings (default 1000000: every event distinct, the emulator's worst case)",
    )
    args = parser.parse_args()

    bodies = build_bodies(args.events, args.batch_size, args.distinct_timestamps)
    mean_event = sum(map(len, bodies)) / args.events
    proc, url = start_emulator()
    try:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        started = time.perf_counter()
        for body in bodies:
            conn.request("POST", "/events/batch", body, headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise SystemExit(f"unexpected {response.status}: {payload[:200]!r}")
        elapsed = time.perf_counter() - started
        conn.request("GET", "/_emulator/stats")
        stats = orjson.loads(conn.getresponse().read())
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)

    if stats["events_accepted"] != args.events or stats["events_failed"]:
        raise SystemExit(f"the emulator did not accept every event: {stats}")
    print(
        f"{args.events} events in {len(bodies)} requests of {args.batch_size} "
        f"(~{mean_event:.0f} bytes/event) in {elapsed:.2f} s: "
        f"{args.events / elapsed:,.0f} events/s, {len(bodies) / elapsed:,.0f} requests/s"
    )


if __name__ == "__main__":
    main()
