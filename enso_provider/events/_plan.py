"""
The mapping plan: where each event field comes from, decided once per column layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from enso_provider.events._records import EVENT_ID, FIELDS, METADATA, RECOGNISED_NAMES, normalise_name

#: Plans kept per mapper (one per distinct layout of dict rows): bounded for rows of ever-new keys.
PLAN_CACHE_LIMIT = 256


class Plan:
    """
    Where each field comes from, for one column layout: compiled once, used for every row.

    :param columns: the column names (or dict keys) of the layout.
    :param slots: the column index of CustomerEntityId, metric, value, timestamp, metadata,
        eventId, JobId and the ``event_id_column`` key, -1 where none.
    :param sources: field -> configured or found column name, for messages.
    :param meta: ``(metadata key, column index)`` of the metadata columns.
    :param error: why this layout cannot be mapped (each row is then rejected), or None.
    """

    __slots__ = (
        "columns",
        "error",
        "i_eid",
        "i_job",
        "i_key",
        "i_meta",
        "meta",
        "meta_columns_only",
        "required",
        "slots",
        "sources",
    )

    def __init__(
        self,
        columns: tuple[Any, ...],
        slots: tuple[int, ...],
        sources: dict[str, str],
        meta: tuple[tuple[str, int], ...],
        meta_columns_only: bool,
        error: str | None,
    ) -> None:
        self.columns = columns
        self.slots = slots
        self.sources = sources
        self.meta = meta
        #: Metadata is the metadata columns alone (no mapped object, no default): encoded with the event.
        self.meta_columns_only = meta_columns_only
        self.error = error
        self.i_meta, self.i_eid, self.i_job, self.i_key = slots[4:8]
        #: ``vals -> (CustomerEntityId, metric, value, timestamp)``, in one call.
        self.required = _getter(slots[:4])


class _Source:
    """Where a configured name was found among the columns."""

    __slots__ = ("error", "index")

    def __init__(self, index: int, error: str | None = None) -> None:
        self.index = index
        self.error = error


def _getter(indexes: Sequence[int]) -> Callable[[Any], tuple[Any, Any, Any, Any]]:
    """``vals -> (v0, v1, v2, v3)`` for the four indexes, None where an index is -1 (no column)."""
    if all(i >= 0 for i in indexes):
        return itemgetter(*indexes)
    a, b, c, d = indexes

    def get(vals: Any) -> tuple[Any, Any, Any, Any]:
        return (
            vals[a] if a >= 0 else None,
            vals[b] if b >= 0 else None,
            vals[c] if c >= 0 else None,
            vals[d] if d >= 0 else None,
        )

    return get


def find(names: Sequence[str | None], wanted: str) -> _Source:
    """A column by exact name, else by case-insensitive name; index -1 when absent."""
    exact = [i for i, n in enumerate(names) if n == wanted]
    if len(exact) == 1:
        return _Source(exact[0])
    if exact:
        return _Source(-1, f"column {wanted!r} appears {len(exact)} times")
    folded = wanted.casefold()
    loose = [i for i, n in enumerate(names) if n is not None and n.casefold() == folded]
    if len(loose) == 1:
        return _Source(loose[0])
    if loose:
        found = ", ".join(repr(names[i]) for i in loose)
        return _Source(-1, f"column {wanted!r} matches several columns ({found})")
    return _Source(-1)


def compile_plan(
    columns: tuple[Any, ...],
    *,
    strict: bool,
    field_map: Mapping[str, str],
    event_id_column: str | None,
    metadata_columns: tuple[str, ...] | Literal["*"],
    metadata_default: bool,
) -> Plan:
    """
    The plan of one column layout.

    :param columns: the column names (non-strings never match a field).
    :param strict: raise for a configured column that is missing or ambiguous (tuple rows, whose
        columns are known up front); otherwise the plan carries the error and each row is rejected.
    :param field_map: ``{field: column}``, fields already checked.
    :param event_id_column: the key column, if any.
    :param metadata_columns: the metadata columns, or ``"*"`` for every column not mapped.
    :param metadata_default: ``defaults`` holds a metadata object.
    :raises ValueError: when ``strict`` and the columns do not fit the options.
    """
    names: list[str | None] = [c if isinstance(c, str) else None for c in columns]
    errors: list[str] = []
    index: dict[str, int] = {}
    sources: dict[str, str] = {}
    explicit: set[int] = set()
    for field, column in field_map.items():
        found = find(names, column)
        if found.error:
            errors.append(f"field_map[{field!r}]: {found.error}")
        elif found.index < 0 and strict:
            errors.append(f"field_map[{field!r}]: column {column!r} is not among the columns")
        index[field] = found.index
        sources[field] = column
        if found.index >= 0:
            explicit.add(found.index)
    for field in FIELDS:
        if field in index or (field == EVENT_ID and event_id_column):
            continue
        candidates = [
            i
            for i, n in enumerate(names)
            if n is not None and i not in explicit and RECOGNISED_NAMES.get(normalise_name(n)) == field
        ]
        if len(candidates) > 1:
            exact = [i for i in candidates if names[i] in (field, "jobId")]
            if len(exact) != 1:
                shown = ", ".join(repr(names[i]) for i in candidates)
                errors.append(f"columns {shown} all map to {field}: name one in field_map")
                continue
            candidates = exact
        if candidates:
            index[field] = candidates[0]
            sources[field] = names[candidates[0]] or ""
    key = -1
    if event_id_column:
        found = find(names, event_id_column)
        if found.error:
            errors.append(f"event_id_column: {found.error}")
        elif found.index < 0 and strict:
            errors.append(f"event_id_column: column {event_id_column!r} is not among the columns")
        key = found.index
        sources[EVENT_ID] = event_id_column

    meta = _metadata_slots(columns, names, index, metadata_columns, strict, errors)
    if strict and errors:
        raise ValueError("; ".join(errors))
    slots = (*(index.get(f, -1) for f in FIELDS), key)
    columns_only = bool(meta) and index.get(METADATA, -1) < 0 and not metadata_default
    return Plan(columns, slots, sources, tuple(meta), columns_only, "; ".join(errors) or None)


def _metadata_slots(
    columns: tuple[Any, ...],
    names: list[str | None],
    index: dict[str, int],
    metadata_columns: tuple[str, ...] | Literal["*"],
    strict: bool,
    errors: list[str],
) -> list[tuple[str, int]]:
    meta: list[tuple[str, int]] = []
    if metadata_columns == "*":
        used = {i for i in index.values() if i >= 0}
        keys_seen: set[str] = set()
        for i, column in enumerate(columns):
            if i in used:
                continue
            name = column if isinstance(column, str) else str(column)
            if name in keys_seen:
                errors.append(f'metadata_columns="*": column {name!r} appears twice')
            keys_seen.add(name)
            meta.append((name, i))
        return meta
    for name in metadata_columns:
        found = find(names, name)
        if found.error:
            errors.append(f"metadata_columns: {found.error}")
        elif found.index < 0 and strict:
            errors.append(f"metadata_columns: column {name!r} is not among the columns")
        elif found.index >= 0:
            meta.append((name, found.index))
    return meta
