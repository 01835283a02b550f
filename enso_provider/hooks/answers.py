"""Reading Enso's answers: only a 2xx is one; every other status becomes the error that says why."""

from __future__ import annotations

from typing import Any, NoReturn

import orjson

from enso_provider.exceptions import (
    EnsoAuthError,
    EnsoError,
    EnsoRedirectError,
    EnsoRequestError,
    EnsoResponseError,
    truncate,
)
from enso_provider.hooks.retry import Transient, is_transient_status, parse_retry_after
from enso_provider.hooks.secrets import Scrubber
from enso_provider.hooks.transport import Answer


class AnswerCheck:
    """
    Turns answers that are not a 2xx into typed errors, with every credential scrubbed from them.

    :param conn_id: the connection, named in errors.
    :param base_url: the API base URL, named in errors.
    :param scrub: the hook's scrubber.
    """

    def __init__(self, conn_id: str, base_url: str, scrub: Scrubber) -> None:
        self.conn_id = conn_id
        self.base_url = base_url
        self.scrub = scrub

    def raise_unless_2xx(self, answer: Answer, what: str) -> None:
        """Raise for every status but 2xx: :class:`Transient` where another attempt may help."""
        status = answer.status_code
        if 200 <= status < 300:
            return
        if status < 200:
            # http.client skips 100 Continue itself; any other 1xx where a final answer was due.
            raise self.malformed(
                answer, f"an informational HTTP {status} instead of an answer", EnsoResponseError
            )
        if status < 400:
            target = (
                f" to {truncate(self.scrub(_without_query(answer.location)), 200)}" if answer.location else ""
            )
            raise EnsoRedirectError(
                f"Enso at {self.base_url} answered {what} with a redirect (HTTP {status}{target}), which is "
                "never followed (the token must not travel elsewhere). Set the connection's Host to the "
                "API's final base URL.",
                status_code=status,
            )
        if is_transient_status(status):
            raise Transient(
                f"HTTP {status}",
                status_code=status,
                retry_after=parse_retry_after(answer.headers.get("Retry-After")),
                body=truncate(self.scrub(answer.text)),
                code=self.error_code(answer),
            )
        if status in (401, 403):
            raise EnsoAuthError(
                f"Enso refused the credentials of connection {self.conn_id!r} (HTTP {status}).",
                status_code=status,
                code=self.error_code(answer),
                body=self.scrub(answer.text),
            )
        self.raise_request_error(answer, what)

    def raise_request_error(self, answer: Answer, what: str) -> NoReturn:
        """The whole request refused for a reason that resending cannot fix."""
        code = self.error_code(answer)
        raise EnsoRequestError(
            f"Enso rejected {what} with HTTP {answer.status_code}"
            + (f" (code {code})" if code is not None else "")
            + f": {truncate(self.scrub(_error_message(answer)), 200)}",
            status_code=answer.status_code,
            code=code,
            body=self.scrub(answer.text),
        )

    def malformed(self, answer: Answer, reason: str, kind: type[EnsoError]) -> Transient:
        """An answer that is not what was asked for: retried, then raised as ``kind``."""
        return Transient(
            reason, status_code=answer.status_code, body=truncate(self.scrub(answer.text)), kind=kind
        )

    def error_code(self, answer: Answer) -> int | str | None:
        """The API's code in an error answer, if any (scrubbed: it lands in messages, reports and XCom)."""
        body = _json_or_none(answer)
        if not isinstance(body, dict):
            return None
        for source in (body, body.get("data"), body.get("error")):
            if isinstance(source, dict) and source.get("code") is not None:
                code = source["code"]
                if isinstance(code, int) and not isinstance(code, bool):
                    return code
                return self.scrub(str(code))
        return None


def _without_query(url: str | None) -> str:
    return (url or "").split("?", 1)[0].split("#", 1)[0]


def _json_or_none(answer: Answer) -> Any:
    try:
        return orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        return None


def _error_message(answer: Answer) -> str:
    body = _json_or_none(answer)
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return answer.text
