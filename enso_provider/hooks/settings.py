"""What an ``enso`` connection says, read and checked once: URL, credentials, deadlines, retries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from enso_provider.exceptions import EnsoConfigError
from enso_provider.get_provider_info import DEFAULT_BASE_URL
from enso_provider.hooks.retry import RetryPolicy
from enso_provider.hooks.secrets import credential_problem

if TYPE_CHECKING:
    from airflow.sdk import Connection

#: Largest answer body read, in bytes: a batch answer lists at most one failed record per event.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class EnsoSettings:
    """
    A connection's settings, resolved once.

    :param base_url: the API base URL (scheme, host, optional port and path; never userinfo).
    :param token: the static API token, or None with client credentials.
    :param client_key: the client key of client credentials.
    :param client_secret: the client secret of client credentials.
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds of silence tolerated while reading an answer.
    :param deadline: seconds one attempt may take in all: connect, request, headers and body.
    :param max_response_bytes: largest answer body read; a larger one fails the attempt.
    :param verify: verify TLS certificates.
    :param policy: the retry policy.
    """

    base_url: str
    token: str | None
    client_key: str | None
    client_secret: str | None
    connect_timeout: float
    read_timeout: float
    deadline: float
    max_response_bytes: int
    verify: bool
    policy: RetryPolicy

    def __repr__(self) -> str:
        # The dataclass repr would print the token and the secret.
        auth = "client_credentials" if self.client_key else "token"
        return f"EnsoSettings(base_url={self.base_url!r}, auth={auth})"

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` as requests takes it."""
        return self.connect_timeout, self.read_timeout


def settings_from_connection(conn: Connection, conn_id: str, overrides: dict[str, Any]) -> EnsoSettings:
    """
    Read and check an Airflow connection's settings; arguments in ``overrides`` win over its extras.

    :raises EnsoConfigError: a setting cannot work; the message never holds a credential.
    """
    extra = conn.extra_dejson or {}

    def pick(name: str, default: Any, cast: type) -> Any:
        value = overrides.get(name)
        if value is None:
            # Older UIs store form fields with a prefix.
            value = extra.get(name, extra.get(f"extra__enso__{name}"))
        if value is None or value == "":
            return default
        try:
            return cast(value)
        except (TypeError, ValueError):
            raise EnsoConfigError(
                f"Connection {conn_id!r}: extra field {name!r} must be a {cast.__name__}, got {value!r}"
            ) from None

    password = (conn.password or "").strip() or None
    login = (conn.login or "").strip() or None
    for field, value in (("Password", password), ("Login", login)):
        problem = credential_problem(value) if value is not None else None
        if problem:
            raise EnsoConfigError(f"Connection {conn_id!r}: {field} {problem}; fix it in the connection.")
    if not password:
        raise EnsoConfigError(
            f"Connection {conn_id!r} has no Password: set the API token there "
            "(or the client secret, with the client key in Login)."
        )
    try:
        policy = RetryPolicy(
            max_retries=pick("max_retries", 5, int),
            backoff_factor=pick("backoff_factor", 0.5, float),
            backoff_max=pick("backoff_max", 30.0, float),
            retry_after_max=pick("retry_after_max", 60.0, float),
            total_wait_max=pick("total_wait_max", 300.0, float),
        )
    except ValueError as err:
        raise EnsoConfigError(f"Connection {conn_id!r}: {err}") from None
    connect_timeout = pick("connect_timeout", 10.0, float)
    read_timeout = pick("timeout", 30.0, float)
    deadline = pick("deadline", read_timeout, float)
    for name, seconds in (
        ("connect_timeout", connect_timeout),
        ("timeout", read_timeout),
        ("deadline", deadline),
    ):
        # requests would refuse these only at the first request, in a sender thread.
        if not seconds > 0:
            raise EnsoConfigError(
                f"Connection {conn_id!r}: extra field {name!r} must be more than 0 seconds, got {seconds!r}"
            )
        if not math.isfinite(seconds):
            raise EnsoConfigError(
                f"Connection {conn_id!r}: extra field {name!r} must be a finite number of seconds, "
                f"got {seconds!r}"
            )
    max_response_bytes = pick("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, int)
    if max_response_bytes < 1024:
        raise EnsoConfigError(
            f"Connection {conn_id!r}: extra field 'max_response_bytes' must be at least 1024, "
            f"got {max_response_bytes!r}"
        )
    verify = extra.get("verify_ssl", extra.get("extra__enso__verify_ssl", True))
    if isinstance(verify, str):
        verify = verify.strip().lower() not in {"false", "0", "no", "off"}
    return EnsoSettings(
        base_url=base_url_of(conn, conn_id),
        token=None if login else password,
        client_key=login,
        client_secret=password if login else None,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        deadline=deadline,
        max_response_bytes=max_response_bytes,
        verify=bool(verify),
        policy=policy,
    )


def base_url_of(conn: Connection, conn_id: str) -> str:
    """
    The API base URL of a connection: its Host, or a bare host with the connection's schema and port.

    :raises EnsoConfigError: not http(s), or a URL with a user name or password (credentials belong in
        Login and Password, and would be shown wherever the URL is), a query or a fragment.
    """
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        # A bare host (URI-form connections) gets HTTPS unless the connection's schema says otherwise.
        scheme = (conn.schema or "https").strip() or "https"
        host = f"{scheme}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise EnsoConfigError(f"Connection {conn_id!r}: Host is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise EnsoConfigError(
            f"Connection {conn_id!r} (type {conn.conn_type!r}) does not give an http(s) URL: "
            f"scheme {scheme!r}. Use an Enso connection whose Host is the API base URL, "
            f"e.g. {DEFAULT_BASE_URL}."
        )
    if "@" in parts.netloc:
        # Never echo it: the part before "@" is a credential.
        raise EnsoConfigError(
            f"Connection {conn_id!r}: Host holds a user name or password; put the API token (or the "
            "client key and secret) in the Login and Password fields, and only the URL in Host."
        )
    if parts.query or parts.fragment or host.rstrip().endswith(("?", "#")):
        raise EnsoConfigError(
            f"Connection {conn_id!r}: Host has a query or a fragment; give only the API base URL "
            f"(e.g. {DEFAULT_BASE_URL})."
        )
    if not parts.hostname:
        raise EnsoConfigError(f"Connection {conn_id!r}: Host has no host name.")
    return host.rstrip("/")
