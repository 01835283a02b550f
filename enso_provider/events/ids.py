"""
The eventId, version ``v2``: the canonical form of an event's content and its hash.

This module is the specification in code (``docs/event-ids.md`` is the same in prose). It uses
no JSON library: the canonical text is written here, by the rules below, so no upgrade of a
dependency can change an id.

- strings: the text as given (after the mapper's stripping of ids), in double quotes; ``"``,
  ``\\`` and the controls U+0000-U+001F escaped (``\\b \\t \\n \\f \\r`` short, the others
  ``\\u00xx`` in lowercase hex), everything else as is, UTF-8 encoded;
- numbers: the exact decimal value (a float by its shortest round-trip digits), so that 3, 3.0
  and ``Decimal("3.00")`` are one number, written as ECMAScript writes a number: no trailing
  zeros, no ``-0``, positional for 1e-7 < |x| < 1e21, else ``d.ddde+N`` / ``d.ddde-N``;
- ``true``, ``false``, ``null``; arrays in order; objects with keys sorted by code point;
- the content: the object of ``CustomerEntityId``, ``JobId`` (when set), ``metadata``,
  ``metric``, ``timestamp`` (the UTC instant as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``) and
  ``value``, in that (sorted) order, without whitespace;
- the id: ``ev_`` + the 32 hex digits of BLAKE2b-128, personalised ``enso-content-v1``, over the
  namespace's UTF-8 length (8 bytes, little-endian), the namespace, and the content; the N-th
  identical content of a run (N >= 2) gets the suffix ``-N``.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from itertools import repeat
from typing import Any

from enso_provider.events._occurrences import OccurrenceCounter

#: The derivation of this module; ``v1`` is the landed derivation (a hash of orjson's bytes).
VERSION = "v2"
VERSIONS = ("v1", "v2")
_M64 = (1 << 64) - 1
CONTENT_KIND = b"content-v1"
KEY_KIND = b"key-v1"
OWN_ID_KIND = b"own-id-v1"
_copy = type(hashlib.blake2b()).copy
_update = type(hashlib.blake2b()).update
_digest = type(hashlib.blake2b()).digest
#: Length of a generated id without suffix: ``ev_`` and 32 hex digits.
GENERATED_ID_LEN = 3 + 32

_SHORT = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
_ESCAPES = str.maketrans({chr(c): _SHORT.get(chr(c), f"\\u{c:04x}") for c in range(0x20)} | _SHORT)


class CanonicalError(ValueError):
    """A value that has no canonical form (non-finite number, unsupported type, lone surrogate)."""


# ---------------------------------------------------------------- scalars


def string(text: str) -> str:
    """The canonical (JSON string) form of ``text``."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + text.translate(_ESCAPES) + '"'


def decimal(value: Decimal) -> str:
    """
    The canonical form of a finite decimal number, by its exact value.

    :raises CanonicalError: for NaN and infinities.
    """
    text = str(value)
    if "E" not in text and "N" not in text and "I" not in text:  # positional, |x| >= 1e-6
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text == "-0":
            return "0"
        if len(text.lstrip("-").partition(".")[0]) <= 21:
            return text
    if not value.is_finite():
        raise CanonicalError(f"{value} is not a finite number")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    kept = "".join(map(str, digits)).rstrip("0")
    if not kept:
        return "0"
    exponent += len(digits) - len(kept)
    adjusted = exponent + len(kept) - 1
    if -7 < adjusted < 21:
        if exponent >= 0:
            body = kept + "0" * exponent
        elif -exponent < len(kept):
            body = kept[:exponent] + "." + kept[exponent:]
        else:
            body = "0." + "0" * (-exponent - len(kept)) + kept
    else:
        mantissa = kept[0] + ("." + kept[1:] if len(kept) > 1 else "")
        body = f"{mantissa}e{'+' if adjusted > 0 else '-'}{abs(adjusted)}"
    return "-" + body if sign else body


def number(value: int | float | Decimal) -> str:
    """
    The canonical form of a number: 3, 3.0 and ``Decimal("3.00")`` all give ``3``.

    :raises CanonicalError: for NaN and infinities.
    """
    kind = type(value)
    if kind is int:
        return str(value) if -(10**21) < value < 10**21 else decimal(Decimal(value))
    if isinstance(value, float) and kind is float:
        if value - value != 0.0:
            raise CanonicalError(f"{value!r} is not a finite number")
        text = repr(value)  # the shortest digits that read back as this float
        if text.endswith(".0") and len(text) <= 23:
            return "0" if value == 0 else text[:-2]
        if "e" not in text:
            return text
        return decimal(Decimal(text))
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not a number")
    if isinstance(value, int):
        return number(int(value))
    if isinstance(value, float):
        return number(float(value))
    return decimal(value)


# ---------------------------------------------------------------- metadata


def value(obj: Any, prepare: Callable[[Any], Any] | None = None, _depth: int = 0) -> str:
    """
    The canonical form of a JSON value (metadata): objects with sorted keys, exact numbers.

    :param obj: ``dict`` (string keys), ``list``/``tuple``, ``str``, ``int``, ``float``,
        ``Decimal``, ``bool`` or ``None``.
    :param prepare: turns any other value (and a dict with non-string keys) into those types;
        without it they raise.
    :raises CanonicalError: for values without a canonical form.
    """
    kind = type(obj)
    if kind is str:
        return string(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if kind is int or kind is float or kind is Decimal:
        if prepare is None or _metadata_number_as_is(obj):
            return number(obj)
    elif _depth > 250:
        raise CanonicalError("nested deeper than 250 levels")
    elif kind is dict and all(type(k) is str for k in obj):
        items = sorted(obj.items())
        return "{" + ",".join(f"{string(k)}:{value(v, prepare, _depth + 1)}" for k, v in items) + "}"
    elif kind is list or kind is tuple:
        return "[" + ",".join(value(v, prepare, _depth + 1) for v in obj) + "]"
    if prepare is None:
        raise CanonicalError(f"{kind.__name__} has no canonical form")
    return value(prepare(obj), None, _depth + 1)  # prepare gives plain values only


def _metadata_number_as_is(obj: int | float | Decimal) -> bool:
    # Metadata keeps JSON's limits: a non-finite number and an int beyond 64 bits go to prepare
    # (json_safe: null, and the int's text), as they did before.
    if isinstance(obj, Decimal):
        return obj.is_finite()
    if isinstance(obj, float):
        return obj - obj == 0.0
    return -(2**63) <= obj < 2**64  # prepare gives plain values only


def content(customer: str, job: str | None, metadata: str, metric: str, timestamp: str, amount: str) -> bytes:
    """
    The canonical content of an event (its JSON object without ``eventId``), UTF-8.

    :param customer: the CustomerEntityId.
    :param job: the JobId, or None.
    :param metadata: the canonical metadata object (:func:`value`).
    :param metric: the metric.
    :param timestamp: the UTC text.
    :param amount: the canonical value (:func:`number`).
    :raises UnicodeEncodeError: for text with lone surrogates.
    """
    head = f'{{"CustomerEntityId":{string(customer)},'
    if job is not None:
        head += f'"JobId":{string(job)},'
    return (
        f'{head}"metadata":{metadata},"metric":{string(metric)},"timestamp":"{timestamp}","value":{amount}}}'
    ).encode()


# ---------------------------------------------------------------- ids


def partition_key(identity: Any) -> str:
    """
    The namespace part of a mapped task instance: ``partition:`` + BLAKE2b-128 of the canonical
    form of what the partition is (its rendered SQL and parameters, or its arguments), so that
    reordering, adding or removing other partitions never changes its ids.

    :param identity: plain JSON values (dict with string keys, list, str, number, bool, None).
    :raises CanonicalError: when ``identity`` holds anything else.
    """
    text = value(identity).encode("utf-8", "surrogatepass")
    return "partition:" + hashlib.blake2b(text, digest_size=16, person=b"enso-partition").hexdigest()


def seed(kind: bytes, namespace: str) -> Any:
    """A BLAKE2b-128 hasher that has read ``namespace``: copied for each id of the run."""
    # Domain-separated (person) and length-prefixed, so no namespace/content pair can alias another.
    raw = namespace.encode("utf-8", "surrogatepass")
    hasher = hashlib.blake2b(digest_size=16, person=b"enso-" + kind)
    hasher.update(len(raw).to_bytes(8, "little"))
    hasher.update(raw)
    return hasher


def content_digest(namespace: str, content_bytes: bytes) -> str:
    """The hex digest of a content id, without a mapper (for tools and tests)."""
    hasher = seed(CONTENT_KIND, namespace)
    hasher.update(content_bytes)
    return hasher.hexdigest()


class EventIds:
    """
    The ids of one run, and how often each content or key occurred in it.

    :param namespace: what content ids are hashed with (DAG, task, interval, partition).
    :param key_namespace: what ``event_id_column`` keys are hashed with.
    """

    __slots__ = ("_content", "_key", "_own", "occurrences")

    def __init__(self, namespace: str, key_namespace: str) -> None:
        self._content = seed(CONTENT_KIND, namespace)
        self._key = seed(KEY_KIND, key_namespace)
        self._own = seed(OWN_ID_KIND, "")
        self.occurrences = OccurrenceCounter()

    def content_ids(self, contents: list[bytes]) -> list[str]:
        """
        The ids of events with these contents, in order: ``ev_<hash>``, then ``ev_<hash>-N`` for
        the N-th copy of a content in the run.

        :param contents: the canonical contents of the events.
        """
        # Each step is one C call mapped over the list: hashers, hashing, digests, counting.
        hashers = list(map(_copy, repeat(self._content, len(contents))))
        deque(map(_update, hashers, contents), maxlen=0)
        digests = list(map(_digest, hashers))
        fingerprints = map(int.from_bytes, digests, repeat("little"))  # type: ignore[arg-type]
        seen = self.occurrences.add_many(list(map(_M64.__and__, fingerprints)))
        hexes = list(map(bytes.hex, digests))
        if max(seen, default=1) == 1:
            return list(map("ev_".__add__, hexes))
        return ["ev_" + h if n == 1 else f"ev_{h}-{n}" for h, n in zip(hexes, seen, strict=True)]

    def key_id(self, key: str) -> tuple[str, bytes]:
        """``(eventId, digest)`` of an ``event_id_column`` key (counted by :meth:`count`)."""
        hasher = self._key.copy()
        hasher.update(key.encode("utf-8", "surrogatepass"))
        digest = hasher.digest()
        return "ev_" + digest.hex(), digest

    def own_digest(self, own: str) -> bytes:
        """The digest a row's own eventId is counted by."""
        hasher = self._own.copy()
        hasher.update(own.encode("utf-8", "surrogatepass"))
        return hasher.digest()

    def count(self, digest: bytes) -> int:
        """Count one occurrence of a key or own id; the occurrence number."""
        return self.occurrences.add(int.from_bytes(digest, "little") & _M64)
