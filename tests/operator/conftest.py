"""Helpers for end-to-end operator tests: the emulator as enso_default, DAG runs with dag.test()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from enso_provider.testing import EnsoEmulator
from tests.support import emulator_as_default

CUSTOMERS = ["cust_1", "cust_2", "cust_3"] + [f"cust_{n:03d}" for n in range(1, 121)]
TOKEN = "operator-test-token-0042"


@pytest.fixture
def enso(monkeypatch: pytest.MonkeyPatch) -> Iterator[EnsoEmulator]:
    """The emulator, registered as the ``enso_default`` connection, with short retry waits."""
    with emulator_as_default(monkeypatch, CUSTOMERS, TOKEN) as emulator:
        yield emulator
