"""
The eventId: a content id (hash of the namespace and the event's content, with an occurrence
suffix for identical content), a key id (hash of the key namespace and an ``event_id_column``
value), or the row's own eventId.
"""

from __future__ import annotations

import hashlib
from typing import Any

from enso_provider.events._occurrences import OccurrenceCounter

_M64 = (1 << 64) - 1
#: The personalisation of content ids.
CONTENT_KIND = b"content-v1"
KEY_KIND = b"key-v1"
OWN_ID_KIND = b"own-id-v1"
#: Length of a generated id without suffix: ``ev_`` and 32 hex digits.
GENERATED_ID_LEN = 3 + 32


def seed(kind: bytes, namespace: str) -> Any:
    """A BLAKE2b-128 hasher that has read ``namespace``: copied for each id of the run."""
    # Domain-separated (person) and length-prefixed, so no namespace/content pair can alias another.
    raw = namespace.encode("utf-8", "surrogatepass")
    hasher = hashlib.blake2b(digest_size=16, person=b"enso-" + kind)
    hasher.update(len(raw).to_bytes(8, "little"))
    hasher.update(raw)
    return hasher


class EventIds:
    """
    The ids of one run, and how often each content or key occurred in it.

    :param namespace: what content ids are hashed with (DAG, task, interval).
    :param key_namespace: what ``event_id_column`` keys are hashed with.
    """

    __slots__ = ("_content", "_key", "_own", "occurrences")

    def __init__(self, namespace: str, key_namespace: str) -> None:
        self._content = seed(CONTENT_KIND, namespace)
        self._key = seed(KEY_KIND, key_namespace)
        self._own = seed(OWN_ID_KIND, "")
        self.occurrences = OccurrenceCounter()

    def content_id(self, content: bytes) -> str:
        """
        The id of an event with this content: ``ev_<hash>``, then ``ev_<hash>-N`` for its N-th copy.

        :param content: the canonical content of the event.
        """
        hasher = self._content.copy()
        hasher.update(content)
        digest = hasher.digest()
        seen = self.occurrences.add(int.from_bytes(digest, "little") & _M64)
        return "ev_" + digest.hex() if seen == 1 else f"ev_{digest.hex()}-{seen}"

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
