"""Shared test set-up: an isolated Airflow home, and database servers that must be there under CI."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest

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

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip when a database server is not running here, but fail under CI, where it must run."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must run these tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (SQLite) in the session's own AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME
