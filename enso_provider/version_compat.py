"""
The Airflow version this runs on, and every name that moved between Airflow 3.0 and 3.3.

The rest of the package (and the example DAGs, which users copy) imports a moved name from here and
nowhere else, so supporting one more release is a change to this module only. Each shim names the
release from which the new location exists; the old one is kept until the lowest supported release
(Airflow 3.1) has the new one. Names that exist unchanged in every supported release
(``airflow.sdk.BaseOperator``, ``DAG``, ``task``, ``Connection``, ``ObjectStoragePath``, ...) are
imported where they are used.

Airflow 3.0 is not supported: its ``ObjectStoragePath`` has no ``conn_id`` and opens local files as
objects that cannot be iterated by line (the replay operator reads them so), and its
``DecoratedOperator.execute`` calls ``self.xcom_push``, which its task-SDK ``BaseOperator`` lacks
(``@task.enso_events`` fails on every run).
"""

from __future__ import annotations

from airflow import __version__ as _airflow_version

# airflow.sdk.BaseHook and airflow.sdk.definitions.context.context_merge from 3.1, the lowest supported
# release (3.0 had them in airflow.hooks.base and airflow.utils.context): here so importers need not care.
from airflow.sdk import BaseHook
from airflow.sdk.definitions.context import context_merge
from packaging.version import Version


def _base_version(version: str) -> tuple[int, int, int]:
    """``(major, minor, micro)`` of an Airflow version string, pre-releases and local tags ignored."""
    release = (*Version(version).release, 0, 0)
    return release[0], release[1], release[2]


AIRFLOW_VERSION = _base_version(_airflow_version)
AIRFLOW_V_3_1_PLUS = AIRFLOW_VERSION >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS = AIRFLOW_VERSION >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= (3, 3, 0)

# airflow.sdk.CronDataIntervalTimetable from 3.2; 3.1 has it in airflow.timetables.interval.
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk import CronDataIntervalTimetable
else:  # pragma: no cover - Airflow 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef,assignment,attr-defined]

# airflow.sdk.bases.decorator.determine_kwargs from 3.2; 3.1 has it in airflow.utils.operator_helpers
# (deprecated there from 3.2).
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.bases.decorator import determine_kwargs
else:  # pragma: no cover - Airflow 3.1
    from airflow.utils.operator_helpers import determine_kwargs  # type: ignore[no-redef,assignment,attr-defined]

# airflow.sdk.exceptions.AirflowFailException / AirflowNotFoundException from 3.2; 3.1 has them
# in airflow.exceptions only (deprecated there from 3.2).
if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
else:  # pragma: no cover - Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,assignment,attr-defined]
        AirflowFailException,
        AirflowNotFoundException,
    )

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowFailException",
    "AirflowNotFoundException",
    "BaseHook",
    "CronDataIntervalTimetable",
    "context_merge",
    "determine_kwargs",
]
