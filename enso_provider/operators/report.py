"""The delivery report as a readable table for the task log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_ROWS = (
    ("total", "{unit} read"),
    ("success", "accepted by Enso"),
    ("failed", "refused by Enso"),
    ("invalid", "rejected locally (never sent)"),
    ("sent", "events sent"),
    ("batches", "requests"),
)


def format_report(report: Mapping[str, Any], *, unit: str = "rows") -> str:
    """
    Render the report's counts, its error codes and the rejected-records path as a small table.

    :param report: the delivery report, as a dict.
    :param unit: what the input is made of: ``"rows"`` (a source's rows) or ``"records"`` (a replay's).
    """
    title = "Enso delivery report" + (" (dry run: nothing was posted)" if report.get("dry_run") else "")
    lines = [title, "-" * len(title)]
    labels = [(key, label.format(unit=unit)) for key, label in _ROWS]
    width = max(len(label) for _, label in labels)
    for key, label in labels:
        lines.append(f"{label:<{width}}  {report.get(key, 0):>12,}")
    errors = report.get("errors") or {}
    if errors:
        lines.append("errors by code:")
        for code, count in errors.items():
            lines.append(f"  {code!s:<{width - 2}}  {count:>12,}")
    if report.get("rejected_records_path"):
        lines.append(f"rejected records: {report['rejected_records_path']}")
    if report.get("elapsed_seconds"):
        rate = report.get("total", 0) / report["elapsed_seconds"]
        lines.append(f"elapsed: {report['elapsed_seconds']:.2f}s ({rate:,.0f} {unit}/s)")
    return "\n".join(lines)


def log_report(log: Any, report: Mapping[str, Any], *, level: str = "info", unit: str = "rows") -> None:
    """Write the report's table to the task log, a line at a time (the log prefixes each line)."""
    emit = getattr(log, level)
    for line in format_report(report, unit=unit).splitlines():
        emit("%s", line)
