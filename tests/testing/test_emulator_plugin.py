"""The pytest plugin: the ``enso_emulator`` fixture, its marker, and a light import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from enso_provider.testing import EnsoEmulator


def test_fixture_gives_a_running_emulator(enso_emulator: EnsoEmulator, make_event: Any) -> None:
    assert enso_emulator.running
    assert enso_emulator.customers == {"cust_1", "cust_2", "cust_3"}
    response = requests.post(
        f"{enso_emulator.url}/events/batch",
        json={"events": [make_event(0, CustomerEntityId="cust_3")]},
        headers={"Authorization": "Bearer test-token"},
        timeout=5,
    )
    assert response.status_code == 200
    assert len(enso_emulator.events) == 1


@pytest.mark.enso_emulator(customers=["acme"], token=None, client_key="k", client_secret="s", token_ttl=5)
def test_marker_customises_the_fixture(enso_emulator: EnsoEmulator) -> None:
    assert enso_emulator.customers == {"acme"}
    assert not enso_emulator.has_token
    assert enso_emulator.token_ttl == 5
    login = requests.post(
        f"{enso_emulator.url}/auth/system-login", json={"clientKey": "k", "clientSecret": "s"}, timeout=5
    )
    assert login.status_code == 200


def test_enso_connection_sets_the_airflow_connection(enso_connection: EnsoEmulator) -> None:
    conn = orjson.loads(os.environ["AIRFLOW_CONN_ENSO_DEFAULT"])
    assert conn == {"conn_type": "enso", "host": enso_connection.url, "password": "test-token"}


@pytest.mark.enso_emulator(token=None, client_key="k", client_secret="s")
def test_enso_connection_uses_client_credentials_without_a_token(enso_connection: EnsoEmulator) -> None:
    conn = orjson.loads(os.environ["AIRFLOW_CONN_ENSO_DEFAULT"])
    assert (conn["login"], conn["password"]) == ("k", "s")


def test_marker_is_registered(pytestconfig: pytest.Config) -> None:
    assert any(line.startswith("enso_emulator(") for line in pytestconfig.getini("markers"))


def test_importing_the_plugin_and_emulator_does_not_import_airflow() -> None:
    code = (
        "import sys, enso_provider.testing, enso_provider.testing.pytest_plugin;"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'airflow', 'requests', 'pendulum'});"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _users_project(tmp_path: Path, conftest: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pytest, urllib.request

            @pytest.mark.enso_emulator(customers=["u1"])
            def test_it(enso_emulator):
                with urllib.request.urlopen(enso_emulator.url + "/_emulator/stats") as response:
                    assert response.status == 200
                assert enso_emulator.customers == {"u1"}
            """
        )
    )
    if conftest is not None:
        (tmp_path / "conftest.py").write_text(conftest)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--strict-markers", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fixture_works_in_a_users_project_that_opts_in(tmp_path: Path) -> None:
    result = _users_project(tmp_path, 'pytest_plugins = ["enso_provider.testing.pytest_plugin"]\n')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_installing_the_provider_loads_no_plugin_into_pytest(tmp_path: Path) -> None:
    # Without the opt-in, neither the fixture nor the marker exist: nothing was loaded.
    result = _users_project(tmp_path, None)
    assert result.returncode != 0
    assert "'enso_emulator' not found" in result.stdout + result.stderr
