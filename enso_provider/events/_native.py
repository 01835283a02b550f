"""
The optional C fast path of the mapper, :mod:`enso_provider.events._speedups`, or None.

It is compiled at install time where a C compiler is present, and is never required: the
pure-Python code is the reference and gives the same bytes. ``ENSO_PROVIDER_PURE_PYTHON=1``
in the environment switches it off (for comparing the two, or to rule it out).
"""

from __future__ import annotations

import os
from types import ModuleType

speedups: ModuleType | None
try:
    from enso_provider.events import _speedups as speedups
except ImportError:  # pragma: no cover - no compiler at install time
    speedups = None
if os.environ.get("ENSO_PROVIDER_PURE_PYTHON", "").strip() not in ("", "0"):
    speedups = None
