"""
`make bench`: the operator on users' data, side by side with a naive job and the ceiling.

Builds (or reuses) a usage table of ``--rows`` rows on the local PostgreSQL server and its copy in
SQLite (see ``usage_data.py``), starts the emulator in its own process (``--no-store``, emptied
before every run), and for each source runs, each in a fresh process (``clients.py``):

(a) ceiling   pre-encoded 500-event bodies posted over one bare keep-alive ``http.client`` connection;
(b) naive     ``fetchall``, a dict per row, ``isoformat()``/``pendulum``, ``json.dumps(default=str)``,
              Airflow's ``HttpHook.run`` per 500 events;
(c) operator  ``EnsoBatchEventsOperator`` reading with ``sql_conn_id``, default settings;

then (c) on ``--small-rows`` rows (peak RSS growth), the mapper alone on rows fetched into memory,
and (c) at emulator latency 0 ms and 50 ms with concurrency 1, 4 and 8 on ``--latency-rows`` rows.
Each figure is the fastest of ``--repeat`` runs. Prints a table; writes the figures as JSON.

    python benchmarks/bench.py [--rows 1000000] [--quick] [--repeat 3] [--json .bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import usage_data  # noqa: E402

ROOT = HERE.parent
SOURCES = ("postgres", "sqlite")
#: Clients that use none of the package: with a baseline, one run a turn serves both checkouts.
PACKAGE_FREE = ("ceiling", "naive")


def _checkout_env(root: Path = ROOT) -> dict[str, str]:
    """
    The environment of a child process that runs these clients on a checkout's package (this one's, or
    the baseline's), whatever is installed: only the package differs between the two.
    """
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(HERE), str(root)))}


def _fastest(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run by wall time, with the largest peak RSS and every run's wall and CPU seconds."""
    fastest = min(results, key=lambda r: r["wall"])
    fastest["peak_mb"] = max(r["peak_mb"] for r in results)
    fastest["runs"] = len(results)
    fastest["walls"] = [round(r["wall"], 3) for r in results]
    fastest["cpus"] = [round(r["cpu"], 3) for r in results]
    return fastest


@contextmanager
def emulator(latency: float = 0.0) -> Iterator[str]:
    """The emulator CLI in its own process (its CPU is not the client's); yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "enso_provider.testing", "--port", str(port), "--token", usage_data.TOKEN]
    cmd += ["--no-store", "--latency", str(latency), "--customers", ",".join(usage_data.customer_ids())]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_checkout_env()
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        if "listening" not in banner:
            raise RuntimeError(f"emulator did not start: {banner!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/_emulator/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


class Runner:
    """Runs clients in fresh processes against one set of tables, checking every row is accounted for."""

    def __init__(self, tables: usage_data.Tables, repeat: int, baseline: Path | None = None) -> None:
        self.tables = tables
        self.repeat = repeat
        #: The checkouts whose clients run: this one, and the baseline's when one is given.
        self.roots = {"after": ROOT, **({"baseline": baseline} if baseline else {})}

    def interleaved(
        self, jobs: dict[str, tuple[str, int, dict[str, Any]]], source: str, url: str
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """
        The fastest of ``repeat`` runs of each job ``{key: (client, rows, options)}`` on each checkout's
        package, as ``{checkout: {key: result}}``: run in turns (one run of each job on each checkout,
        then again), so that a change in the machine's speed meets every job and every checkout alike.
        The ceiling and the naive job do not use the package: they run once a turn, shown for both.
        """
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {r: {key: [] for key in jobs} for r in self.roots}
        for _ in range(self.repeat):
            for key, (client, rows, options) in jobs.items():
                for name, root in self.roots.items():
                    if client in PACKAGE_FREE and name != "after":
                        runs[name][key] = runs["after"][key]
                        continue
                    runs[name][key].append(self._once(root, client, source, url, rows, options))
        return {
            name: {key: _fastest(results) for key, results in by_key.items()} for name, by_key in runs.items()
        }

    def _once(
        self, root: Path, client: str, source: str, url: str, rows: int, options: dict[str, Any]
    ) -> dict[str, Any]:
        if source == "postgres":
            conn, table = self.tables.postgres_conn_json(), usage_data.postgres_table(self.tables.rows)
        else:
            conn, table = self.tables.sqlite_conn_json(), usage_data.TABLE
        spec = {
            "client": client,
            "source": source,
            "rows": rows,
            "table": table,
            "url": url,
            "conn": conn,
            "options": options,
        }
        _reset(url)
        out = subprocess.run(
            [sys.executable, str(HERE / "clients.py"), json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            env=_checkout_env(root),
        )
        if out.returncode != 0:
            raise RuntimeError(f"{client} on {source} failed:\n{out.stderr[-4000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        check_accounted(client, source, rows, result)
        return result


def check_accounted(client: str, source: str, rows: int, result: dict[str, Any]) -> None:
    """Every row is accepted, refused by Enso or rejected before sending; the bad kinds are where expected."""
    total = result["success"] + result["failed"] + result["invalid"]
    if total != rows:
        raise RuntimeError(f"{client} on {source}: {total} rows accounted for, not {rows}: {result}")
    if client in ("operator", "mapper"):
        bad = usage_data.bad_row_counts(rows)
        refused = sum(bad[k] for k in usage_data.REFUSED_BY_ENSO)
        local = sum(bad.values()) - refused
        expected = (local, refused if client == "operator" else 0)
        if (result["invalid"], result["failed"]) != expected:
            raise RuntimeError(f"{client} on {source}: invalid/failed {result} != {expected}")


def machine(root: Path = ROOT) -> dict[str, Any]:
    """The machine and the state it was in."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    ).stdout.strip()
    import platform

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "commit": commit or "unknown",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big runs")
    parser.add_argument("--small-rows", type=int, default=100_000, help="rows of the RSS-growth baseline")
    parser.add_argument("--mapper-rows", type=int, default=200_000, help="rows the mapper alone maps")
    parser.add_argument("--latency-rows", type=int, default=50_000, help="rows of the latency grid")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each client; the fastest counts")
    parser.add_argument("--quick", action="store_true", help="20k rows, a quick look")
    parser.add_argument("--sources", default=",".join(SOURCES), help="postgres,sqlite or one of them")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the (slow) naive job")
    parser.add_argument("--latencies", default="0,50", help="emulator latencies of the grid, ms")
    parser.add_argument("--concurrencies", default="1,4,8", help="concurrencies of the grid")
    parser.add_argument("--database", default=usage_data.DATABASE, help="PostgreSQL database of the table")
    parser.add_argument(
        "--cache-dir", type=Path, default=ROOT / ".bench", help="where the SQLite copy is kept"
    )
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "results.json")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (a git worktree of the last release) whose clients run in turns with these",
    )
    parser.add_argument("--show", type=Path, help="print the tables of a saved JSON file, run nothing")
    parser.add_argument(
        "--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), help="two saved runs side by side"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows = min(args.rows, 20_000)
    args.small_rows = min(args.small_rows, max(1, args.rows // 10))
    args.mapper_rows = min(args.mapper_rows, args.rows)
    args.latency_rows = min(args.latency_rows, args.rows)
    return args


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every measurement, as ``{checkout: results}`` (each is what goes in a JSON file)."""
    sources = [s for s in args.sources.split(",") if s]
    started = time.perf_counter()
    print(f"Building the usage tables ({args.rows:,} rows)...", flush=True)
    tables = usage_data.build(args.rows, args.cache_dir, args.database)
    runner = Runner(tables, args.repeat, args.baseline)
    results: dict[str, dict[str, Any]] = {}
    for name, root in runner.roots.items():
        results[name] = {"machine": machine(root), "load_before": os.getloadavg(), "repeat": args.repeat}
        results[name]["sizes"] = {
            k: getattr(args, k) for k in ("rows", "small_rows", "mapper_rows", "latency_rows")
        }
        results[name]["build_seconds"] = round(time.perf_counter() - started, 1)
    for source in sources:
        out: dict[str, dict[str, Any]] = {name: {} for name in runner.roots}
        with emulator() as url:
            jobs = {
                "ceiling": ("ceiling", args.rows, {}),
                "naive": ("naive", args.rows, {}),
                "operator": ("operator", args.rows, {}),
                "operator_small": ("operator", args.small_rows, {}),
                "mapper": ("mapper", args.mapper_rows, {}),
            }
            if args.skip_naive:
                del jobs["naive"]
            print(f"  {source}: {', '.join(jobs)}, in turns ({args.repeat} of each)...", flush=True)
            for name, found in runner.interleaved(jobs, source, url).items():
                out[name].update(found)
        for latency in [float(ms) / 1000 for ms in args.latencies.split(",") if ms]:
            concurrencies = [int(c) for c in args.concurrencies.split(",") if c]
            grid = {
                f"latency_{latency * 1000:.0f}ms_c{c}": ("operator", args.latency_rows, {"concurrency": c})
                for c in concurrencies
            }
            print(
                f"  {source}: {latency * 1000:.0f} ms, concurrency {concurrencies}, in turns...", flush=True
            )
            with emulator(latency) as url:
                for name, found in runner.interleaved(grid, source, url).items():
                    for key, r in found.items():
                        r.update(latency=latency, concurrency=grid[key][2]["concurrency"])
                        out[name][key] = r
        for name in runner.roots:
            results[name][source] = out[name]
    for name in runner.roots:
        results[name]["load_after"] = os.getloadavg()
        results[name]["total_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> int:
    """Run the benchmark, print the table and write the JSON file."""
    args = _arguments()
    if args.show:
        print(report.render(json.loads(args.show.read_text())))
        return 0
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        print(report.compare(before, after))
        return 0
    results = run(args)
    print()
    print(report.render(results["after"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results["after"], indent=2))
    written = [args.json]
    if "baseline" in results:
        baseline_json = args.json.with_name(args.json.stem + "-baseline.json")
        baseline_json.write_text(json.dumps(results["baseline"], indent=2))
        written.append(baseline_json)
        print("\n## The baseline, run in turns with the above\n")
        print(report.render(results["baseline"]))
        print("\n## Side by side\n")
        print(report.compare(results["baseline"], results["after"]))
    shown = [str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written]
    print(f"\nFigures written to {', '.join(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
