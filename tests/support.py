"""Helpers shared by the tests (no side effects at import, unlike conftest.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

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


@contextmanager
def emulator_as_default(
    monkeypatch: pytest.MonkeyPatch, customers: Iterable[str], token: str
) -> Iterator[Any]:
    """An emulator registered as the ``enso_default`` connection, with short retry waits."""
    from enso_provider.testing import EnsoEmulator

    with EnsoEmulator(customers=customers, token=token) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ENSO_DEFAULT",
            emulator.connection_json(timeout=5, backoff_factor=0.01, backoff_max=0.05),
        )
        yield emulator
