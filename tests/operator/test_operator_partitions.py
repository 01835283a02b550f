"""
Mapped partitions are named by what they are, not where they sit: reversing, adding or removing
partitions and re-running the interval stores nothing new (real dag.test() with .expand).
"""

from __future__ import annotations

import pytest

from tests.operator.dagrun import run_dag

ORDERS = [
    ["cust_3", "cust_2", "cust_1"],  # reversed
    ["cust_2", "cust_3"],  # one removed (and the rest moved)
    ["cust_3", "cust_1", "cust_2", "cust_1"],  # reordered, and a partition added (a repeat of one)
]


@pytest.mark.parametrize("dag_id", ["enso_test_partitions_decorator", "enso_test_partitions_operator"])
def test_reordered_added_and_removed_partitions_store_nothing_new(dagbag, enso, dag_id: str) -> None:
    first = run_dag(dagbag, dag_id)
    assert first.succeeded()
    stored = sorted(e["eventId"] for e in enso.events)
    assert len(stored) == 20
    for order in ORDERS:
        again = run_dag(dagbag, dag_id, conf={"customers": order})
        assert again.succeeded()
        assert sorted(e["eventId"] for e in enso.events) == stored, order
    assert enso.stats["duplicates"] == 20 + 13 + 27


def test_a_partition_that_is_not_json_is_refused_with_a_clear_error() -> None:
    from types import SimpleNamespace

    from enso_provider.operators.batch_events import run_namespace
    from enso_provider.version_compat import AirflowFailException

    ti = SimpleNamespace(dag_id="d", task_id="t", map_index=0)
    context = {"ti": ti, "run_id": "r", "data_interval_start": None, "data_interval_end": None}
    with pytest.raises(AirflowFailException, match="JSON values"):
        run_namespace(context, lambda: {"parameters": {"at": object()}})  # type: ignore[arg-type]
    unmapped = {**context, "ti": SimpleNamespace(dag_id="d", task_id="t", map_index=-1)}
    assert run_namespace(unmapped, lambda: {"parameters": {"at": object()}}) == "d|t|run:r"  # type: ignore[arg-type]
