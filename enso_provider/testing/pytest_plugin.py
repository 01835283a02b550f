"""pytest plugin of the Enso provider (the ``enso_emulator`` fixture lands here)."""

from __future__ import annotations
