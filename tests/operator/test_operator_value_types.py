"""A warehouse column that changes type (integer, float, numeric, text) re-bills nothing on a re-run."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest

from enso_provider.operators.batch_events import EnsoBatchEventsOperator

FORMS = [lambda n: n, float, Decimal, lambda n: Decimal(n).quantize(Decimal("0.000001")), lambda n: f"{n}.00"]


def _context() -> dict[str, Any]:
    start = pendulum.datetime(2024, 5, 1, 10, tz="UTC")
    ti = SimpleNamespace(dag_id="types", task_id="send", map_index=-1)
    return {
        "ti": ti,
        "run_id": "scheduled__1",
        "data_interval_start": start,
        "data_interval_end": start.add(hours=1),
    }


@pytest.mark.parametrize("form", range(1, len(FORMS)))
def test_the_same_values_in_another_type_store_nothing_new(enso, form: int) -> None:
    def rows(make: Any) -> list[dict[str, Any]]:
        return [
            {
                "CustomerEntityId": f"cust_{n % 3 + 1}",
                "metric": "api_calls",
                "value": make(n),
                "timestamp": "2024-05-01T10:00:00Z",
            }
            for n in range(1, 31)
        ]

    first = EnsoBatchEventsOperator(task_id="send", events=rows(FORMS[0])).execute(_context())
    again = EnsoBatchEventsOperator(task_id="send", events=rows(FORMS[form])).execute(_context())
    assert first["success"] == again["success"] == 30
    assert len(enso.events) == 30
    assert enso.stats["duplicates"] == 30
