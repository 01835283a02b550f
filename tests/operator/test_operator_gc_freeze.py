"""The run keeps the task process's older objects out of the collector's passes, and gives them back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from enso_provider.operators.base import older_objects_frozen


@pytest.fixture(autouse=True)
def _nothing_frozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_are_frozen_during_the_run_and_given_back_after() -> None:
    older = [object() for _ in range(10)]  # noqa: F841  (held: it exists before the run)
    with older_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_runs_in_threads_share_one_freeze_given_back_by_the_last() -> None:
    inside, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with older_objects_frozen():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_run)
    with older_objects_frozen():
        thread.start()
        assert inside.wait(10)
    assert gc.get_freeze_count() > 0, "the other run is still going: its objects stay frozen"
    release.set()
    thread.join(10)
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_by_someone_else_is_left_as_it_is() -> None:
    gc.freeze()  # as LocalExecutor's forked workers inherit it
    frozen = gc.get_freeze_count()
    with older_objects_frozen():
        pass
    assert gc.get_freeze_count() == frozen


def test_nothing_is_done_when_the_collector_is_off() -> None:
    gc.disable()
    try:
        with older_objects_frozen():
            assert gc.get_freeze_count() == 0
    finally:
        gc.enable()
