"""
Faults a test schedules on upcoming requests, and how each one is answered.

A fault is queued with :meth:`FaultQueue.add` and consumed by the requests of
one endpoint in arrival order: ``after`` requests pass untouched first, then
the next ``count`` requests get the fault. Faults act like a gateway in front
of the API: before authentication and before the body is read as JSON, and a
faulted request never stores its events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from enso_provider.testing.server import Response, reason_phrase

#: Fault kinds and the options each one takes.
KINDS: dict[str, frozenset[str]] = {
    # answer with this status (429, 500, 502, 503, ...): a JSON error, an HTML
    # gateway page (html=True) or the given body (body=..., content_type=...)
    "status": frozenset({"status", "retry_after", "html", "body", "content_type"}),
    # wait ``seconds`` (past the client's read timeout), then answer ``status`` (504)
    "hang": frozenset({"seconds", "status"}),
    # close the connection with a TCP reset and no response
    "reset": frozenset(),
    # answer 200 with a body that is not the documented shape (a variant, or body=...)
    "malformed": frozenset({"variant", "body", "content_type"}),
}

#: Bodies of a ``malformed`` fault, by ``variant``.
MALFORMED_BODIES: dict[str, tuple[str, bytes]] = {
    "truncated": ("application/json", b'{"status":"success","message":"Success","data":{"summ'),
    "not_json": ("text/plain", b"OK"),
    "wrong_shape": ("application/json", b'{"status":"success","data":null}'),
    "empty": ("application/json", b""),
}

#: Endpoints a fault can be scheduled on.
ENDPOINTS = frozenset({"events", "login"})

_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class Fault:
    """
    One scheduled fault.

    :param kind: one of :data:`KINDS`.
    :param count: how many requests it still applies to.
    :param after: how many requests still pass before it applies.
    :param options: the kind's options (see :data:`KINDS`).
    """

    kind: str
    count: int = 1
    after: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def response(self) -> Response:
        """The response this fault answers with (for ``hang``, once the wait is over)."""
        opts = self.options
        if self.kind == "reset":
            return Response(reset=True)
        custom = opts.get("body")
        if isinstance(custom, str):
            custom = custom.encode()
        if self.kind == "malformed":
            content_type, body = MALFORMED_BODIES[opts.get("variant", "truncated")]
            if custom is not None:
                body = custom
            return Response(200, body, opts.get("content_type", content_type))
        status = int(opts.get("status", 504))
        reason = reason_phrase(status)
        headers = []
        if opts.get("retry_after") is not None:
            headers.append(("Retry-After", str(opts["retry_after"])))
        if custom is not None:
            return Response(status, custom, opts.get("content_type", "application/json"), headers)
        if opts.get("html"):
            page = _HTML_PAGE.format(status=status, reason=reason).encode()
            return Response(status, page, "text/html", headers)
        body = orjson.dumps({"status": "error", "message": reason, "statusCode": status})
        return Response(status, body, headers=headers)


def make_fault(kind: str, count: int = 1, after: int = 0, **options: Any) -> Fault:
    """
    Check a fault's arguments and build it.

    :param kind: one of :data:`KINDS`.
    :param count: how many consecutive requests get it (at least 1).
    :param after: how many upcoming requests pass untouched first.
    :param options: the kind's options.
    :raises ValueError: on an unknown kind or option, or a bad count.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
    unknown = set(options) - KINDS[kind]
    if unknown:
        raise ValueError(
            f"fault {kind!r} takes no option(s) {sorted(unknown)}; it takes {sorted(KINDS[kind])}"
        )
    if count < 1 or after < 0:
        raise ValueError("count must be >= 1 and after >= 0")
    if kind == "status" and "status" not in options:
        raise ValueError("fault 'status' needs status=<HTTP status code>")
    if kind == "malformed" and options.get("variant", "truncated") not in MALFORMED_BODIES:
        raise ValueError(f"unknown malformed variant; expected one of {sorted(MALFORMED_BODIES)}")
    if kind == "hang":
        options.setdefault("seconds", 30.0)
    return Fault(kind, count, after, dict(options))


class FaultQueue:
    """The faults scheduled on one endpoint, consumed in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """
        Schedule a fault.

        :param fault: the fault, from :func:`make_fault`.
        """
        with self._lock:
            self._faults.append(fault)

    def take(self) -> Fault | None:
        """
        Account for one arriving request and return the fault it gets, if any.

        Every fault still waiting counts the request against its ``after``; the
        oldest fault that is due applies. Faults due at the same time apply one
        after another rather than at once.
        """
        if not self._faults:  # the common case, without the lock
            return None
        with self._lock:
            chosen = None
            for fault in self._faults:
                if fault.after > 0:
                    fault.after -= 1
                elif chosen is None:
                    chosen = fault
            if chosen is None:
                return None
            chosen.count -= 1
            if chosen.count == 0:
                self._faults.remove(chosen)
            return Fault(chosen.kind, 1, 0, chosen.options)

    def pending(self) -> int:
        """How many faulted requests are still scheduled."""
        with self._lock:
            return sum(f.count for f in self._faults)

    def clear(self) -> None:
        """Drop every scheduled fault."""
        with self._lock:
            self._faults.clear()
