"""Typed errors raised by the Enso provider.

Every error carries what a caller needs to decide what to do next (``status_code``,
the API's ``code``, a truncated ``body``) and never a credential: bodies are
truncated and scrubbed before they are stored on the exception.
"""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowException

from enso_provider.version_compat import AirflowFailException

#: Longest response body kept on an exception or in a log line.
BODY_LIMIT = 500


def truncate(text: str | bytes | None, limit: int = BODY_LIMIT) -> str:
    """Return ``text`` as a string of at most ``limit`` characters, marked when cut."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


class EnsoError(AirflowException):
    """
    Base class of every error the provider raises about Enso.

    :param message: what went wrong, for a person.
    :param status_code: the HTTP status of the response, if there was one.
    :param code: the API's error code (a number or a string), if the body had one.
    :param body: the response body, truncated.
    """

    # AirflowException declares an HTTPStatus here; ours is the status Enso answered, if any.
    status_code: int | None  # type: ignore[assignment]

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: int | str | None = None,
        body: str | bytes | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.body = truncate(body)
        #: The delivery report up to the failure, when the error stopped a delivery.
        self.report: Any = None
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments would be lost by the default pickling.
        return (
            _rebuild,
            (type(self), self.args[0] if self.args else "", self.status_code, self.code, self.body),
        )


def _rebuild(
    cls: type[EnsoError], message: str, status_code: int | None, code: int | str | None, body: str
) -> EnsoError:
    return cls(message, status_code=status_code, code=code, body=body)


class EnsoConfigError(EnsoError, AirflowFailException):
    """The connection or the arguments cannot work: no retry can help, so Airflow does not retry it."""


class EnsoRedirectError(EnsoConfigError):
    """
    Enso answered with a redirect (3xx). It is never followed: the token must not travel to another
    address, and a batch posted to a moved URL was not stored. The Host is to be corrected, so Airflow
    does not retry it.
    """


class EnsoAuthError(EnsoError):
    """Enso refused the credentials (401/403), or the token exchange failed."""


class EnsoRequestError(EnsoError):
    """Enso rejected the whole request (a 4xx other than auth and 429): resending the same cannot help."""


class EnsoServerError(EnsoError):
    """Enso (or a gateway before it) failed with 5xx or 429 and retries ran out."""


class EnsoConnectionError(EnsoError):
    """The network failed (refused, reset, timed out) and retries ran out."""


class EnsoResponseError(EnsoError):
    """Enso answered 2xx with a body that is not the documented shape."""


class EnsoDeliveryError(EnsoError):
    """A delivery ended outside the task's failure policy (raised by the operators)."""


class EnsoUndeliveredError(EnsoError):
    """
    Some events stayed undelivered after every retry (Enso failed them transiently): the task is to be
    retried, and sends them again under the same eventIds.
    """

    def __init__(self, message: str, *, report: Any = None) -> None:
        super().__init__(message)
        self.report = report
