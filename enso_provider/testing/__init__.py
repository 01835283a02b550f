"""A local emulator of the Enso API, for tests, the demo and benchmarks (no Airflow import)."""

from __future__ import annotations
