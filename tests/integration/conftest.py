"""Fixtures of the integration tests: the emulator as ``enso_default``, the decorator DAGs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enso_provider.testing import EnsoEmulator
from tests.support import emulator_as_default

CUSTOMERS = ["cust_1", "cust_2", "cust_3"]
TOKEN = "integration-test-token-7731"


@pytest.fixture
def enso(monkeypatch: pytest.MonkeyPatch) -> Iterator[EnsoEmulator]:
    """The emulator, registered as the ``enso_default`` connection, with short retry waits."""
    with emulator_as_default(monkeypatch, CUSTOMERS, TOKEN) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def decorator_dagbag(airflow_db: Path) -> Any:
    """The decorator test DAGs, parsed from the session's dags folder (where tests/conftest.py links them)."""
    from tests.airflow_compat import DagBag

    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "enso_test_decorator_dags.py"
    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}
    return bag
