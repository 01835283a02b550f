"""Fixtures of the replay tests: the emulator as ``enso_default``, the session's DagBag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from enso_provider.testing import EnsoEmulator
from tests.replay.records import CUSTOMERS, TOKEN
from tests.support import emulator_as_default


@pytest.fixture
def enso(monkeypatch: pytest.MonkeyPatch) -> Iterator[EnsoEmulator]:
    """The emulator, registered as the ``enso_default`` connection, with short retry waits."""
    with emulator_as_default(monkeypatch, CUSTOMERS, TOKEN) as emulator:
        yield emulator
