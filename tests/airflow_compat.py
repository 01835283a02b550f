"""Airflow names the tests use that moved between releases (the package's own are in version_compat)."""

from __future__ import annotations

from enso_provider.version_compat import AIRFLOW_V_3_2_PLUS

# airflow.dag_processing.dagbag.DagBag from 3.2; 3.1 has it in airflow.models.dagbag only
# (deprecated there from 3.2).
if AIRFLOW_V_3_2_PLUS:
    from airflow.dag_processing.dagbag import DagBag
else:  # pragma: no cover - Airflow 3.1
    from airflow.models.dagbag import DagBag  # type: ignore[no-redef,assignment,attr-defined]

__all__ = ["DagBag"]
