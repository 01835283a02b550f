"""
Pipelined first attempts: the caller's thread posts a batch and reads its answer later.

Sender threads cost the mapping thread its speed: each answer a thread wakes up for needs the GIL
back from a thread that is busy mapping. Here the thread that maps also sends: a request is written
on one of ``slots`` keep-alive connections and its answer is read only when that connection is needed
again, by which time it has arrived. Only a clean 200 is handled here; anything else (an error
status, a network error, a malformed body) goes to the hook's retry path with the same body, so the
retry rules live in one place.
"""

from __future__ import annotations

import http.client
import os
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH

if TYPE_CHECKING:
    from enso_provider.hooks.enso import EnsoHook


class PipelinedPoster:
    """
    ``slots`` HTTP/1.1 connections, each with at most one request in flight.

    :param hook: the hook whose settings, session headers and credentials are used.
    :param url: the batch endpoint.
    :param slots: connections, i.e. the most requests in flight.
    """

    def __init__(self, hook: EnsoHook, url: str, slots: int) -> None:
        self.hook = hook
        parts = urlsplit(url)
        self.path = parts.path or "/"
        if parts.query:
            self.path = f"{self.path}?{parts.query}"
        self.host = parts.hostname or ""
        self.https = parts.scheme == "https"
        self.port = parts.port or (443 if self.https else 80)
        session = hook.get_conn()
        self.headers = {str(k): str(v) for k, v in session.headers.items()}
        # Answers are read here as sent: a compressing proxy must not compress them.
        self.headers["Accept-Encoding"] = "identity"
        self.timeout = hook.settings.timeout[1]
        verify = True if session.verify is None else session.verify
        self.context = _ssl_context(verify) if self.https else None
        self._connections: list[http.client.HTTPConnection | None] = [None] * slots
        self.generations: list[int] = [0] * slots

    @classmethod
    def open(cls, hook: EnsoHook, url: str, slots: int) -> PipelinedPoster | None:
        """A pipeline for ``url``, or None when a proxy applies (the session's pools handle those)."""
        if requests.utils.select_proxy(url, hook.get_conn().proxies):
            return None
        return cls(hook, url, slots)

    def _connection(self, slot: int) -> http.client.HTTPConnection:
        conn = self._connections[slot]
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._connections[slot] = conn
        return conn

    def send(self, slot: int, body: bytes) -> None:
        """Write one request on ``slot``'s connection (its previous answer must have been read)."""
        authorization, self.generations[slot] = self.hook._authorization()
        headers = dict(self.headers)
        headers["Authorization"] = authorization
        try:
            self._connection(slot).request("POST", self.path, body=body, headers=headers)
        except BaseException:
            self.drop(slot)
            raise

    def receive(self, slot: int) -> tuple[int, bytes, http.client.HTTPMessage]:
        """Read ``slot``'s answer: status, body, headers."""
        conn = self._connection(slot)
        try:
            response = conn.getresponse()
            content = response.read()
        except BaseException:
            self.drop(slot)
            raise
        return response.status, content, response.headers  # case-insensitive look-ups

    def drop(self, slot: int) -> None:
        """Close ``slot``'s connection (after an error; the next request opens a new one)."""
        conn = self._connections[slot]
        self._connections[slot] = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for slot in range(len(self._connections)):
            self.drop(slot)


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS settings the session would use: its CA bundle, or no verification when turned off."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str) and os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    cafile = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
    return ssl.create_default_context(cafile=cafile)
