"""The ``enso`` connection form for Airflow 3.0/3.1, which ask the hook (3.2+ read provider info)."""

from __future__ import annotations

from typing import Any

from enso_provider.get_provider_info import CONN_FIELDS, HIDDEN_FIELDS, PLACEHOLDERS, RELABELING


def ui_field_behaviour() -> dict[str, Any]:
    """Relabel and hide the standard fields."""
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": {k: v for k, v in PLACEHOLDERS.items() if k in RELABELING},
    }


def connection_form_widgets() -> dict[str, Any]:
    """The extra fields, as wtforms fields (imported here: only the web server has wtforms)."""
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        kinds = spec["schema"]["type"]
        field = BooleanField if "boolean" in kinds else IntegerField if "integer" in kinds else StringField
        widgets[name] = field(spec["label"], validators=[Optional()], description=spec["description"])
    return widgets
