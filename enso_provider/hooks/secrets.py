"""Credentials as text: checked where they are read, and scrubbed, in every form a server may echo."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

#: What a scrubbed credential is replaced with.
MASK = "***"


def credential_problem(value: str) -> str | None:
    """
    Why ``value`` cannot go in an ``Authorization`` header, without showing it; None when it can.

    HTTP header values are Latin-1 without control characters: anything else would break the header
    or make ``http.client`` raise with the value in its message.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains a control character (a line break?)"
    if any(ord(c) > 255 for c in value):
        return "contains a character outside Latin-1, which an HTTP header cannot carry"
    return None


def echoed_forms(secret: str) -> set[str]:
    """``secret`` as a server may echo it: as is, JSON-escaped (``\\/``, ``\\uXXXX``) and URL-encoded."""
    forms = {secret}
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
    forms.add(quote(secret, safe=""))
    forms.add(quote_plus(secret, safe=""))
    forms.add(quote(secret))
    return {form for form in forms if form}


class Scrubber:
    """
    Removes every credential of a hook from text before it reaches a log, an exception, XCom or a file.

    :param secrets: returns the credentials in force now (the exchanged access token changes).
    """

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        self._secrets = secrets
        self._forms: dict[str, tuple[str, ...]] = {}

    def _all_forms(self) -> list[str]:
        forms: list[str] = []
        for secret in self._secrets():
            if secret not in self._forms:
                # Longest first, so that a form containing another is replaced whole.
                self._forms[secret] = tuple(sorted(echoed_forms(secret), key=len, reverse=True))
            forms.extend(self._forms[secret])
        return sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._all_forms():
            if form in text:
                text = text.replace(form, MASK)
        return text

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds any form of a credential."""
        return any(form in text for form in self._all_forms())
