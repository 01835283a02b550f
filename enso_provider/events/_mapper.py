"""
Rows to events: the mapping plan, the per-row loop, the deterministic ``eventId``.

Performance shape: a plan (column index per field, metadata columns) is compiled once per
column layout; the loop handles values already in the right form inline (exact ``type()``
checks) and calls the converters in :mod:`._convert` only for the rest; timestamps are
cached by input value; each event is encoded once by orjson, with exact-digit values and
pre-encoded metadata spliced in as ``orjson.Fragment``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import partial
from itertools import islice
from operator import itemgetter
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from enso_provider.events import _native as native
from enso_provider.events._convert import (
    CODE_INVALID_TIMESTAMP,
    CODE_INVALID_VALUE,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    FieldError,
    TimestampConverter,
    convert_identifier,
    convert_value,
    show,
)
from enso_provider.events._json import JsonSafeError, encodable_text, is_missing, json_safe
from enso_provider.events._occurrences import OccurrenceCounter

# ---------------------------------------------------------------- wire names and codes

#: The event fields, as sent.
CUSTOMER_ENTITY_ID = "CustomerEntityId"
METRIC = "metric"
VALUE = "value"
TIMESTAMP = "timestamp"
METADATA = "metadata"
EVENT_ID = "eventId"
JOB_ID = "JobId"
FIELDS = (CUSTOMER_ENTITY_ID, METRIC, VALUE, TIMESTAMP, METADATA, EVENT_ID, JOB_ID)

#: Column names recognised without a field_map entry, compared after lower-casing and
#: removing underscores: ``CustomerEntityId``, ``customer_entity_id``, ``customerentityid``...
RECOGNISED_NAMES: Mapping[str, str] = {
    "customerentityid": CUSTOMER_ENTITY_ID,
    "metric": METRIC,
    "value": VALUE,
    "timestamp": TIMESTAMP,
    "metadata": METADATA,
    "eventid": EVENT_ID,
    "jobid": JOB_ID,
}

MISSING_CUSTOMER_ENTITY_ID = "missing_customer_entity_id"
INVALID_CUSTOMER_ENTITY_ID = "invalid_customer_entity_id"
MISSING_METRIC = "missing_metric"
INVALID_METRIC = "invalid_metric"
INVALID_VALUE = CODE_INVALID_VALUE
INVALID_TIMESTAMP = CODE_INVALID_TIMESTAMP
INVALID_METADATA = "invalid_metadata"
INVALID_EVENT_ID = "invalid_event_id"
DUPLICATE_EVENT_ID = "duplicate_event_id"
INVALID_JOB_ID = "invalid_job_id"
EVENT_TOO_LARGE = "event_too_large"
INVALID_ROW = "invalid_row"
#: Every local rejection code.
REJECTION_CODES = (
    MISSING_CUSTOMER_ENTITY_ID,
    INVALID_CUSTOMER_ENTITY_ID,
    MISSING_METRIC,
    INVALID_METRIC,
    INVALID_VALUE,
    INVALID_TIMESTAMP,
    INVALID_METADATA,
    INVALID_EVENT_ID,
    DUPLICATE_EVENT_ID,
    INVALID_JOB_ID,
    EVENT_TOO_LARGE,
    INVALID_ROW,
)

# The wire form itself, 'YYYY-MM-DDTHH:MM:SSZ' in ASCII digits: checked without the general parser.
_CANONICAL_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)
_ERROR_LIMIT = 300
_TS_CACHE_LIMIT = 50_000
_PLAN_CACHE_LIMIT = 256
# Rows the C fast path maps per call: the events of one call are held in a list before they are yielded.
_FAST_SLICE = 1024
# The longest ``-<occurrence>`` suffix an id can get: the fast path leaves contents this close to
# the size limit to Python, which alone decides whether an event with that suffix still fits.
_SUFFIX_ROOM = 21
# The fast path's own buffer: events longer than this (rare) are mapped by the Python loop.
_FAST_CONTENT_MAX = 1 << 20
_UTC = timezone.utc
_M64 = (1 << 64) - 1
_SORT = orjson.OPT_SORT_KEYS
_EMPTY = orjson.Fragment(b"{}")
# Metadata: sorted keys, and every value orjson would write its own way (datetimes, subclasses,
# dataclasses, numpy, Decimal...) handed to json_safe, so the bytes follow json_safe's rules.
_METADATA_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _metadata_default(value: Any) -> Any:
    return json_safe(value, strict=True)


#: Bytes an eventId adds to an event besides its own text: ``,"eventId":""``.
_ID_OVERHEAD = len(b',"eventId":""')
_GENERATED_ID_LEN = 3 + 32
#: The personalisation of content ids (``b"enso-" + kind``), shared with the C fast path.
_CONTENT_KIND = b"content-v1"


def _normalise_name(name: str) -> str:
    return name.replace("_", "").lower()


def field_for(name: str) -> str | None:
    """
    The event field a column or argument name stands for, or None.

    :param name: ``"customer_entity_id"``, ``"JobId"``, ``"jobId"``, ``"event_id"``...
    """
    return RECOGNISED_NAMES.get(_normalise_name(name)) if isinstance(name, str) else None


# ---------------------------------------------------------------- results


class Event(NamedTuple):
    """
    One event, encoded once and ready to join into a batch with :func:`encode_batch`.

    :param index: the row's position in the run (0-based, continuing across ``map()`` calls).
    :param event_id: the event's ``eventId``.
    :param data: the complete JSON object of the event, ``eventId`` included.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index, as the interface asks
    event_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """
    A row that cannot become a valid event: never sent, reported in the API's failed-record shape.

    :param index: the row's position in the run (0-based, continuing across ``map()`` calls).
    :param error: a sentence naming the field and the bad value (truncated).
    :param code: the local code, one of :data:`REJECTION_CODES`.
    :param status_code: the HTTP-like status of the failure (always 400 for local rejections).
    :param row_key: the row's ``event_id_column`` value, when that option is set and readable.
    :param row: the source row, made JSON-safe.
    :param event: the event fields mapped (or the whole event built) before the rule failed.
    :param field: the event field at fault, if one is.
    """

    index: int
    error: str
    code: str
    status_code: int = 400
    row_key: str | None = None
    row: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    field: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The API's failed-record shape (``index``, ``error``, ``code``, ``statusCode``) plus extras."""
        return {
            "index": self.index,
            "error": self.error,
            "code": self.code,
            "statusCode": self.status_code,
            "rowKey": self.row_key,
            "row": self.row,
            "event": self.event,
            "field": self.field,
        }


# ---------------------------------------------------------------- the plan


class _Plan:
    """Where each field comes from, for one column layout: compiled once, used for every row."""

    __slots__ = ("columns", "error", "fast", "meta", "meta_fast", "required", "slots", "sources")

    def __init__(
        self,
        columns: tuple[Any, ...],
        slots: tuple[int, ...],
        sources: dict[str, str],
        meta: tuple[tuple[str, int], ...],
        meta_fast: bool,
        error: str | None,
    ) -> None:
        self.columns = columns
        self.slots = slots  # CustomerEntityId, metric, value, timestamp, metadata, eventId, JobId, key
        self.sources = sources  # field -> column name, for messages
        self.meta = meta  # (metadata key, column index)
        self.meta_fast = meta_fast
        self.error = error
        # CustomerEntityId, metric, value and timestamp in one C call when all four are columns.
        self.required = _getter(slots[:4])
        self.fast: Any = None  # the C fast path for this layout: None until asked, False if none


class _Source:
    """Where a configured name was found among the columns."""

    __slots__ = ("error", "index")

    def __init__(self, index: int, error: str | None = None) -> None:
        self.index = index
        self.error = error


def _no_fields(vals: Any) -> tuple[Any, Any, Any, Any]:
    return None, None, None, None


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


def _find(names: Sequence[str | None], wanted: str) -> _Source:
    """A column by exact name, else by case-insensitive name; -1 when absent."""
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


def _truncate(text: str) -> str:
    """Report text: at most _ERROR_LIMIT characters, and always encodable (no lone surrogates)."""
    return encodable_text(text if len(text) <= _ERROR_LIMIT else text[:_ERROR_LIMIT] + "...")


def _seed(kind: bytes, namespace: str) -> Any:
    # Domain-separated (person) and length-prefixed, so no namespace/content pair can alias another.
    raw = namespace.encode("utf-8", "surrogatepass")
    hasher = hashlib.blake2b(digest_size=16, person=b"enso-" + kind)
    hasher.update(len(raw).to_bytes(8, "little"))
    hasher.update(raw)
    return hasher


# ---------------------------------------------------------------- the mapper


class EventMapper:
    """
    Maps rows (mappings, or tuples with column names) to encoded events or rejections.

    Stateful for one run: row indexes and duplicate occurrence counts continue across
    :meth:`map` calls, so feed every chunk of one run to the same mapper, from one thread.

    :param field_map: ``{event field: source column}``. Fields may be named as on the wire
        (``CustomerEntityId``) or in any recognised spelling (``customer_entity_id``). Columns
        are found by exact name, else case-insensitively.
    :param defaults: constant fields, e.g. ``{"metric": "api_calls"}``; a default fills a field
        no column maps, or whose value is missing (None, NaN, NaT, blank text). Validated here.
    :param metadata_columns: columns collected into ``metadata`` (keys as written here), or
        ``"*"`` for every column not mapped to a field. They win over keys of a mapped
        ``metadata`` object.
    :param row_mapper: ``row -> mapping`` for anything the options cannot say. It receives the
        row as a dict (tuple rows too); all other options then apply to what it returns. If it
        raises, the row is rejected (``invalid_row``).
    :param job_id: a constant ``JobId`` for every event, unless a row maps its own.
    :param event_id_column: a column holding a unique key per row: ``eventId`` is a hash of the
        namespace and that key, and a key seen twice in a run rejects the later row.
    :param timezone: the IANA zone naive datetimes and naive ISO strings are read in.
    :param timestamp_unit: ``"s"`` or ``"ms"`` to read numeric timestamps as epoch time;
        without it a numeric timestamp is rejected.
    :param namespace: mixed into every generated ``eventId`` (the operator passes the DAG, the
        task and the data interval): the same rows in the same namespace get the same ids.
    :param max_event_bytes: largest encoded event; a larger one is rejected (``event_too_large``).
    :param event_id_namespace: the namespace ``event_id_column`` keys are hashed with, when it must
        differ from ``namespace`` (default): keys that are unique across runs want a namespace that
        does not change from run to run (the DAG and task, not the data interval), so that the same
        key read by two overlapping runs gets the same ``eventId``.
    :raises ValueError: for unknown field names, a bad zone or unit, and contradictory options.
    """

    def __init__(
        self,
        *,
        field_map: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        metadata_columns: Sequence[str] | Literal["*"] | None = None,
        row_mapper: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        job_id: str | None = None,
        event_id_column: str | None = None,
        timezone: str = "UTC",
        timestamp_unit: Literal["s", "ms"] | None = None,
        namespace: str = "",
        max_event_bytes: int = 64 * 1024,
        event_id_namespace: str | None = None,
    ) -> None:
        self.timezone_name, tz, tz_is_utc = _parse_timezone(timezone)
        if timestamp_unit not in (None, "s", "ms"):
            raise ValueError(f"timestamp_unit must be 's', 'ms' or None, not {timestamp_unit!r}")
        self.timestamp_unit = timestamp_unit
        self._timestamps = TimestampConverter(tz, tz_is_utc, timestamp_unit)
        self._tz_is_utc = tz_is_utc
        if not isinstance(namespace, str):
            raise ValueError(f"namespace must be a string, not {type(namespace).__name__}")
        self.namespace = namespace
        if event_id_namespace is not None and not isinstance(event_id_namespace, str):
            raise ValueError(f"event_id_namespace must be a string, not {type(event_id_namespace).__name__}")
        self.event_id_namespace = namespace if event_id_namespace is None else event_id_namespace
        if isinstance(max_event_bytes, bool) or not isinstance(max_event_bytes, int) or max_event_bytes < 128:
            raise ValueError(f"max_event_bytes must be an int of at least 128, not {max_event_bytes!r}")
        self.max_event_bytes = max_event_bytes
        if row_mapper is not None and not callable(row_mapper):
            raise ValueError("row_mapper must be callable")
        self.row_mapper = row_mapper
        if event_id_column is not None and (not isinstance(event_id_column, str) or not event_id_column):
            raise ValueError("event_id_column must be a non-empty string")
        self.event_id_column = event_id_column

        self.field_map = self._check_field_map(field_map)
        if EVENT_ID in self.field_map and event_id_column:
            raise ValueError("field_map maps eventId and event_id_column is set: choose one")
        self._defaults = self._check_defaults(defaults, job_id)
        self.metadata_columns = self._check_metadata_columns(metadata_columns)

        self._content_seed = _seed(_CONTENT_KIND, namespace)
        self._key_seed = _seed(b"key-v1", self.event_id_namespace)
        self._own_id_seed = _seed(b"own-id-v1", "")
        self._occurrences = OccurrenceCounter()
        self._ts_text: dict[str, str] = {}
        self._ts_datetime: dict[datetime, str] = {}
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._column_plans: dict[tuple[Any, ...], _Plan] = {}
        self._rows_seen = 0
        self._rejected = 0
        #: Rejections so far, by code.
        self.rejections_by_code: dict[str, int] = {}

    # ------------------------------------------------------------ arguments

    @staticmethod
    def _field_name(name: Any, where: str) -> str:
        field = field_for(name) if isinstance(name, str) else None
        if field is None:
            raise ValueError(
                f"{where}: {name!r} is not an event field (one of {', '.join(FIELDS)}, "
                "in any case, with or without underscores)"
            )
        return field

    def _check_field_map(self, field_map: Mapping[str, str] | None) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, column in (field_map or {}).items():
            field = self._field_name(name, "field_map")
            if field in result:
                raise ValueError(f"field_map: {field} is mapped twice")
            if not isinstance(column, str) or not column:
                raise ValueError(f"field_map: the column for {field} must be a non-empty string")
            result[field] = column
        return result

    def _check_defaults(self, defaults: Mapping[str, Any] | None, job_id: str | None) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name, value in (defaults or {}).items():
            field = self._field_name(name, "defaults")
            if field in raw:
                raise ValueError(f"defaults: {field} is given twice")
            raw[field] = value
        if job_id is not None:
            if not isinstance(job_id, str) or not job_id.strip():
                raise ValueError(f"job_id must be a non-blank string or None, not {job_id!r}")
            if JOB_ID in raw:
                raise ValueError("job_id and defaults['JobId'] are both set: choose one")
            raw[JOB_ID] = job_id
        if EVENT_ID in raw:
            raise ValueError("defaults cannot hold eventId: every event needs its own (see event_id_column)")
        out: dict[str, Any] = {}
        try:
            for field, code in (
                (CUSTOMER_ENTITY_ID, INVALID_CUSTOMER_ENTITY_ID),
                (METRIC, INVALID_METRIC),
                (JOB_ID, INVALID_JOB_ID),
            ):
                if field in raw:
                    out[field] = convert_identifier(raw[field], field, code)
                    if out[field] is None:
                        raise ValueError(f"defaults: {field} is blank")
            if VALUE in raw:
                out[VALUE] = convert_value(raw[VALUE])
            if TIMESTAMP in raw:
                out[TIMESTAMP] = self._timestamps(raw[TIMESTAMP])
            if METADATA in raw and raw[METADATA] is not None:
                meta = raw[METADATA]
                if not isinstance(meta, Mapping):
                    raise ValueError("defaults: metadata must be a mapping")
                out[METADATA] = json_safe(meta, strict=True)
                orjson.dumps(out[METADATA])
        except FieldError as exc:
            raise ValueError(f"defaults: {exc.message}") from None
        except (JsonSafeError, TypeError) as exc:
            raise ValueError(f"defaults: metadata is not JSON-safe ({exc})") from None
        return out

    @staticmethod
    def _check_metadata_columns(columns: Sequence[str] | str | None) -> tuple[str, ...] | Literal["*"]:
        if columns is None:
            return ()
        if columns == "*":
            return "*"
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise ValueError('metadata_columns must be a list of column names or "*"')
        names = tuple(columns)
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"metadata_columns: {name!r} is not a column name")
        if len(set(names)) != len(names):
            raise ValueError("metadata_columns lists a column twice")
        return names

    # ------------------------------------------------------------ state

    @property
    def rows_seen(self) -> int:
        """Rows mapped so far in this run (events plus rejections)."""
        return self._rows_seen

    @property
    def rejected(self) -> int:
        """Rows rejected so far in this run."""
        return self._rejected

    @property
    def events_built(self) -> int:
        """Events built so far in this run."""
        return self._rows_seen - self._rejected

    @property
    def distinct_fingerprints(self) -> int:
        """Distinct event contents and keys seen so far (the size of the occurrence counter)."""
        return len(self._occurrences)

    def __repr__(self) -> str:
        return (
            f"EventMapper(namespace={self.namespace!r}, rows_seen={self._rows_seen}, "
            f"rejected={self._rejected})"
        )

    # ------------------------------------------------------------ plans

    def _compile(self, columns: tuple[Any, ...], strict: bool) -> _Plan:
        names: list[str | None] = [c if isinstance(c, str) else None for c in columns]
        errors: list[str] = []
        index: dict[str, int] = {}
        sources: dict[str, str] = {}
        explicit: set[int] = set()
        for field, column in self.field_map.items():
            found = _find(names, column)
            if found.error:
                errors.append(f"field_map[{field!r}]: {found.error}")
            elif found.index < 0 and strict:
                errors.append(f"field_map[{field!r}]: column {column!r} is not among the columns")
            index[field] = found.index
            sources[field] = column
            if found.index >= 0:
                explicit.add(found.index)
        for field in FIELDS:
            if field in index or (field == EVENT_ID and self.event_id_column):
                continue
            candidates = [
                i
                for i, n in enumerate(names)
                if n is not None and i not in explicit and RECOGNISED_NAMES.get(_normalise_name(n)) == field
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
        if self.event_id_column:
            found = _find(names, self.event_id_column)
            if found.error:
                errors.append(f"event_id_column: {found.error}")
            elif found.index < 0 and strict:
                errors.append(f"event_id_column: column {self.event_id_column!r} is not among the columns")
            key = found.index
            sources[EVENT_ID] = self.event_id_column

        meta: list[tuple[str, int]] = []
        if self.metadata_columns == "*":
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
        else:
            for name in self.metadata_columns:
                found = _find(names, name)
                if found.error:
                    errors.append(f"metadata_columns: {found.error}")
                elif found.index < 0 and strict:
                    errors.append(f"metadata_columns: column {name!r} is not among the columns")
                elif found.index >= 0:
                    meta.append((name, found.index))
        if strict and errors:
            raise ValueError("; ".join(errors))
        slots = (*(index.get(f, -1) for f in FIELDS), key)
        meta_fast = bool(meta) and index.get(METADATA, -1) < 0 and METADATA not in self._defaults
        return _Plan(columns, slots, sources, tuple(meta), meta_fast, "; ".join(errors) or None)

    def _plan_for_keys(self, keys: tuple[Any, ...]) -> _Plan:
        plan = self._plans.get(keys)
        if plan is None:
            if len(self._plans) >= _PLAN_CACHE_LIMIT:
                self._plans.clear()
            plan = self._plans[keys] = self._compile(keys, strict=False)
        return plan

    # ------------------------------------------------------------ mapping

    def map(self, rows: Iterable[Any], columns: Sequence[str] | None = None) -> Iterator[Event | Rejection]:
        """
        Map ``rows`` to exactly one :class:`Event` or :class:`Rejection` each, in order.

        Never raises for row content; a row that cannot be sent is a rejection.

        :param rows: mappings (``columns`` None), or sequences (tuples) of values named by ``columns``.
        :param columns: the column names of tuple rows (``[d[0] for d in cursor.description]``).
        :raises ValueError: at once (not on iteration) if ``columns`` are not names, or do not hold a
            column that ``field_map``, ``metadata_columns`` or ``event_id_column`` names.
        """
        # One row at a time, on the reference loop: nothing is read or counted before it is asked for.
        return self._run_rows(rows, self._plan_for_columns(columns))

    def map_chunks(
        self, rows: Iterable[Any], columns: Sequence[str] | None = None
    ) -> Iterator[list[Event | Rejection]]:
        """
        :meth:`map`, a list of items at a time (up to about a thousand), for consumers that batch.

        The same items in the same order, with the same state; ``rows`` is read ahead by up to one
        list (its rows are indexed and counted when the list is made). This is what the operators
        hand to the delivery, and where SQL tuple rows take the C fast path.

        :param rows: as for :meth:`map`.
        :param columns: as for :meth:`map`.
        :raises ValueError: as :meth:`map` does, at once.
        """
        plan = self._plan_for_columns(columns)
        fast = self._fast_for(rows, plan)
        if fast is not None and plan is not None:
            return self._run_fast_chunks(rows if type(rows) is list else list(rows), plan, fast)
        return _in_lists(self._run_rows(rows, plan))

    def _plan_for_columns(self, columns: Sequence[str] | None) -> _Plan | None:
        if columns is None:
            return None
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise ValueError("columns must be a sequence of column names")
        names = tuple(columns)
        if not all(isinstance(n, str) for n in names):
            raise ValueError("columns must all be strings")
        plan = self._column_plans.get(names)
        if plan is not None:
            return plan  # the same columns chunk after chunk: compiled once
        # With a row_mapper the options apply to its output: these columns only name the values.
        plan = self._compile(names, strict=self.row_mapper is None)
        if len(self._column_plans) >= _PLAN_CACHE_LIMIT:
            self._column_plans.clear()
        self._column_plans[names] = plan
        return plan

    def map_one(self, row: Any, columns: Sequence[str] | None = None) -> Event | Rejection:
        """
        Map a single row (convenient in tests and TaskFlow code); same state as :meth:`map`.

        :param row: a mapping, or a sequence named by ``columns``.
        :param columns: the column names of a sequence row.
        """
        return next(iter(self.map([row], columns)))

    def _fast_for(self, rows: Iterable[Any], fixed: _Plan | None) -> Any:
        """The C fast path for these rows (a list or tuple of them, with columns), or None."""
        if fixed is None or type(rows) not in (list, tuple):
            return None
        fast = fixed.fast
        if fast is None:
            fast = fixed.fast = self._fast_plan(fixed) or False
        return fast or None

    def _fast_plan(self, plan: _Plan) -> Any:
        """
        The C fast path for tuple rows of this layout, or None where only the Python loop applies.

        It takes the common shape (columns or constants for the four required fields, metadata
        from columns or a constant, a constant or no JobId, content ids) and leaves every row it is
        not sure of to :meth:`_run_rows`, so both give the same items, byte for byte.
        """
        # The optional C fast path; the pure-Python loop is the reference and gives the same bytes.
        speedups = native.speedups
        if speedups is None or self.row_mapper is not None or self.event_id_column or plan.error:
            return None
        slots = plan.slots
        if slots[4] >= 0 or slots[5] >= 0 or slots[6] >= 0 or (plan.meta and not plan.meta_fast):
            return None
        defaults = self._defaults
        try:
            constants = tuple(
                None if i >= 0 else orjson.dumps(defaults[field])
                for field, i in zip((CUSTOMER_ENTITY_ID, METRIC, VALUE, TIMESTAMP), slots[:4], strict=True)
            )
            meta: tuple[tuple[bytes, int], ...] = ()
            if plan.meta:
                columns = dict(plan.meta)
                order = orjson.loads(orjson.dumps(dict.fromkeys(columns, 0), option=_SORT))
                meta = tuple((orjson.dumps(name) + b":", columns[name]) for name in order)
            meta_const = orjson.dumps(defaults[METADATA], option=_SORT) if defaults.get(METADATA) else b"{}"
            job = b'"JobId":' + orjson.dumps(defaults[JOB_ID]) + b"," if JOB_ID in defaults else None
        except (KeyError, TypeError):  # a required field with neither column nor default; odd text
            return None
        content_limit = self.max_event_bytes - _ID_OVERHEAD - _GENERATED_ID_LEN
        # Longer contents are left to the Python loop, as are those that a -N suffix could tip over.
        content_cap = min(content_limit - _SUFFIX_ROOM, _FAST_CONTENT_MAX)
        return speedups.FastPlan(
            len(plan.columns),
            slots[:4],
            constants,
            meta,
            meta_const,
            job,
            self._ts_text,
            self._ts_datetime,
            self._tz_is_utc,
            _UTC,
            (
                partial(self._identifier_slow, field=CUSTOMER_ENTITY_ID, plan=plan),
                partial(self._identifier_slow, field=METRIC, plan=plan),
                partial(self._value_slow, plan=plan),
                partial(self._timestamp_slow, plan=plan),
            ),
            orjson.dumps,
            self._occurrences,
            Event,
            b"enso-" + _CONTENT_KIND,
            self.namespace.encode("utf-8", "surrogatepass"),
            content_cap,
        )

    def _run_fast_chunks(self, rows: list[Any], fixed: _Plan, fast: Any) -> Iterator[list[Event | Rejection]]:
        count = len(rows)
        start = 0
        stretch = 1
        while start < count:
            events, stop = fast.map(rows, start, min(count, start + _FAST_SLICE), self._rows_seen)
            self._rows_seen += len(events)
            if events:
                yield events
            if stop < count and stop < start + _FAST_SLICE:
                # A row the fast path leaves (an unusual value, a rejection) takes the reference loop.
                # Stretches of such rows are handed over doubling, so mostly unusual input costs no
                # more than the loop alone.
                stretch = stretch * 2 if stop == start else 1
                end = min(count, stop + stretch)
                yield list(self._run_rows(rows[stop:end], fixed))
                stop = end
            start = stop

    def _run_rows(self, rows: Iterable[Any], fixed: _Plan | None) -> Iterator[Event | Rejection]:
        # Everything the loop touches is a local: attribute and global look-ups cost per row.
        new_tuple = tuple.__new__
        event_cls = Event
        encode = orjson.dumps
        meta_default = _metadata_default
        meta_options = _METADATA_OPTIONS
        from_bytes = int.from_bytes
        m64 = _M64
        join = b"".join
        id_head = b',"eventId":"'
        id_tail = b'"}'
        ts_text = self._ts_text
        ts_datetime = self._ts_datetime
        tz_is_utc = self._tz_is_utc
        utc = _UTC
        counter = self._occurrences
        occurrences = counter.add
        tables = counter.tables
        masks = counter.masks
        room = counter.room
        content_seed = self._content_seed
        max_bytes = self.max_event_bytes
        # Longest content whose event (with a first-occurrence generated id) fits max_bytes.
        content_limit = max_bytes - _ID_OVERHEAD - _GENERATED_ID_LEN
        row_mapper = self.row_mapper
        plans = self._plans
        defaults = self._defaults
        d_job = defaults.get(JOB_ID)
        d_meta = (
            orjson.Fragment(encode(defaults[METADATA], option=_SORT)) if defaults.get(METADATA) else _EMPTY
        )
        ident_slow = self._identifier_slow
        value_slow = self._value_slow
        ts_slow = self._timestamp_slow
        metadata_slow = self._metadata_slow
        id_slow = self._id_slow
        width = len(fixed.columns) if fixed is not None else -1
        key_mode = bool(self.event_id_column)
        tuple_rows = fixed is not None and row_mapper is None

        last: _Plan | None = None
        i_meta = i_eid = i_job = -1
        required: Callable[[Any], tuple[Any, Any, Any, Any]] = _no_fields
        raw: Any
        meta: dict[str, Any] | orjson.Fragment
        meta_cols: tuple[tuple[str, int], ...] = ()
        meta_fast = False
        plain_ids = True

        for row in rows:
            # Read back each row: another map() of the same run may have advanced it meanwhile.
            index = self._rows_seen
            self._rows_seen = index + 1
            plan = fixed
            vals: Any = row
            item: Event | Rejection
            try:
                if tuple_rows:
                    if type(row) is not tuple or len(row) != width:
                        vals = self._sequence_values(row, width)
                elif row_mapper is None:
                    if type(row) is not dict:
                        row = self._as_dict(row, None)
                    keys = tuple(row)
                    plan = plans.get(keys) or self._plan_for_keys(keys)
                    vals = tuple(row.values())
                else:
                    out = self._call_row_mapper(row, fixed)
                    keys = tuple(out)
                    plan = plans.get(keys) or self._plan_for_keys(keys)
                    vals = tuple(out.values())
                assert plan is not None
                if plan is not last:
                    if plan.error:
                        raise FieldError(INVALID_ROW, None, plan.error)
                    _, _, _, _, i_meta, i_eid, i_job, _ = plan.slots
                    required = plan.required
                    meta_cols = plan.meta
                    meta_fast = plan.meta_fast
                    plain_ids = i_eid < 0 and not key_mode
                    last = plan

                # CustomerEntityId and metric: stripped strings, the common case inline.
                raw_cid, raw_metric, raw_value, raw_ts = required(vals)
                raw = raw_cid
                cid = raw.strip() if type(raw) is str else None
                if not cid:
                    cid = ident_slow(raw, CUSTOMER_ENTITY_ID, plan)
                raw = raw_metric
                metric = raw.strip() if type(raw) is str else None
                if not metric:
                    metric = ident_slow(raw, METRIC, plan)

                # value: a finite float or a 64-bit int goes as is (x - x is 0.0 only if finite).
                raw = raw_value
                kind = type(raw)
                if kind is float:
                    value = raw if raw - raw == 0.0 else value_slow(raw, plan)
                elif kind is int and -9223372036854775808 <= raw <= 18446744073709551615:  # orjson's range
                    value = raw
                else:
                    value = value_slow(raw, plan)

                # timestamp: cached by input value (usage data repeats its hourly buckets).
                raw = raw_ts
                kind = type(raw)
                if kind is str:
                    ts = ts_text.get(raw) or ts_slow(raw, plan)
                elif kind is datetime and (raw.tzinfo is utc or (tz_is_utc and raw.tzinfo is None)):
                    ts = ts_datetime.get(raw) or ts_slow(raw, plan)
                else:
                    ts = ts_slow(raw, plan)

                # metadata: columns only (the common case) are encoded with the event below;
                # a mapped object or a default goes through the slow path, which pre-encodes it.
                if meta_fast:
                    meta = {}
                    for name, i in meta_cols:
                        meta[name] = vals[i]
                elif i_meta >= 0 or meta_cols:
                    bag = {name: vals[i] for name, i in meta_cols}
                    meta = metadata_slow(vals[i_meta] if i_meta >= 0 else None, bag, plan)
                else:
                    meta = d_meta

                if i_job < 0:
                    job = d_job
                else:
                    raw = vals[i_job]
                    job = raw.strip() if type(raw) is str else None
                    if not job:
                        job = d_job if raw is None else ident_slow(raw, JOB_ID, plan)

                # Literal keys (no global look-ups), in sorted order: the order OPT_SORT_KEYS gives,
                # so events with and without a metadata bag to sort have the same layout.
                if job is None:
                    body = {
                        "CustomerEntityId": cid,
                        "metadata": meta,
                        "metric": metric,
                        "timestamp": ts,
                        "value": value,
                    }
                else:
                    body = {
                        "CustomerEntityId": cid,
                        "JobId": job,
                        "metadata": meta,
                        "metric": metric,
                        "timestamp": ts,
                        "value": value,
                    }
                try:
                    if meta_fast:
                        # orjson writes plain values and hands the rest to json_safe (sorted keys).
                        content = encode(body, default=meta_default, option=meta_options)
                    else:
                        content = encode(body)
                except TypeError:
                    content = self._encode_slow(body, plan)

                if plain_ids or (not key_mode and vals[i_eid] is None):
                    # The content id: hash of namespace + the event's canonical bytes, with the
                    # occurrence number of identical content in this run after the first.
                    if len(content) > content_limit:
                        raise self._too_large(len(content) + max_bytes - content_limit, content)
                    hasher = content_seed.copy()
                    hasher.update(content)
                    digest = hasher.digest()
                    # OccurrenceCounter.add, inlined for its common case: the first probe finds
                    # an empty slot in a table with room. Anything else goes through add().
                    fingerprint = from_bytes(digest, "little") & m64
                    part = fingerprint & 63
                    table = tables[part]
                    slot = (fingerprint >> 6) & masks[part]
                    if table[slot] == 0 and room[part] > 1:
                        table[slot] = (fingerprint ^ part) | 1
                        room[part] -= 1
                        event_id = "ev_" + digest.hex()
                        data = join((content[:-1], id_head, event_id.encode(), id_tail))
                    else:
                        seen = occurrences(fingerprint)
                        if seen == 1:
                            event_id = "ev_" + digest.hex()
                            data = b'%b,"eventId":"%b"}' % (content[:-1], event_id.encode())
                        else:
                            event_id = f"ev_{digest.hex()}-{seen}"
                            data = b'%b,"eventId":"%b"}' % (content[:-1], event_id.encode())
                            if len(data) > max_bytes:
                                raise self._too_large(len(data), content)
                else:
                    event_id, data = id_slow(vals, plan, content)
                item = new_tuple(event_cls, (index, event_id, data))
            except FieldError as exc:
                item = self._reject(index, exc, row, vals, plan, fixed)
            except Exception as exc:  # never let one row's content stop the run
                error = FieldError(INVALID_ROW, None, f"row could not be mapped: {type(exc).__name__}: {exc}")
                item = self._reject(index, error, row, vals, plan, fixed)
            yield item

    # ------------------------------------------------------------ row shapes

    @staticmethod
    def _sequence_values(row: Any, width: int) -> Sequence[Any]:
        if isinstance(row, (str, bytes, bytearray)) or not isinstance(row, Sequence):
            raise FieldError(
                INVALID_ROW, None, f"row of type {type(row).__name__} is not a sequence of column values"
            )
        if len(row) != width:
            raise FieldError(INVALID_ROW, None, f"row has {len(row)} values for {width} columns")
        return row

    @staticmethod
    def _as_dict(row: Any, columns: tuple[Any, ...] | None) -> dict[Any, Any]:
        if type(row) is dict:
            return row
        if columns is not None:
            values = EventMapper._sequence_values(row, len(columns))
            return dict(zip(columns, values, strict=True))
        if isinstance(row, Mapping):
            return dict(row)
        raise FieldError(
            INVALID_ROW,
            None,
            f"row of type {type(row).__name__} is not a mapping (and no columns were given)",
        )

    def _call_row_mapper(self, row: Any, fixed: _Plan | None) -> dict[Any, Any]:
        source = self._as_dict(row, fixed.columns if fixed is not None else None)
        assert self.row_mapper is not None
        try:
            out = self.row_mapper(source)
        except Exception as exc:
            raise FieldError(INVALID_ROW, None, f"row_mapper raised {type(exc).__name__}: {exc}") from None
        if not isinstance(out, Mapping):
            raise FieldError(INVALID_ROW, None, f"row_mapper returned {type(out).__name__}, not a mapping")
        return out if type(out) is dict else dict(out)

    # ------------------------------------------------------------ slow paths

    def _missing(self, field: str, raw: Any, plan: _Plan) -> FieldError:
        code = MISSING_CUSTOMER_ENTITY_ID if field == CUSTOMER_ENTITY_ID else MISSING_METRIC
        source = plan.sources.get(field)
        if source is None:
            where = "no column maps to it and there is no default"
        elif plan.slots[FIELDS.index(field)] < 0:
            where = f"column {source!r} is not in the row"
        else:
            where = f"column {source!r} is {show(raw)}"
        return FieldError(code, field, f"{field} is missing: {where}")

    def _identifier_slow(self, raw: Any, field: str, plan: _Plan) -> str | None:
        code = {
            CUSTOMER_ENTITY_ID: INVALID_CUSTOMER_ENTITY_ID,
            METRIC: INVALID_METRIC,
            JOB_ID: INVALID_JOB_ID,
        }[field]
        text = convert_identifier(raw, field, code)
        if text is None:
            text = self._defaults.get(field)
        if text is None and field != JOB_ID:
            raise self._missing(field, raw, plan)
        return text

    def _value_slow(self, raw: Any, plan: _Plan) -> Any:
        if VALUE in self._defaults and _absent(raw):
            return self._defaults[VALUE]
        try:
            return convert_value(raw)
        except FieldError as exc:
            source = plan.sources.get(VALUE)
            if raw is None and (source is None or plan.slots[2] < 0):
                where = "no column maps to it" if source is None else f"column {source!r} is not in the row"
                raise FieldError(INVALID_VALUE, VALUE, f"value is missing: {where}") from None
            raise exc from None

    def _timestamp_slow(self, raw: Any, plan: _Plan) -> str:
        kind = type(raw)
        if kind is str and _CANONICAL_UTC.fullmatch(raw):
            # Already the wire form (the common uncached case): check the date is real and in range.
            try:
                moment = datetime.fromisoformat(raw[:19])
            except ValueError:
                pass
            else:
                if TIMESTAMP_MIN <= moment <= TIMESTAMP_MAX:
                    if len(self._ts_text) >= _TS_CACHE_LIMIT:
                        self._ts_text.clear()
                    self._ts_text[raw] = raw
                    return raw
        if _absent(raw):
            default = self._defaults.get(TIMESTAMP)
            if default is not None:
                return default
            source = plan.sources.get(TIMESTAMP)
            if raw is None and (source is None or plan.slots[3] < 0):
                where = "no column maps to it" if source is None else f"column {source!r} is not in the row"
                raise FieldError(INVALID_TIMESTAMP, TIMESTAMP, f"timestamp is missing: {where}")
        text = self._timestamps(raw)
        if kind is str:
            cache: dict[Any, str] = self._ts_text
        elif kind is datetime and (raw.tzinfo is _UTC or (self._tz_is_utc and raw.tzinfo is None)):
            cache = self._ts_datetime
        else:
            return text
        if len(cache) >= _TS_CACHE_LIMIT:
            cache.clear()  # bounded: a run of all-distinct timestamps stays flat in memory
        cache[raw] = text
        return text

    def _metadata_slow(self, mapped: Any, columns: dict[str, Any], plan: _Plan) -> orjson.Fragment:
        """The metadata object: the mapped one (or the default), with the metadata columns on top."""
        base: Any
        if is_missing(mapped):
            base = self._defaults.get(METADATA)
        elif isinstance(mapped, (str, bytes, bytearray)):
            if not mapped.strip():
                base = self._defaults.get(METADATA)
            else:
                try:
                    base = orjson.loads(mapped)
                except orjson.JSONDecodeError:
                    base = None
                if not isinstance(base, dict):
                    raise FieldError(
                        INVALID_METADATA, METADATA, f"metadata {show(mapped)} is not a JSON object"
                    )
        elif isinstance(mapped, Mapping):
            base = mapped
        else:
            raise FieldError(
                INVALID_METADATA,
                METADATA,
                f"metadata {show(mapped)} of type {type(mapped).__name__} is not an object",
            )
        # The metadata columns win over the object's keys.
        bag = {**base, **columns} if base and columns else base or columns
        if not bag:
            return _EMPTY
        try:
            return orjson.Fragment(orjson.dumps(bag, default=_metadata_default, option=_METADATA_OPTIONS))
        except TypeError:
            pass  # non-string keys, huge ints, values json_safe refuses: decide below
        try:
            safe = json_safe(bag, strict=True)
            return orjson.Fragment(orjson.dumps(safe, option=_SORT))
        except (JsonSafeError, TypeError, ValueError, RecursionError) as exc:
            raise FieldError(
                INVALID_METADATA, METADATA, f"metadata cannot be encoded as JSON: {exc}"
            ) from None

    def _encode_slow(self, body: dict[str, Any], plan: _Plan) -> bytes:
        """The event orjson refused: settle the metadata bag the slow way, else name the bad field."""
        bag = body["metadata"]
        if isinstance(bag, dict):  # a bag of column values (a Fragment is already encoded)
            body["metadata"] = self._metadata_slow(None, bag, plan)  # raises invalid_metadata
            try:
                return orjson.dumps(body)
            except TypeError:
                pass
        raise self._encoding_error(body)

    def _encoding_error(self, body: dict[str, Any]) -> FieldError:
        # Only text with lone surrogates (not UTF-8) can fail here: find the field.
        for field, code in (
            (CUSTOMER_ENTITY_ID, INVALID_CUSTOMER_ENTITY_ID),
            (METRIC, INVALID_METRIC),
            (JOB_ID, INVALID_JOB_ID),
        ):
            if field in body:
                try:
                    orjson.dumps(body[field])
                except TypeError as exc:
                    return FieldError(code, field, f"{field} {show(body[field])} is not valid text: {exc}")
        return FieldError(INVALID_ROW, None, "the event cannot be encoded as JSON")

    def _too_large(self, size: int, content: bytes) -> FieldError:
        error = FieldError(
            EVENT_TOO_LARGE,
            None,
            f"event is {size} bytes, more than max_event_bytes={self.max_event_bytes}",
        )
        error.event = _decode_quietly(content)
        return error

    def _id_slow(self, vals: Sequence[Any], plan: _Plan, content: bytes) -> tuple[str, bytes]:
        """eventId from event_id_column (hashed with the namespace) or from a mapped eventId (as is)."""
        i_eid, i_key = plan.slots[5], plan.slots[7]
        if self.event_id_column:
            raw = vals[i_key] if i_key >= 0 else None
            key = convert_identifier(raw, EVENT_ID, INVALID_EVENT_ID)
            if key is None:
                where = "is not in the row" if i_key < 0 else f"is {show(raw)}"
                raise FieldError(
                    INVALID_EVENT_ID, EVENT_ID, f"event_id_column {self.event_id_column!r} {where}"
                )
            hasher = self._key_seed.copy()
            hasher.update(key.encode("utf-8", "surrogatepass"))
            digest = hasher.digest()
            event_id = "ev_" + digest.hex()
            id_json = b'"' + event_id.encode() + b'"'
            what = f"key {show(key)} of event_id_column {self.event_id_column!r}"
        else:
            raw = vals[i_eid]
            own = convert_identifier(raw, EVENT_ID, INVALID_EVENT_ID)
            if own is None:  # no id of its own: the content id, as for every other row
                hasher = self._content_seed.copy()
                hasher.update(content)
                digest = hasher.digest()
                seen = self._occurrences.add(int.from_bytes(digest, "little") & _M64)
                event_id = "ev_" + digest.hex() if seen == 1 else f"ev_{digest.hex()}-{seen}"
                data = b'%b,"eventId":"%b"}' % (content[:-1], event_id.encode())
                if len(data) > self.max_event_bytes:
                    raise self._too_large(len(data), content)
                return event_id, data
            try:
                id_json = orjson.dumps(own)
            except TypeError as exc:
                raise FieldError(
                    INVALID_EVENT_ID, EVENT_ID, f"eventId {show(own)} is not valid text: {exc}"
                ) from None
            hasher = self._own_id_seed.copy()
            hasher.update(own.encode("utf-8", "surrogatepass"))
            digest = hasher.digest()
            event_id = own
            what = f"eventId {show(own)}"
        data = content[:-1] + b',"eventId":' + id_json + b"}"
        if len(data) > self.max_event_bytes:
            raise self._too_large(len(data), content)
        # Counted only once the event is otherwise valid: a rejected row does not take the key.
        if self._occurrences.add(int.from_bytes(digest, "little") & _M64) > 1:
            error = FieldError(
                DUPLICATE_EVENT_ID, EVENT_ID, f"{what} was already used by an earlier row in this run"
            )
            error.event = _decode_quietly(data)
            raise error
        return event_id, data

    # ------------------------------------------------------------ rejections

    def _reject(
        self,
        index: int,
        error: FieldError,
        row: Any,
        vals: Any,
        plan: _Plan | None,
        fixed: _Plan | None,
    ) -> Rejection:
        self._rejected += 1
        self.rejections_by_code[error.code] = self.rejections_by_code.get(error.code, 0) + 1
        source = _source_row(row, fixed)
        event = error.event
        if event is None and plan is not None and not plan.error:
            event = _mapped_fields(vals, plan)
        return Rejection(
            index=index,
            error=_truncate(error.message),
            code=error.code,
            status_code=400,
            row_key=self._row_key(vals, plan, source),
            row=source,
            event=event,
            field=error.field,
        )

    def _row_key(self, vals: Any, plan: _Plan | None, source: dict[str, Any] | None) -> str | None:
        if not self.event_id_column:
            return None
        try:
            if plan is not None and not plan.error and plan.slots[7] >= 0:
                key = convert_identifier(vals[plan.slots[7]], EVENT_ID, INVALID_EVENT_ID)
                if key is not None:
                    return _truncate(key)
            if source is not None:
                names = [k if isinstance(k, str) else None for k in source]
                found = _find(names, self.event_id_column)
                if found.index >= 0:
                    key = convert_identifier(source[names[found.index]], EVENT_ID, INVALID_EVENT_ID)
                    return _truncate(key) if key is not None else None
        except Exception:
            return None
        return None


# ---------------------------------------------------------------- helpers


def _in_lists(items: Iterator[Event | Rejection]) -> Iterator[list[Event | Rejection]]:
    while chunk := list(islice(items, _FAST_SLICE)):
        yield chunk


def _absent(value: Any) -> bool:
    """Missing (None, NaN, NaT, NA) or blank text: what a default fills."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def _parse_timezone(name: Any) -> tuple[str, tzinfo, bool]:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"timezone must be an IANA zone name such as 'UTC' or 'Europe/Paris', not {name!r}")
    name = name.strip()
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return "UTC", _UTC, True
    try:
        return name, ZoneInfo(name), False
    except Exception:
        raise ValueError(f"timezone {name!r} is not a known IANA zone name") from None


def _decode_quietly(data: bytes) -> dict[str, Any] | None:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _source_row(row: Any, fixed: _Plan | None) -> dict[str, Any] | None:
    """The source row as a JSON-safe dict, for the report; never raises."""
    try:
        if fixed is not None and isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
            if len(row) == len(fixed.columns):
                return json_safe(dict(zip(fixed.columns, row, strict=True)))
            return {"_values": json_safe(list(row))}
        if isinstance(row, Mapping):
            return json_safe(row)
        return {"_row": json_safe(row)}
    except Exception:
        return None


def _mapped_fields(vals: Any, plan: _Plan) -> dict[str, Any] | None:
    """The raw values the plan maps to each field (JSON-safe), for the report; never raises."""
    try:
        event: dict[str, Any] = {}
        for field, i in zip(FIELDS, plan.slots[:7], strict=True):
            if i >= 0:
                event[field] = json_safe(vals[i])
        if plan.meta:
            # Under the field they become part of (on top of a mapped object, as in the event).
            columns = {name: json_safe(vals[i]) for name, i in plan.meta}
            mapped = event.get(METADATA)
            if mapped is None or isinstance(mapped, dict):
                event[METADATA] = {**(mapped or {}), **columns}
        return event
    except Exception:
        return None
