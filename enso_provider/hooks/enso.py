"""EnsoHook: the connection to Enso's API, its credentials, and resilient requests."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from enso_provider import __version__
from enso_provider.delivery import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_RECORD_RETRIES,
    Delivery,
    DeliveryReport,
    Failure,
)
from enso_provider.events import Event, EventMapper, Rejection
from enso_provider.exceptions import (
    EnsoAuthError,
    EnsoConfigError,
    EnsoConnectionError,
    EnsoError,
    EnsoRequestError,
    EnsoResponseError,
    EnsoServerError,
    truncate,
)
from enso_provider.get_provider_info import (
    CONN_FIELDS,
    DEFAULT_BASE_URL,
    HIDDEN_FIELDS,
    PLACEHOLDERS,
    RELABELING,
)
from enso_provider.hooks.auth import TokenCache, access_token_from_login
from enso_provider.hooks.pipeline import PipelinedPoster
from enso_provider.hooks.results import BatchResult, ResponseShapeError, parse_batch_response
from enso_provider.hooks.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from enso_provider.version_compat import BaseHook

if TYPE_CHECKING:
    from airflow.sdk import Connection

EVENTS_PATH = "/events/batch"
LOGIN_PATH = "/auth/system-login"
USER_AGENT = f"airflow-provider-enso/{__version__}"


#: A thread's urllib3 pool for a URL, the URL to ask it for, and the session's headers.
_Transport = tuple[Any, str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class _Answer:
    """An HTTP answer, read whole."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class _Transient(Exception):
    """A failure worth another try; carries what the final error needs if retries run out."""

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        body: str = "",
        code: int | str | None = None,
        kind: type[EnsoError] = EnsoServerError,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after
        self.body = body
        self.code = code
        self.kind = kind


@dataclass(frozen=True)
class _Settings:
    """What the hook reads from its connection, resolved once."""

    base_url: str
    token: str | None
    client_key: str | None
    client_secret: str | None
    timeout: tuple[float, float]
    verify: bool
    policy: RetryPolicy

    def __repr__(self) -> str:
        # The dataclass repr would print the token and the secret.
        auth = "client_credentials" if self.client_key else "token"
        return f"_Settings(base_url={self.base_url!r}, auth={auth})"


class EnsoHook(BaseHook):
    """
    Talks to Enso's API: credentials from an Airflow connection, pooled keep-alive HTTP, retries.

    The connection (type ``enso``) holds the API base URL in Host (``https://api.getenso.ai`` when
    empty) and either an API token in Password, or a client key in Login with the client secret in
    Password, exchanged at ``POST /auth/system-login`` for a short-lived token that is cached and
    refreshed. Extra fields: ``timeout``, ``connect_timeout``, ``max_retries``, ``verify_ssl``.
    Arguments given here win over the connection's extra fields.

    :param enso_conn_id: the Airflow connection to use.
    :param timeout: seconds to wait for an answer to one request (read timeout).
    :param connect_timeout: seconds to wait for a connection to be established.
    :param max_retries: retries of one request after a network error, a 429 or a 5xx.
    :param backoff_factor: first wait between tries, in seconds; doubles with each retry (with jitter).
    :param backoff_max: longest computed wait between two tries, in seconds.
    :param retry_after_max: longest a ``Retry-After`` header is honoured, in seconds.
    :param total_wait_max: most time spent waiting across the retries of one request, in seconds.
    """

    conn_name_attr = "enso_conn_id"
    default_conn_name = "enso_default"
    conn_type = "enso"
    hook_name = "Enso"

    def __init__(
        self,
        enso_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_retries: int | None = None,
        backoff_factor: float | None = None,
        backoff_max: float | None = None,
        retry_after_max: float | None = None,
        total_wait_max: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.enso_conn_id = enso_conn_id
        self._overrides: dict[str, Any] = {
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "max_retries": max_retries,
            "backoff_factor": backoff_factor,
            "backoff_max": backoff_max,
            "retry_after_max": retry_after_max,
            "total_wait_max": total_wait_max,
        }
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        # Replaceable so tests can record waits instead of spending them.
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"EnsoHook(enso_conn_id={self.enso_conn_id!r})"

    # -- the connection form ------------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the standard fields (Airflow 3.0/3.1; 3.2+ reads provider info)."""
        return {
            "hidden_fields": list(HIDDEN_FIELDS),
            "relabeling": dict(RELABELING),
            "placeholders": {k: v for k, v in PLACEHOLDERS.items() if k in RELABELING},
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 3.0/3.1; 3.2+ reads provider info)."""
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import Optional

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            kinds = spec["schema"]["type"]
            field = (
                BooleanField if "boolean" in kinds else IntegerField if "integer" in kinds else StringField
            )
            widgets[name] = field(spec["label"], validators=[Optional()], description=spec["description"])
        return widgets

    # -- settings, resolved lazily from the connection -------------------------------------------------

    @cached_property
    def settings(self) -> _Settings:
        """The connection's settings; the connection is looked up on first use, never in ``__init__``."""
        conn = self.get_connection(self.enso_conn_id)
        return self._settings_from(conn)

    def _settings_from(self, conn: Connection) -> _Settings:
        extra = conn.extra_dejson or {}

        def pick(name: str, default: Any, cast: type) -> Any:
            value = self._overrides.get(name)
            if value is None:
                # Older UIs store form fields with a prefix.
                value = extra.get(name, extra.get(f"extra__enso__{name}"))
            if value is None or value == "":
                return default
            try:
                return cast(value)
            except (TypeError, ValueError):
                raise EnsoConfigError(
                    f"Connection {self.enso_conn_id!r}: extra field {name!r} must be a {cast.__name__}, "
                    f"got {value!r}"
                ) from None

        password = (conn.password or "").strip() or None
        login = (conn.login or "").strip() or None
        for field, value in (("Password", password), ("Login", login)):
            # A credential with a line break (a secrets file's last newline) would break the header
            # and land, whole, in an http.client error: refuse it without showing it.
            if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise EnsoConfigError(
                    f"Connection {self.enso_conn_id!r}: {field} contains a control character "
                    "(a line break?); remove it."
                )
        if not password:
            raise EnsoConfigError(
                f"Connection {self.enso_conn_id!r} has no Password: set the API token there "
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
            raise EnsoConfigError(f"Connection {self.enso_conn_id!r}: {err}") from None
        timeout = (pick("connect_timeout", 10.0, float), pick("timeout", 30.0, float))
        for name, seconds in zip(("connect_timeout", "timeout"), timeout, strict=True):
            if not seconds > 0:  # requests would refuse it only at the first request, in a sender thread
                raise EnsoConfigError(
                    f"Connection {self.enso_conn_id!r}: extra field {name!r} must be more than 0 seconds, "
                    f"got {seconds!r}"
                )
        verify = extra.get("verify_ssl", extra.get("extra__enso__verify_ssl", True))
        if isinstance(verify, str):
            verify = verify.strip().lower() not in {"false", "0", "no", "off"}
        return _Settings(
            base_url=self._base_url(conn),
            token=None if login else password,
            client_key=login,
            client_secret=password if login else None,
            timeout=timeout,
            verify=bool(verify),
            policy=policy,
        )

    def _base_url(self, conn: Connection) -> str:
        host = (conn.host or "").strip()
        if not host:
            return DEFAULT_BASE_URL
        if "://" not in host:
            # A bare host (URI-form connections) gets HTTPS unless the connection's schema says otherwise.
            scheme = (conn.schema or "https").strip() or "https"
            host = f"{scheme}://{host}"
            if conn.port:
                host = f"{host}:{conn.port}"
        scheme = host.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise EnsoConfigError(
                f"Connection {self.enso_conn_id!r} (type {conn.conn_type!r}) does not give an http(s) URL: "
                f"scheme {scheme!r}. Use an Enso connection whose Host is the API base URL, "
                f"e.g. {DEFAULT_BASE_URL}."
            )
        return host.rstrip("/")

    @property
    def base_url(self) -> str:
        """The API base URL requests go to."""
        return self.settings.base_url

    @cached_property
    def _token_cache(self) -> TokenCache | None:
        if not self.settings.client_key:
            return None
        return TokenCache(self._login)

    def _secrets(self) -> tuple[str, ...]:
        s = self.settings
        # The exchanged access token is a credential too, for as long as it lives.
        access = self.__dict__.get("_token_cache")
        current = access.peek() if access is not None else None
        return tuple(x for x in (s.token, s.client_secret, current) if x)

    def _scrub(self, text: str) -> str:
        """Remove any credential a server echoed back, before the text reaches a log or an exception."""
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _error_code(self, response: _Answer) -> int | str | None:
        code = _error_code(response)
        # A code is text from the server too: it lands in messages, reports and XCom.
        return self._scrub(code) if isinstance(code, str) else code

    # -- HTTP ----------------------------------------------------------------------------------------

    def get_conn(self) -> requests.Session:
        """
        Return this thread's session: pooled and keep-alive, one per thread so senders never share one.

        ``requests.Session`` is not documented as thread-safe; a session per thread keeps each sender's
        connection warm without locking.
        """
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Retries are ours (with Retry-After and logging); urllib3 must not retry behind our back.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update(
                {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept": "application/json"}
            )
            session.verify = self.settings.verify
            # Read proxy and CA settings from the environment once, not on every request (requests
            # re-reads them per call while trust_env is on, which costs more than the batch's encoding).
            session.proxies.update(requests.utils.get_environ_proxies(self.settings.base_url))
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if self.settings.verify and ca_bundle:
                session.verify = ca_bundle
            session.trust_env = False
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every session this hook opened (all threads)."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _login(self) -> tuple[str, float | None]:
        """Exchange the client credentials for an access token (called by the token cache, locked)."""
        s = self.settings
        url = f"{s.base_url}{LOGIN_PATH}"
        body = orjson.dumps({"clientKey": s.client_key, "clientSecret": s.client_secret})

        def attempt() -> tuple[str, float | None]:
            response = self._raw_post(url, body, authorization=None)
            if response.status_code in (400, 401, 403):
                raise EnsoAuthError(
                    f"Enso refused the client credentials of connection {self.enso_conn_id!r} "
                    f"(HTTP {response.status_code}).",
                    status_code=response.status_code,
                    body=self._scrub(response.text),
                )
            self._raise_for_transient(response)
            if response.status_code >= 400:
                self._raise_request_error(response, "the token exchange")
            try:
                return access_token_from_login(response.json())
            except ValueError as err:
                raise self._malformed(response, f"malformed login answer: {err}", EnsoAuthError) from None

        self.log.debug("Exchanging client credentials for an access token at %s", url)
        return self._with_retries(attempt, what="token exchange")

    def _authorization(self) -> tuple[str, int]:
        cache = self._token_cache
        if cache is None:
            assert self.settings.token is not None
            return f"Bearer {self.settings.token}", 0
        token, generation = cache.get()
        return f"Bearer {token}", generation

    def _transport(self, url: str) -> _Transport:
        """
        This thread's connection pool for ``url``, the URL to ask it for, and the session's headers.

        The pool is the one the session's adapter would use (TLS verification, CA bundle, proxies
        included), taken once per thread and URL. Posting through it directly skips ``Session.request``,
        which costs three times the CPU of the request itself: on a 2-core worker that is the
        difference between the senders keeping up with the mapping or not (see the README's figures).
        """
        transports: dict[str, tuple[Any, str, dict[str, str]]] | None = getattr(
            self._local, "transports", None
        )
        if transports is None:
            transports = self._local.transports = {}
        found = transports.get(url)
        if found is None:
            session = self.get_conn()
            adapter = session.get_adapter(url)
            prepared = requests.Request("POST", url).prepare()
            if not isinstance(adapter, HTTPAdapter):  # pragma: no cover - a custom adapter mounted by a user
                raise EnsoConfigError(f"no HTTP adapter for {url}")
            pool = adapter.get_connection_with_tls_context(
                prepared, session.verify, proxies=session.proxies, cert=session.cert
            )
            target = adapter.request_url(prepared, session.proxies)
            found = transports[url] = (pool, target, {str(k): str(v) for k, v in session.headers.items()})
        return found

    def _raw_post(self, url: str, body: bytes, *, authorization: str | None) -> _Answer:
        pool, target, session_headers = self._transport(url)
        headers = dict(session_headers)
        if authorization:
            headers["Authorization"] = authorization
        connect, read = self.settings.timeout
        try:
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                headers=headers,
                retries=False,  # ours, with Retry-After and logging
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=connect, read=read),
                preload_content=True,
            )
        except urllib3.exceptions.TimeoutError as err:
            raise _Transient(f"timed out ({type(err).__name__})", kind=EnsoConnectionError) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _Transient(f"connection failed ({type(err).__name__})", kind=EnsoConnectionError) from None
        return _Answer(response.status, response.data, response.headers)

    def _raise_for_transient(self, response: _Answer) -> None:
        if response.status_code in RETRYABLE_STATUSES:
            raise _Transient(
                f"HTTP {response.status_code}",
                status_code=response.status_code,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                body=truncate(self._scrub(response.text)),
                code=self._error_code(response),
            )

    def _malformed(self, response: _Answer, reason: str, kind: type[EnsoError]) -> _Transient:
        """A 2xx answer that is not what was asked for: retried, then raised as ``kind``."""
        return _Transient(
            reason, status_code=response.status_code, body=truncate(self._scrub(response.text)), kind=kind
        )

    def _raise_request_error(self, response: _Answer, what: str) -> NoReturn:
        code = self._error_code(response)
        raise EnsoRequestError(
            f"Enso rejected {what} with HTTP {response.status_code}"
            + (f" (code {code})" if code is not None else "")
            + f": {truncate(self._scrub(_error_message(response)), 200)}",
            status_code=response.status_code,
            code=code,
            body=self._scrub(response.text),
        )

    def _post_events(self, body: bytes) -> _Answer:
        """One POST of a batch body with auth handling (one refresh on 401), without retries."""
        url = f"{self.settings.base_url}{EVENTS_PATH}"
        authorization, generation = self._authorization()
        response = self._raw_post(url, body, authorization=authorization)
        if response.status_code == 401 and self._token_cache is not None:
            # The cached token may have expired early or been revoked: refresh once, then give up.
            self.log.info("Enso answered 401; refreshing the access token and trying again")
            self._token_cache.invalidate(generation)
            authorization, _ = self._authorization()
            response = self._raw_post(url, body, authorization=authorization)
        if response.status_code in (401, 403):
            raise EnsoAuthError(
                f"Enso refused the credentials of connection {self.enso_conn_id!r} "
                f"(HTTP {response.status_code}).",
                status_code=response.status_code,
                code=self._error_code(response),
                body=self._scrub(response.text),
            )
        return response

    def _with_retries(self, attempt: Any, *, what: str, prior_attempts: int = 0) -> Any:
        policy = self.settings.policy
        # Attempts already made elsewhere (a pipelined first attempt) count against max_retries; one
        # attempt is always made here.
        attempts_left = max(1, policy.max_retries + 1 - prior_attempts)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, _Transient) else None
            budget = max(policy.total_wait_max - state.idle_for, 0.0)
            return min(policy.wait(state.attempt_number, retry_after), budget)

        def stop(state: RetryCallState) -> bool:
            return stop_after_attempt(attempts_left)(state) or (
                state.idle_for >= policy.total_wait_max and state.attempt_number > 1
            )

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = exc.reason if isinstance(exc, _Transient) else repr(exc)
            self.log.warning(
                "Enso %s failed (%s); retry %s of %s in %.2fs",
                what,
                reason,
                state.attempt_number + prior_attempts,
                policy.max_retries,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=log_retry,
            reraise=True,
            sleep=self._sleep,
        )
        try:
            return retrying(attempt)
        except _Transient as last:
            attempts = retrying.statistics.get("attempt_number", 1) + prior_attempts
            raise last.kind(
                f"Enso {what} failed after {attempts} attempt(s): {last.reason}",
                status_code=last.status_code,
                code=last.code,
                body=last.body,
            ) from None

    def open_pipeline(self, slots: int) -> PipelinedPoster | None:
        """
        A pipelined poster for first attempts from the caller's thread (None behind a proxy).

        Delivery uses it so that the thread that maps also sends; anything but a clean answer is handed
        to :meth:`post_batch_body` and its retries.
        """
        if self.settings.policy.max_retries == 0:
            # The pipelined attempt would be the only one, and its failure has no error of its own.
            return None
        return PipelinedPoster.open(self, f"{self.settings.base_url}{EVENTS_PATH}", slots)

    def first_retry_wait(self, status: int | None, headers: Mapping[str, str] | None) -> float:
        """How long to wait before retrying a pipelined attempt that failed with ``status``."""
        if status is not None and status not in RETRYABLE_STATUSES:
            return 0.0
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return self.settings.policy.wait(1, retry_after)

    def invalidate_token(self, generation: int) -> None:
        """Drop the cached access token of ``generation`` after a 401 (no-op with a static token)."""
        if self._token_cache is not None:
            self._token_cache.invalidate(generation)

    def post_batch_body(self, body: bytes, *, sent: int, prior_attempts: int = 0) -> BatchResult:
        """
        Post one pre-encoded ``{"events": [...]}`` body, with retries, and parse Enso's answer.

        A 2xx body that is not the documented shape is retried like a 5xx: the request may or may not
        have been stored, and the deterministic eventIds make a resend safe where Enso dedupes.

        :param body: the encoded request body.
        :param sent: how many events the body carries.
        :param prior_attempts: attempts already made with this body (they count against max_retries).
        :raises EnsoAuthError: credentials refused.
        :raises EnsoRequestError: the whole request refused with a 4xx (for example code 2003).
        :raises EnsoServerError: 429/5xx until retries ran out.
        :raises EnsoConnectionError: network failures until retries ran out.
        :raises EnsoResponseError: malformed 2xx answers until retries ran out.
        """

        def attempt() -> BatchResult:
            response = self._post_events(body)
            self._raise_for_transient(response)
            if response.status_code >= 400 or response.status_code < 200:
                self._raise_request_error(response, f"a batch of {sent} events")
            try:
                return self.read_batch_answer(response.content, sent=sent)
            except (orjson.JSONDecodeError, ResponseShapeError) as err:
                raise self._malformed(response, f"malformed answer ({err})", EnsoResponseError) from None

        return self._with_retries(attempt, what="batch request", prior_attempts=prior_attempts)

    def read_batch_answer(self, content: bytes, *, sent: int) -> BatchResult:
        """
        Parse a 2xx answer to a batch of ``sent`` events, with any echoed credential scrubbed.

        :raises orjson.JSONDecodeError: the body is not JSON.
        :raises ResponseShapeError: the body is not the documented shape.
        """
        return self._scrub_records(parse_batch_response(orjson.loads(content), sent=sent))

    def _scrub_records(self, result: BatchResult) -> BatchResult:
        """Scrub credentials a server echoed into per-record errors: they reach reports, XCom and files."""
        secrets = self._secrets()
        if not any(secret in f"{r.error}{r.code}" for r in result.failed_records for secret in secrets):
            return result
        records = tuple(
            replace(
                r,
                error=self._scrub(r.error),
                code=self._scrub(r.code) if isinstance(r.code, str) else r.code,
            )
            for r in result.failed_records
        )
        return replace(result, failed_records=records)

    def send_batch(self, events: Sequence[Mapping[str, Any] | bytes]) -> BatchResult:
        """
        Send one batch: one ``POST /events/batch`` of ``{"events": [...]}``.

        Events are sent as given (already validated mappings, or pre-encoded JSON objects as bytes).
        To map, validate, batch and account for many events, use :meth:`send_events`.

        :param events: the events of the batch, in order; failed-record indexes refer to this order.
        :return: Enso's summary and failed records.
        """
        if not events:
            raise ValueError("send_batch needs at least one event")
        parts = [e if isinstance(e, bytes) else orjson.dumps(e) for e in events]
        body = b'{"events":[' + b",".join(parts) + b"]}"
        return self.post_batch_body(body, sent=len(parts))

    def send_events(
        self,
        events: Iterable[Mapping[str, Any] | Event | Rejection],
        *,
        namespace: str = "",
        **options: Any,
    ) -> DeliveryReport:
        """
        Validate, batch and send any number of events, and account for each of them.

        Each event is encoded once; batches are cut by count and bytes; at most ``concurrency`` requests
        are in flight, so memory stays bounded whatever the input size. Records Enso fails transiently
        (``statusCode`` 429/5xx inside a 200) are re-sent alone, ``record_retries`` rounds at most.
        Failed-record indexes are mapped back to the positions in ``events``.

        :param events: event mappings (field names as on the wire: ``CustomerEntityId``, ``metric``,
            ``value``, ``timestamp``, optional ``metadata``, ``eventId``, ``JobId``), or items already
            mapped by :class:`~enso_provider.events.EventMapper`. A mapping without ``eventId`` gets a
            deterministic one (see the README).
        :param namespace: the namespace of generated eventIds.
        :param options: the options of :meth:`deliver`.
        :return: the delivery report; ``sent == success + failed`` and
            ``total == success + failed + invalid``.
        """
        return self.deliver(_as_items(events, namespace), **options)

    def deliver(
        self,
        items: Iterable[Event | Rejection],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        record_retries: int = DEFAULT_RECORD_RETRIES,
        dry_run: bool = False,
        on_failure: Callable[[Failure], None] | None = None,
        logger: Any = None,
    ) -> DeliveryReport:
        """
        Send items already mapped by :class:`~enso_provider.events.EventMapper` (the operators' path).

        :param items: encoded events and local rejections, in input order.
        :param batch_size: most events per request.
        :param max_batch_bytes: most bytes per request body.
        :param concurrency: most requests in flight.
        :param record_retries: rounds of re-sending transiently failed records.
        :param dry_run: batch and count, post nothing.
        :param on_failure: called with every failed row (local or remote), in the caller's thread.
        :param logger: where progress lines go (the task's logger).
        :raises EnsoError: a whole request failed in a way retries could not fix; batches in flight
            were finished first.
        """
        if not dry_run:
            # Read the connection here: worker threads must not need Airflow's context.
            _ = self.settings
        delivery = Delivery(
            self,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            concurrency=concurrency,
            record_retries=record_retries,
            dry_run=dry_run,
            on_failure=on_failure,
            logger=logger or self.log,
        )
        return delivery.run(items)

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the URL and the credentials without creating any event.

        Posts an empty ``events`` array: Enso refuses it with code 2003 after authenticating, so a 400
        means reachable and authenticated, 401/403 means bad credentials, and a network error means
        unreachable. Nothing is retried for long: the Test button should answer quickly.
        """
        try:
            settings = self.settings
        except EnsoConfigError as err:
            return False, str(err)
        except Exception as err:
            return False, f"Cannot read connection {self.enso_conn_id!r}: {type(err).__name__}"
        max_retries = self._overrides["max_retries"]
        self._overrides.update(max_retries=0)
        self.__dict__.pop("settings", None)
        try:
            response = self._post_events(b'{"events":[]}')
        except EnsoAuthError as err:
            return False, str(err)
        except _Transient as err:
            return False, f"Cannot reach Enso at {settings.base_url}: {err.reason}"
        except EnsoError as err:
            return False, str(err)
        finally:
            # The quick check's "no retries" must not stay with a hook that then sends events.
            self._overrides.update(max_retries=max_retries)
            self.__dict__.pop("settings", None)
        status = response.status_code
        if status == 400 or 200 <= status < 300:
            return True, f"Connected to Enso at {settings.base_url} and authenticated."
        return False, (
            f"Enso at {settings.base_url} answered HTTP {status}: "
            f"{truncate(self._scrub(_error_message(response)), 200)}"
        )


def _as_items(
    events: Iterable[Mapping[str, Any] | Event | Rejection], namespace: str
) -> Iterator[Event | Rejection]:
    """Pass mapped items through; map plain event mappings with the identity mapping."""
    mapper: EventMapper | None = None
    for item in events:
        if isinstance(item, (Event, Rejection)):
            yield item
            continue
        if mapper is None:
            mapper = EventMapper(namespace=namespace)
        yield mapper.map_one(item)


def _json_or_none(response: _Answer) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _error_code(response: _Answer) -> int | str | None:
    body = _json_or_none(response)
    if not isinstance(body, dict):
        return None
    for source in (body, body.get("data"), body.get("error")):
        if isinstance(source, dict) and source.get("code") is not None:
            code = source["code"]
            return code if isinstance(code, (int, str)) else str(code)
    return None


def _error_message(response: _Answer) -> str:
    body = _json_or_none(response)
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return response.text
