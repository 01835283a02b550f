"""The SQL source is streamed: peak memory does not grow with the row count (measured in subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("stream_probe.py")
TOKEN = "stream-token"


def probe(rows: int, url: str, workdir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, str(PROBE), str(rows), url, TOKEN, str(workdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_is_flat_in_the_row_count(tmp_path):
    from enso_provider.testing import EnsoEmulator

    # 300k rows is 600 batches of 500: far more than batch_size x concurrency (2,000) can hold.
    with EnsoEmulator(customers=["cust_1", "cust_2", "cust_3"], token=TOKEN, store_events=False) as enso:
        small = probe(20_000, enso.url, tmp_path)
        large = probe(300_000, enso.url, tmp_path)
        assert enso.stats["events_accepted"] == 320_000
    for result in (small, large):
        report = result["report"]
        assert report["total"] == report["success"] == result["rows"]
    growth_mb = (large["peak_kb"] - small["peak_kb"]) / 1024
    # Holding 280k more rows (and their events) would cost well over 100 MB.
    assert growth_mb < 25, f"peak RSS grew by {growth_mb:.1f} MB from 20k to 300k rows"
