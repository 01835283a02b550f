"""Fixtures of the replay tests: the emulator as ``enso_default``, the session's DagBag."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from enso_provider.testing import EnsoEmulator
from tests.replay.records import CUSTOMERS, TOKEN


@pytest.fixture
def enso(monkeypatch: pytest.MonkeyPatch) -> Iterator[EnsoEmulator]:
    """The emulator, registered as the ``enso_default`` connection, with short retry waits."""
    with EnsoEmulator(customers=CUSTOMERS, token=TOKEN) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ENSO_DEFAULT",
            emulator.connection_json(timeout=5, backoff_factor=0.01, backoff_max=0.05),
        )
        yield emulator


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag
