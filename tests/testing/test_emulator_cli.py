"""``python -m enso_provider.testing``: banner, serving, and a clean exit on SIGINT and SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

BANNER = re.compile(r"Enso emulator listening on (http://127\.0\.0\.1:\d+) \(customers: 2\)\n")
SECRETS = ("demo-token-value", "client-secret-value")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "enso_provider.testing", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def cli() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = start(
        "--port",
        "0",
        "--customers",
        "c1, c2",
        "--token",
        SECRETS[0],
        "--client-key",
        "K",
        "--client-secret",
        SECRETS[1],
        "--latency",
        "0",
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()  # printed and flushed once the port is bound
    match = BANNER.fullmatch(banner)
    assert match, f"unexpected banner {banner!r}"
    yield proc, match.group(1)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_serves_and_exits_cleanly(
    cli: tuple[subprocess.Popen[str], str], make_event: Any, sig: int
) -> None:
    proc, url = cli
    response = requests.post(
        f"{url}/events/batch",
        json={"events": [make_event(0, CustomerEntityId="c2")]},
        headers={"Authorization": f"Bearer {SECRETS[0]}"},
        timeout=5,
    )
    assert response.json()["data"]["summary"] == {"success": 1, "failed": 0, "total": 1}
    login = requests.post(
        f"{url}/auth/system-login", json={"clientKey": "K", "clientSecret": SECRETS[1]}, timeout=5
    )
    assert login.status_code == 200
    assert requests.get(f"{url}/_emulator/stats", timeout=5).json()["events_stored"] == 1

    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err
    for secret in SECRETS:
        assert secret not in out
        assert secret not in err


def test_cli_no_store_keeps_counts_only(make_event: Any) -> None:
    proc = start("--port", "0", "--customers", "c1", "--token", "t", "--no-store")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("listening on ", 1)[1].split()[0]
        body = {"events": [make_event(0, CustomerEntityId="c1")]}
        requests.post(f"{url}/events/batch", json=body, headers={"Authorization": "Bearer t"}, timeout=5)
        assert requests.get(f"{url}/_emulator/events", timeout=5).json() == {"count": 0, "events": []}
        assert requests.get(f"{url}/_emulator/stats", timeout=5).json()["events_stored"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_cli_port_in_use_is_a_clean_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = start("--port", str(taken.getsockname()[1]))
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert "cannot listen" in err
    assert "Traceback" not in err


def test_cli_credentials_must_come_in_pairs() -> None:
    proc = start("--port", "0", "--client-key", "K")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "go together" in err
