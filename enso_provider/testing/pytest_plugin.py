"""
pytest plugin of the Enso provider: the ``enso_emulator`` fixture.

Opt-in: installing the provider loads nothing into pytest. A project enables
it in its top-level ``conftest.py``::

    pytest_plugins = ["enso_provider.testing.pytest_plugin"]

It imports only the emulator (standard library and ``orjson``), never Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from enso_provider.testing.emulator import EnsoEmulator

#: What ``enso_emulator`` is built with unless the test's marker says otherwise.
DEFAULTS: dict[str, Any] = {"customers": ["cust_1", "cust_2", "cust_3"], "token": "test-token"}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``enso_emulator`` marker (projects may run with ``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        "enso_emulator(**kwargs): arguments of the EnsoEmulator that the enso_emulator fixture "
        "starts (customers, token, client_key, client_secret, token_ttl, store_events, latency, ...)",
    )


@pytest.fixture
def enso_emulator(request: pytest.FixtureRequest) -> Iterator[EnsoEmulator]:
    """
    A running :class:`~enso_provider.testing.EnsoEmulator`, stopped after the test.

    Customers ``cust_1``, ``cust_2``, ``cust_3`` and the token ``test-token``
    unless the test says otherwise with
    ``@pytest.mark.enso_emulator(customers=[...], token_ttl=..., ...)``.
    """
    kwargs = dict(DEFAULTS)
    marker = request.node.get_closest_marker("enso_emulator")
    if marker is not None:
        kwargs.update(marker.kwargs)
    with EnsoEmulator(**kwargs) as emulator:
        yield emulator


@pytest.fixture
def enso_connection(enso_emulator: EnsoEmulator, monkeypatch: pytest.MonkeyPatch) -> EnsoEmulator:
    """
    The ``enso_emulator``, with ``AIRFLOW_CONN_ENSO_DEFAULT`` pointing at it for the test.

    Token auth by default; with client credentials in the marker (and no token),
    the connection uses them.
    """
    auth = "token" if enso_emulator.has_token else "client_credentials"
    for name, value in enso_emulator.env(auth=auth).items():
        monkeypatch.setenv(name, value)
    return enso_emulator
