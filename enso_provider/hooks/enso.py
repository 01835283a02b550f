"""EnsoHook: an ``enso`` connection, its credentials, and Enso's batch events API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson
import requests

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
    EnsoResponseError,
    truncate,
)
from enso_provider.hooks.answers import AnswerCheck
from enso_provider.hooks.auth import BearerAuth, TokenCache, access_token_from_login
from enso_provider.hooks.form import connection_form_widgets, ui_field_behaviour
from enso_provider.hooks.results import BatchResult, ResponseShapeError, parse_batch_response
from enso_provider.hooks.retry import Transient
from enso_provider.hooks.secrets import Scrubber
from enso_provider.hooks.settings import EnsoSettings, settings_from_connection
from enso_provider.hooks.transport import USER_AGENT, Answer, AnswerTooLarge, NetworkError, new_session, post
from enso_provider.version_compat import BaseHook

if TYPE_CHECKING:
    from airflow.sdk import Connection

EVENTS_PATH = "/events/batch"
LOGIN_PATH = "/auth/system-login"

__all__ = ["EVENTS_PATH", "LOGIN_PATH", "USER_AGENT", "EnsoHook"]


class EnsoHook(BaseHook):
    """
    Talks to Enso's API: credentials from an Airflow connection, keep-alive HTTP, deadlines, retries.

    The connection (type ``enso``) holds the API base URL in Host (``https://api.getenso.ai`` when
    empty) and either an API token in Password, or a client key in Login with the client secret in
    Password, exchanged at ``POST /auth/system-login`` for a short-lived token that is cached and
    refreshed. Extra fields: ``timeout``, ``connect_timeout``, ``deadline``, ``max_response_bytes``,
    ``max_retries``, ``verify_ssl``. Arguments given here win over the connection's extra fields.

    :param enso_conn_id: the Airflow connection to use.
    :param timeout: seconds of silence tolerated while waiting for or reading an answer (read timeout).
    :param connect_timeout: seconds to wait for a connection to be established.
    :param deadline: seconds one attempt may take in all, connect to last byte (default: ``timeout``).
    :param max_response_bytes: largest answer body read (default 4 MiB); a larger one fails the attempt.
    :param max_retries: retries of one request after a network error, a 408/425/429 or a 5xx.
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
        deadline: float | None = None,
        max_response_bytes: int | None = None,
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
            "deadline": deadline,
            "max_response_bytes": max_response_bytes,
            "max_retries": max_retries,
            "backoff_factor": backoff_factor,
            "backoff_max": backoff_max,
            "retry_after_max": retry_after_max,
            "total_wait_max": total_wait_max,
        }
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._scrub = Scrubber(self._secrets)
        # Replaceable so tests can record waits instead of spending them.
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"EnsoHook(enso_conn_id={self.enso_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the standard fields (Airflow 3.0/3.1; 3.2+ reads provider info)."""
        return ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 3.0/3.1; 3.2+ reads provider info)."""
        return connection_form_widgets()

    # -- settings and credentials ---------------------------------------------------------------------

    @cached_property
    def settings(self) -> EnsoSettings:
        """The connection's settings; the connection is looked up on first use, never in ``__init__``."""
        return self._settings_from(self.get_connection(self.enso_conn_id))

    def _settings_from(self, conn: Connection) -> EnsoSettings:
        return settings_from_connection(conn, self.enso_conn_id, self._overrides)

    @property
    def base_url(self) -> str:
        """The API base URL requests go to."""
        return self.settings.base_url

    @cached_property
    def _answers(self) -> AnswerCheck:
        return AnswerCheck(self.enso_conn_id, self.settings.base_url, self._scrub)

    @cached_property
    def _token_cache(self) -> TokenCache | None:
        return TokenCache(self._login) if self.settings.client_key else None

    @cached_property
    def _auth(self) -> BearerAuth:
        cache = self._token_cache
        return (
            BearerAuth(token=self.settings.token, log=self.log)
            if cache is None
            else BearerAuth(cache=cache, log=self.log)
        )

    def _secrets(self) -> tuple[str, ...]:
        s = self.__dict__.get("settings")
        if s is None:
            return ()
        # The exchanged access token is a credential too, for as long as it lives.
        cache = self.__dict__.get("_token_cache")
        current = cache.peek() if cache is not None else None
        return tuple(x for x in (s.token, s.client_secret, current) if x)

    def _login(self) -> tuple[str, float | None]:
        """Exchange the client credentials for an access token (called by the token cache, locked)."""
        s = self.settings
        url = f"{s.base_url}{LOGIN_PATH}"
        body = orjson.dumps({"clientKey": s.client_key, "clientSecret": s.client_secret})

        def attempt() -> tuple[str, float | None]:
            answer = self._post(url, body, auth=None)
            if answer.status_code in (400, 401, 403):
                raise EnsoAuthError(
                    f"Enso refused the client credentials of connection {self.enso_conn_id!r} "
                    f"(HTTP {answer.status_code}).",
                    status_code=answer.status_code,
                    body=self._scrub(answer.text),
                )
            self._answers.raise_unless_2xx(answer, "the token exchange")
            try:
                return access_token_from_login(answer.json())
            except ValueError as err:
                # No body kept: a login answer holds an access token, even one we could not use.
                raise Transient(
                    f"malformed login answer: {err}", status_code=answer.status_code, kind=EnsoAuthError
                ) from None

        self.log.debug("Exchanging client credentials for an access token at %s", url)
        return self.settings.policy.call(attempt, what="token exchange", log=self.log, sleep=self._sleep)

    # -- HTTP --------------------------------------------------------------------------------------------

    def get_conn(self) -> requests.Session:
        """
        Return this thread's session: keep-alive, one per thread so that senders never share one.

        ``requests.Session`` is not documented as thread-safe; a session per thread keeps each sender's
        connection warm without locking. Every request of the hook, login included, goes through it.
        """
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = new_session(self.settings)
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

    def _post(self, url: str, body: bytes, *, auth: BearerAuth | None) -> Answer:
        """One attempt: a POST under the deadline; anything but an answer is :class:`Transient`."""
        if auth is not None:
            # A token exchange, when one is due, runs before this attempt's deadline starts.
            auth.ready()
        try:
            return post(self.get_conn(), url, body, settings=self.settings, auth=auth)
        except NetworkError as err:
            raise Transient(err.reason, kind=EnsoConnectionError) from None
        except AnswerTooLarge as err:
            raise Transient(str(err), kind=EnsoResponseError) from None

    # -- the batch API -------------------------------------------------------------------------------

    def post_batch_body(self, body: bytes, *, sent: int) -> BatchResult:
        """
        Post one pre-encoded ``{"events": [...]}`` body, with retries, and parse Enso's answer.

        A 2xx body that is not the documented shape is retried like a 5xx: the request may or may not
        have been stored, and the deterministic eventIds make a resend safe where Enso dedupes.

        :param body: the encoded request body.
        :param sent: how many events the body carries.
        :raises EnsoAuthError: credentials refused.
        :raises EnsoRedirectError: a 3xx answer (never followed).
        :raises EnsoRequestError: the whole request refused with a 4xx (for example code 2003).
        :raises EnsoServerError: 408/425/429/5xx until retries ran out.
        :raises EnsoConnectionError: network failures and deadlines until retries ran out.
        :raises EnsoResponseError: malformed or oversized answers until retries ran out.
        """
        url = f"{self.settings.base_url}{EVENTS_PATH}"

        def attempt() -> BatchResult:
            answer = self._post(url, body, auth=self._auth)
            self._answers.raise_unless_2xx(answer, f"a batch of {sent} events")
            try:
                return self._scrub_records(parse_batch_response(orjson.loads(answer.content), sent=sent))
            except (orjson.JSONDecodeError, ResponseShapeError) as err:
                raise self._answers.malformed(
                    answer, f"malformed answer ({err})", EnsoResponseError
                ) from None

        return self.settings.policy.call(attempt, what="batch request", log=self.log, sleep=self._sleep)

    def _scrub_records(self, result: BatchResult) -> BatchResult:
        """Scrub credentials a server echoed into per-record errors: they reach reports, XCom and files."""
        if not any(self._scrub.finds(f"{r.error}{r.code}") for r in result.failed_records):
            return result
        records = tuple(
            replace(
                r, error=self._scrub(r.error), code=self._scrub(r.code) if isinstance(r.code, str) else r.code
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
        return self.post_batch_body(b'{"events":[' + b",".join(parts) + b"]}", sent=len(parts))

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
        (``statusCode`` 408/425/429/5xx inside a 200) are re-sent alone, ``record_retries`` rounds at
        most; those still undelivered are counted in ``report.undelivered``. Failed-record indexes are
        mapped back to the positions in ``events``.

        :param events: event mappings (field names as on the wire: ``CustomerEntityId``, ``metric``,
            ``value``, ``timestamp``, optional ``metadata``, ``eventId``, ``JobId``), or items already
            mapped by :class:`~enso_provider.events.EventMapper`. A mapping without ``eventId`` gets a
            deterministic one (see the eventId contract in the docs).
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
            were finished first, and the error carries the report so far.
        """
        if not dry_run:
            # Read the connection here: sender threads must not need Airflow's context.
            _ = self.settings
        delivery = Delivery(
            self,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            concurrency=concurrency,
            record_retries=record_retries,
            policy=None if dry_run else self.settings.policy,
            dry_run=dry_run,
            on_failure=on_failure,
            sleep=self._sleep,
            logger=logger or self.log,
        )
        return delivery.run(items)

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the URL and the credentials without creating any event, quickly (no retries).

        Posts an empty ``events`` array: Enso refuses it with code 2003 after authenticating, so a 400
        means reachable and authenticated, 401/403 means bad credentials, and a network error says what
        failed (refused, DNS, TLS, timeout, reset).
        """
        try:
            settings = self.settings
        except EnsoConfigError as err:
            return False, str(err)
        except Exception as err:
            return False, f"Cannot read connection {self.enso_conn_id!r}: {type(err).__name__}"
        quick = replace(settings, policy=replace(settings.policy, max_retries=0))
        self.__dict__["settings"] = quick
        try:
            answer = self._post(f"{settings.base_url}{EVENTS_PATH}", b'{"events":[]}', auth=self._auth)
            if answer.status_code == 400 or 200 <= answer.status_code < 300:
                return True, f"Connected to Enso at {settings.base_url} and authenticated."
            self._answers.raise_unless_2xx(answer, "the connection test")
            return False, f"Enso at {settings.base_url} answered HTTP {answer.status_code}."
        except Transient as err:
            if err.status_code is not None:
                message = f": {truncate(err.body, 200)}" if err.body else ""
                return False, f"Enso at {settings.base_url} answered {err.reason}{message}"
            return False, f"Cannot reach Enso at {settings.base_url}: {err.reason}"
        except EnsoError as err:
            return False, str(err)
        finally:
            # The quick check's "no retries" must not stay with a hook that then sends events.
            self.__dict__["settings"] = settings


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
