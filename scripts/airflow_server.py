"""
A real Airflow 3 API server on 127.0.0.1, in its own AIRFLOW_HOME, for tests and screenshots.

``AirflowApiServer`` migrates a fresh SQLite metadata database (``airflow db migrate``), starts
``airflow api-server`` as a subprocess on a free port with the simple auth manager, waits until it
answers (bounded by a deadline, polling), and stops it cleanly (SIGTERM, wait, SIGKILL on timeout).
Nothing is shared with the caller's Airflow configuration: every ``AIRFLOW*`` variable of the
calling process is dropped from the server's environment.

Run it by hand to look around (``python scripts/airflow_server.py``, Ctrl-C to stop).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

ADMIN = "admin"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowApiServerError(RuntimeError):
    """The server did not start, or a command it needs failed; carries the log's tail."""


class AirflowApiServer:
    """
    ``airflow api-server`` in a subprocess, with its own home and metadata database.

    :param home: the AIRFLOW_HOME to use (created; the database, logs and configuration live there).
    :param all_admins: ``True``: everyone is an admin without logging in (the UI needs no login, the
        API no token); ``False``: one user ``admin`` with a random password, and a JWT from
        ``POST /auth/token`` for the API.
    :param dags_folder: the ``[core] dags_folder`` (default: an empty folder in ``home``).
    :param env: more environment variables for every ``airflow`` command (e.g. ``AIRFLOW_CONN_*``).
    :param port: the port to listen on (default: a free one).
    :param start_timeout: seconds to wait for the server to answer.
    """

    def __init__(
        self,
        home: Path,
        *,
        all_admins: bool = False,
        dags_folder: Path | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.home = Path(home)
        self.all_admins = all_admins
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.password = secrets.token_urlsafe(12)
        self.dags_folder = dags_folder or self.home / "dags"
        self.log_path = self.home / "api-server.log"  # _spawn names the log after the component
        self._extra_env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._components: list[subprocess.Popen[bytes]] = []
        self._token: str | None = None

    # -- environment -------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment of every ``airflow`` command run for this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": str(self.all_admins),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                # SQLite serialises writers: a worker's call may wait seconds while the scheduler writes,
                # and a retried call after a client-side timeout can be refused (a connection test's
                # credentials are handed out once). Wait instead.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                # The OpenLineage listener (installed with the dev extra) stays off.
                "OPENLINEAGE_DISABLED": "true",
            }
        )
        env.update(self._extra_env)
        return env

    @property
    def _jwt_secret(self) -> str:
        secret_file = self.home / ".jwt_secret"
        if not secret_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secrets.token_urlsafe(32))
        return secret_file.read_text()

    def airflow(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command against this server's home; raise with its output on failure."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            output = _tail(result.stdout + result.stderr)
            raise AirflowApiServerError(f"airflow {' '.join(args)} exited {result.returncode}:\n{output}")
        return result

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> AirflowApiServer:
        """Migrate the metadata database, start the server and wait until it answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN: self.password}))
        self.airflow("db", "migrate")
        self._process = self._spawn("api-server", "-H", "127.0.0.1", "-p", str(self.port))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start_component(self, component: str, *args: str) -> subprocess.Popen[bytes]:
        """
        Start another Airflow component on this home, e.g. ``scheduler`` or ``dag-processor``.

        It is stopped by :meth:`stop`, before the server. Its output goes to ``<home>/<component>.log``.

        :param component: the ``airflow`` sub-command.
        :param args: its arguments.
        """
        process = self._spawn(component, *args)
        self._components.append(process)
        return process

    def _spawn(self, component: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.home / f"{component}.log").open("ab")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "airflow", component, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: stopping it signals it and the workers it forks, nothing else.
                start_new_session=True,
            )
        finally:
            log.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        delay = 0.1
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise AirflowApiServerError(
                    f"airflow api-server exited with {self._process.returncode} before answering:\n"
                    f"{self.log_tail()}"
                )
            try:
                response = requests.get(f"{self.url}/api/v2/monitor/health", timeout=2)
                if response.status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() >= deadline:
                raise AirflowApiServerError(
                    f"airflow api-server did not answer on {self.url} within {self.start_timeout:.0f}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the other components, then the server: SIGTERM, wait, SIGKILL if still there."""
        components, self._components = self._components, []
        for process in reversed(components):
            _terminate(process, timeout)
        server, self._process = self._process, None
        if server is not None:
            _terminate(server, timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> AirflowApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_for_scheduler(self, timeout: float = 60.0) -> None:
        """Wait until ``/api/v2/monitor/health`` reports a healthy scheduler (its heartbeat is recent)."""
        deadline = time.monotonic() + timeout
        while True:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            if (health.get("scheduler") or {}).get("status") == "healthy":
                return
            if time.monotonic() >= deadline:
                raise AirflowApiServerError(f"no healthy scheduler after {timeout:.0f}s: {health}")
            time.sleep(0.5)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log (stdout and stderr)."""
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no log)"

    # -- HTTP ---------------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the API: ``POST /auth/token`` with the admin's password (``GET`` with all-admins)."""
        if self._token is None:
            if self.all_admins:
                response = requests.get(f"{self.url}/auth/token", timeout=10)
            else:
                response = requests.post(
                    f"{self.url}/auth/token", json={"username": ADMIN, "password": self.password}, timeout=10
                )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """One request to the server (``path`` from the root, e.g. ``/api/v2/connections``)."""
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.url}{path}", headers=headers, **kwargs)


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM to the process's group, wait, SIGKILL on timeout (the group is the one _spawn made)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def main() -> int:
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started in the background (SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    home = Path(tempfile.mkdtemp(prefix="enso-airflow-server-"))
    with AirflowApiServer(home, all_admins=True, port=int(os.environ.get("PORT", "0")) or None) as server:
        print(f"Airflow API server on {server.url} (AIRFLOW_HOME {home}); Ctrl-C to stop.", flush=True)
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
