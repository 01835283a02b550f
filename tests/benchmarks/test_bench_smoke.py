"""
`make bench` at a tiny size, so that the harness cannot rot: it runs end to end on both sources and
every row of every client is accounted for. No timing is asserted (speed belongs to the benchmark).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
ROWS = 1200


def test_bench_runs_and_accounts_for_every_row(tmp_path: Path) -> None:
    """Each client of each source answers for every row; the operator rejects exactly the bad rows."""
    sys.path.insert(0, str(BENCH))
    try:
        import usage_data
    finally:
        sys.path.remove(str(BENCH))
    database = f"enso_bench_smoke_{os.environ.get('ENSO_TEST_DATABASE', 'test')}"
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(BENCH / "bench.py"), "--rows", str(ROWS), "--repeat", "1"]
    cmd += ["--concurrencies", "4", "--database", database, "--cache-dir", str(tmp_path), "--json", str(out)]
    # This checkout as its own baseline: the runs in turns of two checkouts, and their side-by-side table.
    cmd += ["--baseline", str(BENCH.parent)]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "(c) operator" in run.stdout

    results = json.loads(out.read_text())
    bad = usage_data.bad_row_counts(ROWS)
    refused = sum(bad[k] for k in usage_data.REFUSED_BY_ENSO)
    local = sum(bad.values()) - refused
    assert local > 0, "the tiny table holds rows the operator rejects"
    assert refused > 0, "the tiny table holds rows Enso refuses"
    for source in ("postgres", "sqlite"):
        figures = results[source]
        assert {"ceiling", "naive", "operator", "operator_small", "mapper"} <= set(figures)
        for name, r in figures.items():
            assert r["success"] + r["failed"] + r["invalid"] == r["rows"], (source, name, r)
            assert r["sent"] == r["success"] + r["failed"] or name == "mapper", (source, name, r)
        assert figures["operator"]["rows"] == ROWS
        assert (figures["operator"]["invalid"], figures["operator"]["failed"]) == (local, refused)
        assert figures["ceiling"]["sent"] == ROWS - local
        assert figures["mapper"]["invalid"] == local
        grid = [k for k in figures if k.startswith("latency_")]
        assert sorted(grid) == ["latency_0ms_c4", "latency_50ms_c4"]
    baseline = json.loads((tmp_path / "results-baseline.json").read_text())
    for source in ("postgres", "sqlite"):
        assert set(baseline[source]) == set(results[source])
        assert baseline[source]["operator"]["invalid"] == local
    assert "before | after" in run.stdout
