"""The provider as Airflow sees it: provider info, ProvidersManager, the hook built by a connection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from enso_provider.get_provider_info import get_provider_info
from enso_provider.hooks.enso import EnsoHook


def test_provider_info_validates_against_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_is_the_distribution_name():
    from importlib.metadata import distribution

    dist = distribution("airflow-provider-enso")
    assert get_provider_info()["package-name"] == dist.metadata["Name"]
    entry_points = [ep for ep in dist.entry_points if ep.group == "apache_airflow_provider"]
    assert [ep.value for ep in entry_points] == ["enso_provider.get_provider_info:get_provider_info"]


def test_providers_manager_lists_the_hook_and_its_form():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-enso" in pm.providers
    hook = pm.hooks["enso"]
    assert hook is not None
    assert hook.hook_class_name == "enso_provider.hooks.enso.EnsoHook"
    assert hook.connection_id_attribute_name == "enso_conn_id"
    assert hook.hook_name == "Enso"
    assert hook.connection_testable

    behaviour = pm.field_behaviours["enso"]
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    assert behaviour["relabeling"] == {
        "host": "API base URL",
        "login": "Client key (optional)",
        "password": "API token or client secret",
    }
    assert behaviour["placeholders"]["host"] == "https://api.getenso.ai"

    widgets = {k: v for k, v in pm.connection_form_widgets.items() if k.startswith("extra__enso__")}
    expected = {"extra__enso__timeout", "extra__enso__connect_timeout", "extra__enso__max_retries"}
    assert set(widgets) >= expected
    assert _label(widgets["extra__enso__timeout"].field) == "Read timeout (seconds)"


def _label(field: Any) -> Any:
    """A form field's label: 3.2+ keeps provider info's ``conn-fields`` entry, 3.0/3.1 a wtforms field."""
    if isinstance(field, dict):
        return field["schema"]["title"]
    # An UnboundField: the field class with the arguments the hook gave it (the label first).
    return field.kwargs.get("label", field.args[0] if field.args else None)


def test_airflow_providers_list_shows_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    # Log lines may precede the JSON document on stdout.
    document = next(line for line in out.splitlines() if line.startswith("[{"))
    names = [p["package_name"] for p in json.loads(document)]
    assert "airflow-provider-enso" in names


def test_legacy_form_classmethods_match_provider_info():
    info = get_provider_info()["connection-types"][0]
    behaviour = EnsoHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == info["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == info["ui-field-behaviour"]["relabeling"]
    pytest.importorskip("wtforms")
    widgets = EnsoHook.get_connection_form_widgets()
    assert set(widgets) == set(info["conn-fields"])


def test_connection_builds_the_hook_as_the_test_endpoint_does():
    from airflow.sdk import Connection

    conn = Connection(conn_id="my_enso", conn_type="enso", host="http://127.0.0.1:1", password="t")
    hook = conn.get_hook()
    assert isinstance(hook, EnsoHook)
    assert hook.enso_conn_id == "my_enso"


def test_hook_init_does_no_lookup(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("connection looked up in __init__")

    monkeypatch.setattr(EnsoHook, "get_connection", boom)
    hook = EnsoHook(enso_conn_id="missing")
    assert repr(hook) == "EnsoHook(enso_conn_id='missing')"
