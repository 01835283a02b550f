"""Imports that moved between Airflow 3 releases."""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # pragma: no cover - Airflow 3.0 kept it in airflow.exceptions only
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]

__all__ = ["AirflowFailException"]
