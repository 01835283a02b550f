"""Shared test set-up: an isolated Airflow home, its metadata database, and the DAGs of the session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

# The provider's pytest plugin is opt-in (installing the provider loads nothing into pytest): the
# emulator's own tests use its enso_emulator and enso_connection fixtures.
pytest_plugins = ["enso_provider.testing.pytest_plugin"]

# Airflow reads its configuration at import: isolate it before any test module imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="enso-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
_REPO = Path(__file__).resolve().parents[1]
# dag.test() needs its DAG inside the dags folder: the example DAGs and the tests' own DAGs, linked
# into one folder of this session's Airflow home.
_DAGS = _AIRFLOW_HOME / "dags"
_DAGS.mkdir()
for _source in [*(_REPO / "example_dags").iterdir(), *(_REPO / "tests" / "dags").glob("*.py")]:
    if _source.name != "__pycache__":
        (_DAGS / _source.name).symlink_to(_source)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS)
os.environ["ENSO_REJECTED_RECORDS_BASE"] = f"file://{_AIRFLOW_HOME / 'rejected'}"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite) in the session's own AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path) -> Any:
    """Every DAG of the session's dags folder (the example DAGs and tests/dags), parsed once."""
    from tests.airflow_compat import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag
