"""Reading the golden eventId vectors: typed values are tagged (``$decimal``, ``$float``, ``$datetime``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from enso_provider.events import Event, EventMapper


def decode_value(value: Any) -> Any:
    """A vector's value as the mapper receives it."""
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), *_ = value.items()
        if tag == "$decimal":
            return Decimal(text)
        if tag == "$float":
            return float(text)
        if tag == "$datetime":
            return datetime.fromisoformat(text)
    if isinstance(value, dict):
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def decode_row(row: Any) -> Any:
    """A vector's row: a tuple (with columns) or a dict."""
    return tuple(decode_value(v) for v in row) if isinstance(row, list) else decode_value(row)


def run_vectors(runs: list[dict[str, Any]], *, record: bool = False) -> list[dict[str, Any]]:
    """Map each run's rows with a fresh mapper; ``[eventId, data]`` per row (or a rejection code)."""
    out = []
    for run in runs:
        mapper = EventMapper(namespace=run["namespace"], **decode_value(run["options"]))
        rows = [decode_row(row) for row in run["rows"]]
        got: list[Any] = []
        for item in mapper.map(rows, run.get("columns")):
            if isinstance(item, Event):
                got.append([item.event_id, item.data.decode()])
            else:
                got.append(["rejected", item.code])
        out.append({**run, "expected": got} if record else {"name": run["name"], "expected": got})
    return out
