"""TaskFlow decorators of the Enso provider (``@task.enso_events``)."""

from __future__ import annotations
