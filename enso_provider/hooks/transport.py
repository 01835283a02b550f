"""
The one HTTP path to Enso: a ``requests.Session`` per thread, a deadline per attempt, capped answers.

requests and urllib3 bound each socket operation (connect, one read), not an answer: a server that
trickles a byte a second, or sends ``100 Continue`` lines without end, would hold a request for ever.
So each attempt also runs under a :class:`Deadline` that shuts the connection's socket down when the
attempt's time is up, and answer bodies are read in pieces up to a cap, never whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from enso_provider import __version__
from enso_provider.exceptions import EnsoError

if TYPE_CHECKING:
    from enso_provider.hooks.settings import EnsoSettings

USER_AGENT = f"airflow-provider-enso/{__version__}"

_active = threading.local()


class Deadline:
    """
    The end of one attempt: when it passes, the socket the attempt uses is shut down.

    A read blocked in another thread then returns at once with an error, which :func:`post` reports as
    the deadline, not as the error the shut-down socket happened to raise.

    :param seconds: how long the attempt may take in all.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._connection: Any = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        # A token refresh inside an attempt has a deadline of its own; the attempt's comes back after.
        self._outer: Deadline | None = getattr(_active, "deadline", None)
        _active.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _active.deadline = self._outer

    def watch(self, connection: Any) -> None:
        """Note the connection the attempt uses (called by the connection itself)."""
        with self._lock:
            self._connection = connection
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            _shut(self._connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # socket.socket's own shutdown, not SSLSocket's: that one also drops the TLS state under the
    # reading thread's feet.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedConnection:
    """Mixed into urllib3's connections: each request tells the thread's deadline which socket it uses."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._watch()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._watch()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _watch(self) -> None:
        deadline: Deadline | None = getattr(_active, "deadline", None)
        if deadline is not None:
            deadline.watch(self)


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections a :class:`Deadline` can end; urllib3 never retries."""

    def __init__(self) -> None:
        # Retries are ours (with Retry-After and logging); urllib3 must not retry behind our back.
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # A SOCKS manager brings connections of its own; there only per-read timeouts apply.
        if type(manager) is ProxyManager:
            manager.pool_classes_by_scheme = _POOLS
        return manager


class EnsoSession(requests.Session):
    """
    A session that never follows a redirect.

    Even with ``allow_redirects=False`` requests reads a redirect's whole body (of any size) to prepare
    the next hop; with no redirect target, a 3xx is an answer like any other, read up to the cap.
    """

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


def new_session(settings: EnsoSettings) -> requests.Session:
    """A keep-alive session with the connection's TLS, proxy and CA settings, read once."""
    session = EnsoSession()
    adapter = DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Accept": "application/json",
            # Batch answers are small; an uncompressed one is capped as it is read.
            "Accept-Encoding": "identity",
        }
    )
    session.verify = settings.verify
    # Proxy and CA settings from the environment, once, not on every request (requests re-reads them
    # per call while trust_env is on). trust_env off also keeps ~/.netrc from replacing our auth.
    session.proxies.update(requests.utils.get_environ_proxies(settings.base_url))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if settings.verify and ca_bundle:
        session.verify = ca_bundle
    session.trust_env = False
    return session


@dataclass(frozen=True, slots=True)
class Answer:
    """A final HTTP answer, its body read up to the cap."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]
    #: The ``Location`` of a redirect (never followed).
    location: str | None = None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class NetworkError(Exception):
    """No usable answer: the connection failed, or the attempt ran out of time; ``reason`` says which."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class AnswerTooLarge(Exception):
    """The answer's body is larger than ``max_response_bytes``; the rest was not read."""


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    *,
    settings: EnsoSettings,
    auth: requests.auth.AuthBase | None,
) -> Answer:
    """
    One POST, redirects not followed, under the attempt's deadline, the body read up to the cap.

    :raises NetworkError: no answer (refused, DNS, TLS, reset, timeout, deadline).
    :raises AnswerTooLarge: the body is over ``settings.max_response_bytes``.
    """
    with Deadline(settings.deadline) as deadline:
        try:
            response = session.post(
                url,
                data=body,
                auth=auth,
                timeout=settings.timeout,
                allow_redirects=False,
                stream=True,
            )
            try:
                content = _read_capped(response, settings.max_response_bytes)
            finally:
                response.close()
        except (AnswerTooLarge, EnsoError):
            # EnsoError: the token refresh after a 401 (inside the request) failed; it says why.
            raise
        except Exception as err:
            if deadline.expired:
                raise NetworkError(
                    f"no complete answer within the {settings.deadline:g}s deadline", timed_out=True
                ) from None
            raise NetworkError(describe(err, settings), timed_out=_is_timeout(err)) from None
    location = response.headers.get("Location") if 300 <= response.status_code < 400 else None
    return Answer(response.status_code, content, response.headers, location)


def _read_capped(response: requests.Response, cap: int) -> bytes:
    length = response.headers.get("Content-Length")
    if length is not None and length.strip().isascii() and length.strip().isdigit() and int(length) > cap:
        raise AnswerTooLarge(f"the answer announces {int(length)} bytes, more than the {cap} allowed")
    parts: list[bytes] = []
    size = 0
    while True:
        piece = response.raw.read(min(65536, cap + 1 - size), decode_content=True)
        if not piece:
            return b"".join(parts)
        parts.append(piece)
        size += len(piece)
        if size > cap:
            raise AnswerTooLarge(f"the answer is larger than the {cap} bytes allowed")


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and what it wraps (exception chains, urllib3's ``reason``, requests' first argument)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.append(
            getattr(current, "reason", None)
            if isinstance(getattr(current, "reason", None), BaseException)
            else None
        )
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend((current.__cause__, current.__context__))
    return seen


def _is_timeout(err: BaseException) -> bool:
    return any(
        isinstance(c, (socket.timeout, urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout))
        or (
            isinstance(c, urllib3.exceptions.ConnectTimeoutError)
            and not isinstance(c, urllib3.exceptions.NewConnectionError)
        )
        for c in _causes(err)
    )


def describe(err: BaseException, settings: EnsoSettings) -> str:
    """What a network failure was, in words a person can act on (never a credential)."""
    causes = _causes(err)

    def found(*kinds: type[BaseException]) -> BaseException | None:
        return next((c for c in causes if isinstance(c, kinds)), None)

    if found(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "DNS lookup failed: the host name does not resolve"
    if found(ConnectionRefusedError) or any(
        isinstance(c, OSError) and c.errno == errno.ECONNREFUSED for c in causes
    ):
        return "connection refused: nothing listens at that address and port"
    tls = found(ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)
    if tls is not None:
        verify = found(ssl.SSLCertVerificationError)
        if verify is not None:
            detail = getattr(verify, "verify_message", "") or "untrusted"
            return f"TLS certificate verification failed ({detail})"
        return f"TLS handshake failed ({type(tls).__name__})"
    if found(requests.exceptions.ConnectTimeout) or (
        found(urllib3.exceptions.ConnectTimeoutError) and not found(urllib3.exceptions.NewConnectionError)
    ):
        return f"connect timed out after {settings.connect_timeout:g}s"
    if _is_timeout(err):
        return f"read timed out: no data for {settings.read_timeout:g}s"
    if found(ConnectionResetError, BrokenPipeError, ConnectionAbortedError) or found(
        urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError
    ):
        return "connection reset or closed by the server before a complete answer"
    if found(urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError):
        return "the answer's body could not be decoded"
    if found(urllib3.exceptions.NewConnectionError, OSError):
        return f"could not connect ({type(found(OSError) or err).__name__})"
    return f"network error ({type(err).__name__})"
