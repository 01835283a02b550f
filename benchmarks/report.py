"""The benchmark's results as readable tables (plain text, also valid Markdown)."""

from __future__ import annotations

from typing import Any

LABELS = {
    "ceiling": "(a) ceiling",
    "naive": "(b) naive job",
    "operator": "(c) operator",
    "operator_small": "(c) operator",
}


def events_per_second(r: dict[str, Any]) -> float:
    """Events posted to the emulator per wall second of the timed part."""
    return r["sent"] / r["wall"] if r["wall"] else 0.0


def cpu_per_million(r: dict[str, Any]) -> float:
    """CPU-seconds of the client's process per million events posted."""
    return r["cpu"] / r["sent"] * 1e6 if r["sent"] else 0.0


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return [_row(header), _row(align), *(_row(r) for r in rows)]


def _clients(source: str, out: dict[str, Any]) -> list[str]:
    rows = []
    for key in ("ceiling", "naive", "operator", "operator_small"):
        if key not in out:
            continue
        r = out[key]
        rows.append(
            [
                f"{LABELS[key]}, {r['rows']:,} rows",
                f"{events_per_second(r):,.0f}",
                f"{r['wall']:.2f}",
                f"{cpu_per_million(r):.1f}",
                f"{r['peak_mb']:.0f}",
                f"{r['success']:,} / {r['failed']:,} / {r['invalid']:,}",
            ]
        )
    header = [source, "events/s", "wall (s)", "CPU-s / M events", "peak RSS (MB)", "ok / refused / rejected"]
    return _table(header, rows)


def _ratios(out: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    c = out.get("operator")
    if c is None:
        return lines
    if "naive" in out:
        b = out["naive"]
        speed = events_per_second(c) / events_per_second(b)
        cpu = cpu_per_million(c) / cpu_per_million(b)
        lines.append(f"- (c)/(b) events/s: {speed:.2f}x; (c)/(b) CPU-s per M events: {cpu:.2f}")
    if "ceiling" in out:
        lines.append(f"- (c)/(a) events/s: {events_per_second(c) / events_per_second(out['ceiling']):.0%}")
    if "operator_small" in out:
        s = out["operator_small"]
        lines.append(
            f"- peak RSS of (c), {s['rows']:,} -> {c['rows']:,} rows: "
            f"{s['peak_mb']:.0f} -> {c['peak_mb']:.0f} MB ({c['peak_mb'] - s['peak_mb']:+.1f} MB)"
        )
    if "mapper" in out:
        m = out["mapper"]
        lines.append(
            f"- mapper alone ({m['api']}, {m['rows']:,} rows in memory, driver {m['driver']}): "
            f"{m['rows'] / m['cpu']:,.0f} rows per CPU-second ({m['cpu']:.2f} CPU-s)"
        )
    return lines


def _latency(out: dict[str, Any]) -> list[str]:
    rows = []
    for key, r in out.items():
        if not key.startswith("latency_"):
            continue
        ideal = r["batches"] * r["latency"] / r["concurrency"]
        r["ideal"] = ideal
        r["of_ideal_wall"] = ideal / r["wall"] if ideal else None
        r["of_ideal_delivery"] = ideal / r["delivery"] if ideal and r["delivery"] else None
        rows.append(
            [
                f"{r['latency'] * 1000:.0f} ms, concurrency {r['concurrency']}",
                f"{r['batches']}",
                f"{ideal:.2f}" if ideal else "-",
                f"{r['wall']:.2f}",
                f"{r['delivery']:.2f}",
                f"{r['of_ideal_wall']:.0%}" if ideal else "-",
                f"{events_per_second(r):,.0f}",
                f"{cpu_per_million(r):.1f}",
            ]
        )
    header = [
        "latency",
        "batches",
        "ideal (s)",
        "wall (s)",
        "delivery (s)",
        "% of ideal",
        "events/s",
        "CPU-s / M events",
    ]
    return _table(header, rows) if rows else []


def render(results: dict[str, Any]) -> str:
    """Every table of a run, with the machine and the load it ran under."""
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}; "
        f"commit {m['commit']}, {m['date']}",
        "Load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *results["load_before"], *results["load_after"]
        ),
        f"Fastest of {results['repeat']} run(s) per client; whole run {results['total_seconds']:.0f} s "
        f"(tables built or reused in {results['build_seconds']:.0f} s)",
    ]
    for source in ("postgres", "sqlite"):
        out = results.get(source)
        if not out:
            continue
        fast = out.get("operator", {}).get("c_fast_path", "?")
        lines += ["", f"### {source} (C fast path: {fast})", ""]
        lines += _clients(source, out)
        lines += ["", *_ratios(out)]
        grid = _latency(out)
        if grid:
            lines += ["", *grid]
    return "\n".join(lines)


def _key_figures(r: dict[str, Any], key: str) -> list[str]:
    if key == "mapper":
        return [f"{r['rows'] / r['cpu']:,.0f} rows/CPU-s", "", ""]
    return [f"{events_per_second(r):,.0f}", f"{cpu_per_million(r):.1f}", f"{r['peak_mb']:.0f}"]


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Two runs side by side (e.g. the baseline and a rewrite): events/s, CPU-s per M events, RSS."""
    lines = [
        f"before: commit {before['machine']['commit']}, {before['machine']['date']}, "
        f"load {before['load_before'][0]:.1f}; after: commit {after['machine']['commit']}, "
        f"{after['machine']['date']}, load {after['load_before'][0]:.1f}"
    ]
    header = ["run", "events/s", "CPU-s / M", "RSS (MB)", "events/s", "CPU-s / M", "RSS (MB)"]
    for source in ("postgres", "sqlite"):
        a, b = before.get(source, {}), after.get(source, {})
        rows = []
        for key in (k for k in b if k in a):
            label = LABELS.get(key, key)
            sizes = {a[key]["rows"], b[key]["rows"]}
            if key in LABELS:
                label = f"{label}, {' / '.join(f'{n:,}' for n in sorted(sizes))} rows"
            elif key == "mapper":
                label = "mapper alone"
            rows.append([label, *_key_figures(a[key], key), *_key_figures(b[key], key)])
        if rows:
            lines += ["", f"### {source}: before | after", "", *_table(header, rows)]
    return "\n".join(lines)
