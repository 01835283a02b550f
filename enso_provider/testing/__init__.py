"""
A local emulator of the Enso API, for tests, the demo, benchmarks and users' own DAG tests.

It imports neither Airflow nor anything heavy (the standard library and
``orjson``), so it can run in a benchmark process or as a pytest plugin::

    from enso_provider.testing import EnsoEmulator

    with EnsoEmulator(customers=["c1"], token="test-token") as enso:
        ...
"""

from __future__ import annotations

from enso_provider.testing.emulator import EnsoEmulator
from enso_provider.testing.stats import EmulatorStats

__all__ = ["EmulatorStats", "EnsoEmulator"]
