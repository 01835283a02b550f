"""Run a DAG with dag.test() and collect its task states and return values (used by every suite)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pendulum

DEFAULT_LOGICAL_DATE = pendulum.datetime(2024, 5, 1, 11, tz="UTC")


@dataclass
class RunResult:
    state: str
    run_id: str
    task_states: dict[tuple[str, int], str]
    xcoms: dict[tuple[str, int], Any]

    def succeeded(self) -> bool:
        return self.state.endswith("success")

    def report(self, task_id: str, map_index: int = -1) -> Any:
        return self.xcoms.get((task_id, map_index))


def run_dag(
    dagbag: Any,
    dag_id: str,
    *,
    logical_date: datetime = DEFAULT_LOGICAL_DATE,
    conf: dict[str, Any] | None = None,
) -> RunResult:
    """Run one DAG with ``dag.test()`` and collect its task states and return values."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = dagbag.get_dag(dag_id)
    assert dag is not None, dag_id
    run = dag.test(logical_date=logical_date, run_conf=conf)
    with create_session() as session:
        tis = run.get_task_instances(session=session)
        states = {(ti.task_id, ti.map_index): str(ti.state) for ti in tis}
        query = XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")
        rows = session.scalars(query).all()
        xcoms = {(x.task_id, x.map_index): XComModel.deserialize_value(x) for x in rows}
    return RunResult(state=str(run.state), run_id=run.run_id, task_states=states, xcoms=xcoms)
