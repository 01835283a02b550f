"""
Fixtures of the reliability suite.

Every test here is also a secrets check: logs are recorded raw at DEBUG, stdout and stderr are
captured, and whatever the test hands to ``secret_watch`` is scanned; a single sighting of the API
token or the client secret fails the test. The session's tally is printed at the end.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

import enso_provider.hooks.enso as enso_hook_module
from tests.reliability.reliability_kit import (
    FAST_RETRIES,
    TALLY,
    RecordingDelivery,
    ReliabilityEmulator,
    start_emulator,
)
from tests.reliability.secret_watch import SESSION, SecretWatch, ensure_recording, raw_debug_logs


@pytest.fixture(autouse=True)
def secret_watch(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[SecretWatch]:
    """Scan everything the test produced for the two secrets; any sighting fails the test."""
    watch = SecretWatch()
    caplog.set_level(logging.DEBUG)
    with raw_debug_logs(watch):
        yield watch
        ensure_recording(watch)
    out, err = capsys.readouterr()
    watch.add(caplog.text, out, err)
    SESSION.tests += 1
    SESSION.texts += len(watch.texts)
    SESSION.characters += sum(len(t) for t in watch.texts)
    sightings = watch.sightings()
    SESSION.sightings += sightings
    SESSION.mask_requests += watch.mask_requests
    # Re-print what was captured so that pytest still shows it for a failing test.
    print(out, end="")
    assert sightings == 0, f"{sightings} sighting(s) of a secret in this test's logs, output or values"


@pytest.fixture(autouse=True)
def recording_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep each run's Delivery so that a run that raised still shows its (partial) report."""
    monkeypatch.setattr(enso_hook_module, "Delivery", RecordingDelivery)


@pytest.fixture(scope="module")
def shared_enso() -> Iterator[ReliabilityEmulator]:
    """
    One emulator per module, reset by ``enso`` before each test.

    The emulator runs in this process, and the timeout faults give up on an answer after 0.5 s. A
    full collection over everything the whole test session has kept (~850k objects) holds the
    GIL for up to 0.7 s (measured), so an answer could miss its deadline for no fault of the code
    under test. What exists before the module is frozen out of the collector for its duration.
    """
    gc.collect()
    gc.freeze()
    emulator = start_emulator()
    try:
        yield emulator
    finally:
        emulator.stop()
        gc.unfreeze()


@pytest.fixture
def enso(shared_enso: ReliabilityEmulator, monkeypatch: pytest.MonkeyPatch) -> ReliabilityEmulator:
    """The module's emulator, emptied, as ``enso_default`` (API token, fast retries)."""
    shared_enso.quiesce()
    shared_enso.reset()
    monkeypatch.setenv("AIRFLOW_CONN_ENSO_DEFAULT", shared_enso.connection_json(**FAST_RETRIES))
    return shared_enso


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, count in sorted(TALLY.items()):
        terminalreporter.write_line(f"enso reliability: {name}: {count}")
    if SESSION.tests:
        terminalreporter.write_line(
            f"enso secrets: {SESSION.sightings} sightings in {SESSION.texts} texts "
            f"({SESSION.characters:,} characters) from {SESSION.tests} reliability tests; "
            f"{SESSION.mask_requests} of Airflow's own dag.test MaskSecret debug lines set apart"
        )


# dag.test() needs the metadata database; the DAG bag is shared by the dag.test modules.
@pytest.fixture(scope="session")
def reliability_dagbag(airflow_db: Any) -> Any:
    from tests.airflow_compat import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag
