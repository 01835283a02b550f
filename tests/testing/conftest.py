"""Helpers for the emulator's tests: a thin client over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from enso_provider.testing import EnsoEmulator


def event(index: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid event for customer ``cust_1``, with ``fields`` overriding its defaults."""
    base: dict[str, Any] = {
        "CustomerEntityId": "cust_1",
        "metric": "api_calls",
        "value": 1.5,
        "timestamp": "2023-11-07T05:31:56Z",
        "metadata": {"source": "test"},
        "eventId": f"evt_{index}",
        "JobId": "job_1",
    }
    base.update(fields)
    return base


class Api:
    """
    Posts to one emulator with a keep-alive ``requests`` session.

    :param emulator: the running emulator.
    """

    def __init__(self, emulator: EnsoEmulator) -> None:
        self.emulator = emulator
        self.session = requests.Session()

    def post(
        self, path: str, body: Any = None, token: str | None = "test-token", timeout: float = 5, **kw: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        data = body if isinstance(body, bytes | str) else None
        json = None if data is not None else body
        return self.session.post(
            self.emulator.url + path, json=json, data=data, headers=headers, timeout=timeout, **kw
        )

    def batch(self, events: Any, **kw: Any) -> requests.Response:
        """POST ``{"events": events}`` to ``/events/batch``."""
        return self.post("/events/batch", {"events": events}, **kw)


@pytest.fixture
def make_event() -> Any:
    """The :func:`event` builder."""
    return event


@pytest.fixture
def api(enso_emulator: EnsoEmulator) -> Iterator[Api]:
    client = Api(enso_emulator)
    yield client
    client.session.close()
