"""
Bearer credentials for Enso: a static API token, or client credentials exchanged for a short-lived JWT.

:class:`BearerAuth` is the one place that adds the ``Authorization`` header and the one place that
refreshes the exchanged token after a 401.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import requests
from requests.auth import AuthBase

from enso_provider.hooks.secrets import credential_problem

#: Refresh a JWT this many seconds before its ``exp`` (clock skew, a slow request in flight).
REFRESH_MARGIN = 60.0


def jwt_expiry(token: str) -> float | None:
    """
    Read the ``exp`` claim of a JWT without verifying it (the server verifies; we only plan refreshes).

    :return: the expiry as a UNIX timestamp, or None when the token is not a JWT or has no ``exp``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


class TokenCache:
    """
    A bearer token shared by every sender thread, fetched once and refreshed before it expires.

    :param fetch: returns a fresh token and its lifetime hint in seconds (or None); it is called
        under a lock, so concurrent senders trigger one login, not one each.
    :param clock: a monotonic-compatible ``time.time`` replacement for tests.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float | None]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self._generation = 0

    def __repr__(self) -> str:
        # Never show the token itself.
        return f"TokenCache(cached={self._token is not None}, expires_at={self._expires_at!r})"

    def get(self) -> tuple[str, int]:
        """Return a valid token and its generation (pass the generation to :meth:`invalidate`)."""
        with self._lock:
            if self._token is None or self._stale():
                self._refresh()
            assert self._token is not None
            return self._token, self._generation

    def peek(self) -> str | None:
        """The cached token, if any, without fetching one (to scrub it from text)."""
        return self._token

    def invalidate(self, generation: int) -> None:
        """Drop the token of ``generation`` (after a 401); a newer token fetched meanwhile is kept."""
        with self._lock:
            if generation == self._generation:
                self._token = None

    def _stale(self) -> bool:
        if self._expires_at is None:
            return False
        return self._clock() >= self._expires_at - self._margin()

    def _margin(self) -> float:
        # Short-lived test tokens cannot afford a whole minute of margin.
        return min(REFRESH_MARGIN, self._lifetime / 5) if self._lifetime else REFRESH_MARGIN

    def _refresh(self) -> None:
        token, lifetime_hint = self._fetch()
        now = self._clock()
        expires_at = jwt_expiry(token)
        if expires_at is None and lifetime_hint:
            expires_at = now + lifetime_hint
        self._lifetime = (expires_at - now) if expires_at is not None else 0.0
        self._token, self._expires_at = token, expires_at
        self._generation += 1

    _lifetime: float = 0.0


def access_token_from_login(payload: Any) -> tuple[str, float | None]:
    """
    Read ``data.accessToken`` (and an optional ``expiresIn``) from a ``/auth/system-login`` answer.

    :raises ValueError: when the body has no token.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    source = data if isinstance(data, dict) else payload if isinstance(payload, dict) else {}
    token = source.get("accessToken") or source.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the login answer has no data.accessToken")
    problem = credential_problem(token)
    if problem:
        # Said without the token: the message reaches logs and the exception.
        raise ValueError(f"the login answer's access token {problem}")
    expires_in = source.get("expiresIn") or source.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else None
    return token, lifetime


class BearerAuth(AuthBase):
    """
    Adds ``Authorization: Bearer ...`` to each request; with client credentials, refreshes once on 401.

    The refresh re-sends the request on the same connection adapter, as requests' own digest auth does,
    so it stays inside the attempt's deadline and is never retried twice.

    :param token: the static API token (None with client credentials).
    :param cache: the exchanged token's cache (None with a static token).
    :param log: where the refresh is logged.
    """

    def __init__(self, *, token: str | None = None, cache: TokenCache | None = None, log: Any = None) -> None:
        if (token is None) == (cache is None):
            raise ValueError("BearerAuth takes a token or a token cache")
        self._token = token
        self._cache = cache
        self._log = log

    def __repr__(self) -> str:
        return f"BearerAuth(exchanged={self._cache is not None})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BearerAuth) and (self._token, self._cache) == (other._token, other._cache)

    def __hash__(self) -> int:
        return id(self)

    def ready(self) -> None:
        """Fetch the exchanged token now if it is due (so that the exchange is not inside a request)."""
        if self._cache is not None:
            self._cache.get()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._cache is None:
            assert self._token is not None
            request.headers["Authorization"] = f"Bearer {self._token}"
            return request
        token, generation = self._cache.get()
        request.headers["Authorization"] = f"Bearer {token}"

        def refresh_on_401(response: requests.Response, **send_kwargs: Any) -> requests.Response:
            if response.status_code != 401 or response.history:
                return response
            assert self._cache is not None
            # The cached token may have expired early or been revoked: refresh once, then give up.
            if self._log is not None:
                self._log.info("Enso answered 401; refreshing the access token and trying again")
            self._cache.invalidate(generation)
            fresh, _ = self._cache.get()
            response.close()
            again = response.request.copy()
            again.headers["Authorization"] = f"Bearer {fresh}"
            again.hooks = {"response": []}
            retried = response.connection.send(again, **send_kwargs)
            retried.history.append(response)
            retried.request = again
            return retried

        request.register_hook("response", refresh_on_401)
        return request
