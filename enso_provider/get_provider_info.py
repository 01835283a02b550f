"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

#: Default API base URL, used when the connection's Host is empty.
DEFAULT_BASE_URL = "https://api.getenso.ai"

# The connection form, declared once and used both by provider info (Airflow 3.2+) and by the
# hook's classmethods (Airflow 3.0/3.1, which still ask the hook).
# Schema and port stay readable in URI-form connections (a bare host plus a scheme), but the form asks
# for the whole base URL in Host.
HIDDEN_FIELDS = ["schema", "port"]
RELABELING = {
    "host": "API base URL",
    "login": "Client key (optional)",
    "password": "API token or client secret",
}
PLACEHOLDERS = {
    "host": DEFAULT_BASE_URL,
    "login": "leave empty to use an API token",
    "password": "API token, or the client secret when a client key is set",
    "timeout": "30",
    "connect_timeout": "10",
    "max_retries": "5",
}

#: Extra fields the hook reads: name -> (label, JSON schema, description).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Read timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 30},
        "description": "Seconds to wait for Enso's answer to one request.",
    },
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 10},
        "description": "Seconds to wait for the TCP and TLS handshake.",
    },
    "deadline": {
        "label": "Deadline per attempt (seconds)",
        "schema": {"type": ["number", "null"], "default": None},
        "description": "Most seconds one attempt may take in all (connect, headers, body); "
        "the read timeout when empty.",
    },
    "max_response_bytes": {
        "label": "Largest answer (bytes)",
        "schema": {"type": ["integer", "null"], "default": 4194304},
        "description": "An answer body larger than this fails the attempt unread.",
    },
    "max_retries": {
        "label": "Max retries",
        "schema": {"type": ["integer", "null"], "default": 5},
        "description": "Retries of one request after a network error, a deadline, a 408/425/429, "
        "a 5xx or a malformed answer.",
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Turn off only for a test server with a self-signed certificate.",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": "airflow-provider-enso",
        "name": "Enso",
        "description": "Report usage to `Enso <https://getenso.ai>`__, usage metering and billing, "
        "through its batch events API.",
        "integrations": [
            {
                "integration-name": "Enso",
                "external-doc-url": "https://docs.getenso.ai",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": "Enso",
                "python-modules": ["enso_provider.operators.batch_events", "enso_provider.operators.replay"],
            }
        ],
        "hooks": [{"integration-name": "Enso", "python-modules": ["enso_provider.hooks.enso"]}],
        "task-decorators": [
            {"name": "enso_events", "class-name": "enso_provider.decorators.enso_events.enso_events_task"}
        ],
        "connection-types": [
            {
                "connection-type": "enso",
                "hook-class-name": "enso_provider.hooks.enso.EnsoHook",
                "hook-name": "Enso",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": HIDDEN_FIELDS,
                    "relabeling": RELABELING,
                    "placeholders": PLACEHOLDERS,
                },
            }
        ],
    }
