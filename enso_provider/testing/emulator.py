"""
EnsoEmulator: a local server that speaks the Enso API, for tests, demos and benchmarks.

It answers ``POST /events/batch`` and ``POST /auth/system-login`` the way the
API reference documents, checks each record like the API and its storage do,
and lets a test schedule faults (error statuses, hangs, connection resets,
malformed bodies, per-record transient failures, token expiry). It imports
neither Airflow nor anything else heavy: the standard library and ``orjson``.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from enso_provider.testing import validation as v
from enso_provider.testing.faults import ENDPOINTS, Fault, FaultQueue, make_fault
from enso_provider.testing.server import HTTPServer, Request, Response
from enso_provider.testing.stats import Counters, EmulatorStats
from enso_provider.testing.tokens import mint_token

_JSON = "application/json"
_EVENTS_REQUIRED = orjson.dumps(
    {
        "status": "error",
        "message": v.MSG_EVENTS_REQUIRED,
        "code": v.CODE_EVENTS_REQUIRED,
        "statusCode": 400,
    }
)
_OK = b'{"status":"success"}'


def _error(status: int, message: str, **fields: Any) -> Response:
    body = orjson.dumps({"status": "error", "message": message, "statusCode": status, **fields})
    headers = [("WWW-Authenticate", 'Bearer realm="enso"')] if status == 401 else []
    return Response(status, body, _JSON, headers)


class EnsoEmulator:
    """
    A local Enso API on ``127.0.0.1``, served by a background thread.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with EnsoEmulator(customers=["c1", "c2"], token="test-token") as enso:
            os.environ.update(enso.env())  # AIRFLOW_CONN_ENSO_DEFAULT
            ...
            assert len(enso.events) == 2

    :param customers: the customer entity ids that exist.
    :param any_customer: every non-empty customer entity id exists (``customers`` is then ignored
        by the checks): for tests whose rows name customers the test does not know in advance.
    :param token: a static Bearer token (an API key) that is always accepted; a
        list for several, ``None`` for none.
    :param client_key: the client key ``POST /auth/system-login`` accepts.
    :param client_secret: the client secret that goes with ``client_key``.
    :param token_ttl: lifetime in seconds of a token issued by login.
    :param store_events: keep every stored event (``False``: only their ids and
        counts, for benchmarks with millions of events).
    :param host: the address to bind.
    :param port: the port to bind; 0 picks a free one.
    :param latency: seconds added to every ``/events/batch`` request.
    :param max_batch_events: answer 413 to a batch with more events (``None``: no limit).
    :param max_body_bytes: answer 413 to a larger ``/events/batch`` body (``None``: no limit).
    :param organisation_id: the organisation named in storage error messages.
    :param clock: the emulator's notion of now, in seconds since the epoch (a test
        can pass a fake clock to expire tokens without waiting).
    """

    def __init__(
        self,
        customers: Iterable[str] = (),
        token: str | Iterable[str] | None = "test-token",
        client_key: str | None = None,
        client_secret: str | None = None,
        token_ttl: float = 3600,
        store_events: bool = True,
        *,
        any_customer: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        max_batch_events: int | None = None,
        max_body_bytes: int | None = None,
        organisation_id: str = "org_emulator",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (client_key is None) != (client_secret is None):
            raise ValueError("client_key and client_secret go together")
        self.any_customer = any_customer
        self.host = host
        self.port = port
        self.token_ttl = token_ttl
        self.store_events = store_events
        self.max_batch_events = max_batch_events
        self.max_body_bytes = max_body_bytes
        self.organisation_id = organisation_id
        self._clock = clock
        self._client_key = client_key
        self._client_secret = client_secret
        self._customers: set[str] = set()
        self._static_tokens: list[str] = []
        # Issued tokens and when each stops being accepted (by self._clock).
        self._issued: dict[str, float] = {}
        self._signing_key = secrets.token_bytes(32)
        self._latency = float(latency)

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Each stored event as JSON bytes: bytes are not tracked by the garbage collector, so holding
        # ~600k events costs no GIL pauses while serving and no long teardown (dicts: seconds each).
        self._events: list[bytes] = []
        self._ids: set[str] = set()
        self._counters = Counters()
        # timestamp string -> whether the storage can parse it (see TIMESTAMP_CACHE_LIMIT)
        self._timestamp_verdicts: dict[str, bool] = {}
        self._faults = {endpoint: FaultQueue() for endpoint in ENDPOINTS}
        # eventId -> [times still to fail, statusCode]
        self._record_faults: dict[str, list[int]] = {}

        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/events/batch"): self._post_events,
            ("POST", "/auth/system-login"): self._post_login,
            ("GET", "/_emulator/events"): self._get_events,
            ("GET", "/_emulator/stats"): self._get_stats,
            ("POST", "/_emulator/reset"): self._post_reset,
            ("POST", "/_emulator/faults"): self._post_faults,
            ("POST", "/_emulator/customers"): self._post_customers,
            ("POST", "/_emulator/expire-tokens"): self._post_expire_tokens,
        }

        self.add_customers(*customers)
        if isinstance(token, str):
            self.add_token(token)
        elif token is not None:
            for each in token:
                self.add_token(each)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> EnsoEmulator:
        """Bind the port and start serving in a background thread; return ``self``."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        server = HTTPServer((self.host, self.port), self._dispatch, self._on_connection)
        self.port = server.server_address[1]
        self._server = server
        # stop() waits up to one poll interval: keep it short, fixtures stop per test.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="enso-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: end open connections and hanging requests, release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> EnsoEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (the port is known once started)."""
        return f"http://{self.host}:{self.port}"

    # -- configuration -------------------------------------------------------------

    def add_customers(self, *customer_ids: str) -> None:
        """
        Make customer entities known.

        :param customer_ids: the ``CustomerEntityId`` values to accept.
        """
        for customer_id in customer_ids:
            if not isinstance(customer_id, str) or not customer_id:
                raise ValueError("a customer entity id is a non-empty string")
        with self._lock:
            self._customers.update(customer_ids)

    def remove_customers(self, *customer_ids: str) -> None:
        """
        Forget customer entities (their events then fail with 2002).

        :param customer_ids: the ``CustomerEntityId`` values to forget.
        """
        with self._lock:
            self._customers.difference_update(customer_ids)

    @property
    def customers(self) -> frozenset[str]:
        """The known customer entity ids."""
        return frozenset(self._customers)

    def add_token(self, token: str) -> None:
        """
        Accept another static Bearer token (an API key).

        :param token: the token.
        """
        if not token:
            raise ValueError("a token is a non-empty string")
        with self._lock:
            if token not in self._static_tokens:
                self._static_tokens.append(token)

    @property
    def has_token(self) -> bool:
        """Whether a static token is configured (so ``connection_json(auth="token")`` works)."""
        return bool(self._static_tokens)

    def set_latency(self, seconds: float) -> None:
        """
        Add a fixed delay to every ``/events/batch`` request from now on.

        :param seconds: the delay; 0 for none.
        """
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._latency = float(seconds)

    # -- fault injection -----------------------------------------------------------

    def inject(
        self, kind: str, count: int = 1, after: int = 0, *, endpoint: str = "events", **opts: Any
    ) -> None:
        """
        Schedule a fault on upcoming requests (thread-safe).

        Faults apply in arrival order, like a gateway in front of the API: before
        authentication, and a faulted request never stores its events.

        :param kind: ``"status"`` (options ``status``, ``retry_after``, ``html``, or
            ``body`` and ``content_type`` for a body of your own),
            ``"hang"`` (``seconds``, default 30, then answers ``status``, default 504),
            ``"reset"`` (the connection is reset, no response) or ``"malformed"``
            (a 200 whose body is not the documented shape; ``variant`` is one of
            ``truncated`` (default), ``not_json``, ``wrong_shape``, ``empty``; or ``body``).
        :param count: how many consecutive requests get the fault.
        :param after: how many upcoming requests pass untouched first.
        :param endpoint: ``"events"`` (``POST /events/batch``) or ``"login"``
            (``POST /auth/system-login``).
        :param opts: the kind's options.
        :raises ValueError: on an unknown kind, option or endpoint.
        """
        if endpoint not in self._faults:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(self._faults)}")
        self._faults[endpoint].add(make_fault(kind, count, after, **opts))

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: str | int | None = None,
        html: bool = False,
        after: int = 0,
    ) -> None:
        """
        Answer the next ``n`` batch requests with an error status.

        :param n: how many requests.
        :param status: the HTTP status (429, 500, 502, 503, ...).
        :param retry_after: a ``Retry-After`` header: seconds or an HTTP-date.
        :param html: answer with an HTML gateway page instead of JSON.
        :param after: how many upcoming requests pass untouched first.
        """
        self.inject("status", n, after, status=status, retry_after=retry_after, html=html)

    def hang_next(self, n: int = 1, seconds: float = 30.0, after: int = 0) -> None:
        """
        Hold the next ``n`` batch requests for ``seconds`` (then 504), storing nothing.

        :param n: how many requests.
        :param seconds: how long to wait before answering.
        :param after: how many upcoming requests pass untouched first.
        """
        self.inject("hang", n, after, seconds=seconds)

    def reset_next(self, n: int = 1, after: int = 0) -> None:
        """
        Reset the connection of the next ``n`` batch requests, without a response.

        :param n: how many requests.
        :param after: how many upcoming requests pass untouched first.
        """
        self.inject("reset", n, after)

    def malformed_next(self, n: int = 1, variant: str = "truncated", after: int = 0) -> None:
        """
        Answer the next ``n`` batch requests 200 with a body that is not the documented shape.

        :param n: how many requests.
        :param variant: ``truncated``, ``not_json``, ``wrong_shape`` or ``empty``.
        :param after: how many upcoming requests pass untouched first.
        """
        self.inject("malformed", n, after, variant=variant)

    def fail_records(self, event_ids: Iterable[str], status_code: int = 503, times: int = 1) -> None:
        """
        Make records fail transiently inside a 200, then succeed.

        The next ``times`` times a record with one of these ``eventId`` values
        arrives (valid otherwise), it is listed in ``failedRecords`` with code
        ``"transient_failure"`` and this ``statusCode``, and not stored.

        :param event_ids: the ``eventId`` values.
        :param status_code: the record's ``statusCode`` in ``failedRecords``.
        :param times: how many times each record fails before it succeeds.
        """
        if isinstance(event_ids, str):
            event_ids = [event_ids]
        with self._lock:
            for event_id in event_ids:
                self._record_faults[event_id] = [times, status_code]

    def expire_tokens(self) -> None:
        """Invalidate every token issued by ``/auth/system-login`` so far (static tokens stay)."""
        with self._lock:
            self._issued.clear()

    def pending_faults(self) -> int:
        """How many faulted requests are still scheduled, all endpoints together."""
        return sum(queue.pending() for queue in self._faults.values())

    def clear_faults(self) -> None:
        """Drop every scheduled fault and record failure."""
        for queue in self._faults.values():
            queue.clear()
        with self._lock:
            self._record_faults.clear()

    # -- inspection ----------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """
        The stored events in arrival order, one per ``eventId`` (a copy).

        Each is the event as sent, with ``jobId`` stored as ``JobId``. Empty when
        ``store_events`` is off.
        """
        with self._lock:
            stored = list(self._events)
        return [orjson.loads(event) for event in stored]

    @property
    def event_ids(self) -> set[str]:
        """The ``eventId`` of every stored event (a copy)."""
        with self._lock:
            return set(self._ids)

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._counters.snapshot(len(self._ids))

    def reset(self) -> None:
        """Clear stored events, statistics and pending faults; keep the configuration."""
        self.clear_faults()
        with self._lock:
            self._events.clear()
            self._ids.clear()
            self._counters = Counters()

    # -- Airflow connection --------------------------------------------------------

    def connection_json(self, auth: str = "token", **extra: Any) -> str:
        """
        Return an Airflow connection, as JSON, that points at this emulator.

        :param auth: ``"token"`` (the first static token as the password) or
            ``"client_credentials"`` (the client key as login, the secret as password).
        :param extra: the connection's extras (e.g. ``timeout=5``).
        :raises ValueError: when that kind of credential is not configured.
        """
        conn: dict[str, Any] = {"conn_type": "enso", "host": self.url}
        if auth == "token":
            if not self._static_tokens:
                raise ValueError("no static token configured; pass token=... or use client_credentials")
            conn["password"] = self._static_tokens[0]
        elif auth == "client_credentials":
            if self._client_key is None:
                raise ValueError("no client credentials configured; pass client_key= and client_secret=")
            conn["login"] = self._client_key
            conn["password"] = self._client_secret
        else:
            raise ValueError("auth is 'token' or 'client_credentials'")
        if extra:
            conn["extra"] = extra
        return orjson.dumps(conn).decode()

    def env(self, conn_id: str = "enso_default", auth: str = "token", **extra: Any) -> dict[str, str]:
        """
        Return ``{"AIRFLOW_CONN_<CONN_ID>": <connection JSON>}``, to update ``os.environ`` with.

        :param conn_id: the connection id.
        :param auth: as for :meth:`connection_json`.
        :param extra: as for :meth:`connection_json`.
        """
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(auth, **extra)}

    def __repr__(self) -> str:
        # Never the tokens or the secret.
        state = "running" if self.running else "stopped"
        known = "any customer" if self.any_customer else f"{len(self._customers)} customers"
        return f"<EnsoEmulator {self.url} {state}, {known}>"

    # -- request handling ----------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        handler = self._routes.get((request.method, request.path))
        if handler is not None:
            return handler(request)
        if any(path == request.path for _, path in self._routes):
            return _error(405, "Method Not Allowed")
        return _error(404, "Not Found")

    def _on_connection(self) -> None:
        with self._lock:
            self._counters.connections += 1

    def _count(self, response: Response) -> Response:
        with self._lock:
            self._counters.responses[response.status] += 1
            if response.status == 401:
                self._counters.auth_failures += 1
        return response

    def _apply_fault(self, fault: Fault) -> Response:
        with self._lock:
            self._counters.faults[fault.kind] += 1
        if fault.kind == "hang" and self._stopping.wait(float(fault.options["seconds"])):
            return Response(reset=True)  # stopping: do not hold the shutdown up
        response = fault.response()
        if response.reset:
            return response
        return self._count(response)

    def _authorised(self, request: Request) -> Response | None:
        """Return a 401 response unless the request carries a token that is accepted now."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _error(401, "Missing Bearer token")
        if token in self._static_tokens:
            return None
        expires_at = self._issued.get(token)
        if expires_at is None:
            return _error(401, "Invalid token")
        if self._clock() >= expires_at:
            return _error(401, "Token expired")
        return None

    def _post_events(self, request: Request) -> Response:
        with self._lock:
            self._counters.requests += 1
            self._counters.batch_requests += 1
        if self._latency and self._stopping.wait(self._latency):
            return Response(reset=True)
        fault = self._faults["events"].take()
        if fault is not None:
            return self._apply_fault(fault)
        denied = self._authorised(request)
        if denied is not None:
            return self._count(denied)
        if self.max_body_bytes is not None and len(request.body) > self.max_body_bytes:
            return self._count(_error(413, "Payload Too Large"))
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            payload = None
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events:
            return self._count(Response(400, _EVENTS_REQUIRED))
        if self.max_batch_events is not None and len(events) > self.max_batch_events:
            return self._count(_error(413, f"Too many events in one batch (limit {self.max_batch_events})"))
        body = orjson.dumps(self._ingest(events))
        return self._count(Response(200, body))

    def _ingest(self, events: list[Any]) -> dict[str, Any]:
        """Check, deduplicate and store one batch; return the documented response."""
        # Failures are listed like the API does: request validation first, then
        # what the storage rejected, each in index order (the reference's [2, 0, 1]).
        rejected: list[dict[str, Any]] = []
        unparsable: list[int] = []
        transient: list[dict[str, Any]] = []
        accepted = duplicates = 0
        with self._lock:
            customers = self._customers
            any_customer = self.any_customer
            verdicts = self._timestamp_verdicts
            if len(verdicts) > v.TIMESTAMP_CACHE_LIMIT:
                verdicts.clear()
            timestamp_is_valid = v.timestamp_is_valid
            record_faults = self._record_faults
            ids = self._ids
            stored = self._events
            store = self.store_events
            dumps = orjson.dumps
            for index, event in enumerate(events):
                if type(event) is not dict:
                    rejected.append(_failure(index, v.MSG_INVALID_EVENT, v.CODE_INVALID_EVENT, 400))
                    continue
                get = event.get
                customer = get("CustomerEntityId")
                if type(customer) is not str or (
                    customer not in customers and not (any_customer and customer)
                ):
                    if type(customer) is str and customer:
                        rejected.append(_failure(index, v.MSG_ENTITY_NOT_FOUND, v.CODE_ENTITY_NOT_FOUND, 404))
                    else:
                        rejected.append(_failure(index, v.MSG_ENTITY_REQUIRED, v.CODE_ENTITY_REQUIRED, 400))
                    continue
                metric = get("metric")
                if type(metric) is not str or not metric:
                    rejected.append(_failure(index, v.MSG_METRIC_REQUIRED, v.CODE_METRIC_REQUIRED, 400))
                    continue
                value: Any = get("value")
                # Inlined value_is_valid: a finite int or float, never a bool.
                kind = type(value)
                if kind is not int and (kind is not float or value - value != 0.0):
                    rejected.append(_failure(index, v.MSG_INVALID_VALUE, v.CODE_INVALID_VALUE, 400))
                    continue
                timestamp = get("timestamp")
                if type(timestamp) is not str:
                    unparsable.append(index)
                    continue
                verdict = verdicts.get(timestamp)
                if verdict is None:
                    verdict = verdicts[timestamp] = timestamp_is_valid(timestamp)
                if not verdict:
                    unparsable.append(index)
                    continue
                event_id = get("eventId")
                if type(event_id) is not str or not event_id:
                    # Documented: without an id, one is derived from these fields,
                    # so identical events sent without ids merge into one.
                    event_id = f"~{customer}|{metric}|{value!r}|{timestamp}"
                elif record_faults and event_id in record_faults:
                    fault = record_faults[event_id]
                    fault[0] -= 1
                    if fault[0] <= 0:
                        del record_faults[event_id]
                    transient.append(_failure(index, v.MSG_TRANSIENT, v.CODE_TRANSIENT, fault[1]))
                    continue
                accepted += 1
                if event_id in ids:
                    duplicates += 1
                    continue
                ids.add(event_id)
                if store:
                    if "jobId" in event:
                        job_id = event.pop("jobId")
                        event.setdefault("JobId", job_id)
                    stored.append(dumps(event))

            failed = rejected
            nan_timestamps = 0
            for index in unparsable:
                event = events[index]
                nan_timestamps += "NaN" in str(event.get("timestamp"))
                message = v.storage_parse_error(event, self.organisation_id)
                failed.append(_failure(index, message, v.CODE_STORAGE_PARSE, 400))
            failed.extend(transient)

            counters = self._counters
            counters.batches += 1
            counters.events_received += len(events)
            counters.events_accepted += accepted
            counters.events_failed += len(failed)
            counters.duplicates += duplicates
            counters.nan_timestamps += nan_timestamps
            counters.largest_batch = max(counters.largest_batch, len(events))

        return {
            "status": "success",
            "message": "Success",
            "data": {
                "summary": {"success": accepted, "failed": len(failed), "total": len(events)},
                "failedRecords": failed,
            },
        }

    def _post_login(self, request: Request) -> Response:
        with self._lock:
            self._counters.requests += 1
        fault = self._faults["login"].take()
        if fault is not None:
            return self._apply_fault(fault)
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return self._count(_error(400, "clientKey and clientSecret are required"))
        key, secret = payload.get("clientKey"), payload.get("clientSecret")
        if not isinstance(key, str) or not isinstance(secret, str):
            return self._count(_error(400, "clientKey and clientSecret are required"))
        if (
            self._client_key is None
            or self._client_secret is None
            or not hmac.compare_digest(key.encode(), self._client_key.encode())
            or not hmac.compare_digest(secret.encode(), self._client_secret.encode())
        ):
            return self._count(_error(401, "Invalid client credentials"))
        now = self._clock()
        expires_at = now + self.token_ttl
        token = mint_token(self._signing_key, now, expires_at)
        with self._lock:
            if len(self._issued) >= 1000:  # a long run that logs in often stays bounded
                self._issued = {t: exp for t, exp in self._issued.items() if exp > now}
            self._issued[token] = expires_at
            self._counters.logins += 1
        body = orjson.dumps({"status": "success", "message": "Success", "data": {"accessToken": token}})
        return self._count(Response(200, body))

    # -- admin endpoints (no auth, not counted) ------------------------------------

    def _get_events(self, request: Request) -> Response:
        with self._lock:
            stored = list(self._events)
        return Response(200, b'{"count":%d,"events":[%b]}' % (len(stored), b",".join(stored)))

    def _get_stats(self, request: Request) -> Response:
        return Response(200, orjson.dumps(self.stats.as_dict(), option=orjson.OPT_NON_STR_KEYS))

    def _post_reset(self, request: Request) -> Response:
        self.reset()
        return Response(200, _OK)

    def _post_faults(self, request: Request) -> Response:
        # {"kind": "status", "count": 2, "after": 0, "status": 503, ...}: same as inject().
        try:
            spec = orjson.loads(request.body)
            self.inject(**spec)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return _error(400, f"Bad fault: {exc}")
        return Response(200, _OK)

    def _post_customers(self, request: Request) -> Response:
        try:
            customers = orjson.loads(request.body)["customers"]
            self.add_customers(*customers)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return _error(400, f"Bad customers: {exc}")
        return Response(200, _OK)

    def _post_expire_tokens(self, request: Request) -> Response:
        self.expire_tokens()
        return Response(200, _OK)


def _failure(index: int, error: str, code: int | str, status_code: int) -> dict[str, Any]:
    return {"index": index, "error": error, "code": code, "statusCode": status_code}
