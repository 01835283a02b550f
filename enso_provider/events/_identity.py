"""
An event from its content: its eventId (generated from the content, from ``event_id_column``, or the
row's own), the occurrence count, and the size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

from enso_provider.events import ids
from enso_provider.events._plan import Plan
from enso_provider.events._records import (
    DUPLICATE_EVENT_ID,
    EVENT_ID,
    EVENT_TOO_LARGE,
    INVALID_EVENT_ID,
    Event,
    FieldError,
)
from enso_provider.events._rejections import decode_quietly
from enso_provider.events._values import convert_identifier, show

#: An event: its content (without the closing brace) with the (ASCII) ``eventId`` as the last key.
_EVENT = b'%b,"eventId":"%b"}'
#: Bytes an eventId adds to an event besides its own text: ``,"eventId":""``.
_ID_OVERHEAD = len(b',"eventId":""')


class EventIdentity:
    """
    Makes the events of one run from their contents.

    :param event_ids: the run's ids and occurrence counts.
    :param max_event_bytes: the largest encoded event.
    :param event_id_column: the key column, if the ids come from one.
    """

    __slots__ = ("content_limit", "event_id_column", "ids", "max_event_bytes")

    def __init__(self, event_ids: ids.EventIds, max_event_bytes: int, event_id_column: str | None) -> None:
        self.ids = event_ids
        self.max_event_bytes = max_event_bytes
        self.event_id_column = event_id_column
        #: The longest content whose event, with a first-occurrence generated id, fits max_event_bytes.
        self.content_limit = max_event_bytes - _ID_OVERHEAD - ids.GENERATED_ID_LEN

    def content_event(self, index: int, content: bytes) -> Event:
        """The event of a content with its generated id (counted); raises FieldError when too large."""
        if len(content) > self.content_limit:
            raise self.content_too_large(content)
        (event,), oversize = self.content_events(index, [0], [content])
        if oversize:
            raise oversize[0]
        return event

    def own_or_key_event(self, index: int, vals: Sequence[Any], plan: Plan, content: bytes) -> Event:
        """The id from event_id_column (hashed with the key namespace) or a mapped eventId (as is)."""
        if self.event_id_column:
            raw = vals[plan.i_key] if plan.i_key >= 0 else None
            key = convert_identifier(raw, EVENT_ID, INVALID_EVENT_ID)
            if key is None:
                where = "is not in the row" if plan.i_key < 0 else f"is {show(raw)}"
                raise FieldError(
                    INVALID_EVENT_ID, EVENT_ID, f"event_id_column {self.event_id_column!r} {where}"
                )
            event_id, digest = self.ids.key_id(key)
            what = f"key {show(key)} of event_id_column {self.event_id_column!r}"
        else:
            raw = vals[plan.i_eid]
            own = convert_identifier(raw, EVENT_ID, INVALID_EVENT_ID)
            if own is None:  # blank: the content id, as for every other row
                return self.content_event(index, content)
            digest = self.ids.own_digest(own)
            event_id = own
            what = f"eventId {show(own)}"
        try:
            id_json = ids.string(event_id).encode()
        except UnicodeEncodeError as exc:
            raise FieldError(
                INVALID_EVENT_ID, EVENT_ID, f"eventId {show(event_id)} is not valid text: {exc}"
            ) from None
        data = content[:-1] + b',"eventId":' + id_json + b"}"
        if len(data) > self.max_event_bytes:
            raise self.too_large(len(data), content)
        # Counted only once the event is otherwise valid: a rejected row does not take the key.
        if self.ids.count(digest) > 1:
            error = FieldError(
                DUPLICATE_EVENT_ID, EVENT_ID, f"{what} was already used by an earlier row in this run"
            )
            error.event = decode_quietly(data)
            raise error
        return Event(index, event_id, data)

    def content_events(
        self, start: int, todo: Sequence[int], contents: list[bytes]
    ) -> tuple[list[Event], dict[int, FieldError]]:
        """
        :meth:`content_event` of each content (rows ``todo`` of a list starting at row ``start``), in
        order, and the errors of those an occurrence suffix took over ``max_event_bytes``, by row.

        :param start: the run's index of the list's first row.
        :param todo: the positions in the list of ``contents``' rows.
        :param contents: contents no longer than :attr:`content_limit`.
        """
        event_ids = self.ids.content_ids(contents)
        datas = [
            _EVENT % (content[:-1], event_id.encode())
            for content, event_id in zip(contents, event_ids, strict=True)
        ]
        indexes = map(start.__add__, todo)
        events = list(map(tuple.__new__, repeat(Event), zip(indexes, event_ids, datas, strict=True)))
        oversize: dict[int, FieldError] = {}
        if max(map(len, datas), default=0) > self.max_event_bytes:  # only an occurrence suffix can tip it
            for i, data, content in zip(todo, datas, contents, strict=True):
                if len(data) > self.max_event_bytes:
                    oversize[i] = self.too_large(len(data), content)
        return events, oversize

    def content_too_large(self, content: bytes) -> FieldError:
        """The error of a content too long for any event (its size as the smallest event it would make)."""
        return self.too_large(len(content) + self.max_event_bytes - self.content_limit, content)

    def too_large(self, size: int, content: bytes) -> FieldError:
        """The ``event_too_large`` error of an event of ``size`` bytes."""
        error = FieldError(
            EVENT_TOO_LARGE, None, f"event is {size} bytes, more than max_event_bytes={self.max_event_bytes}"
        )
        error.event = decode_quietly(content)
        return error
