"""
The mapper: rows in, one :class:`Event` or :class:`Rejection` out per row.

A plan (:mod:`._plan`) is compiled once per column layout; the row loop takes values already in
the right form as they are and hands the rest to :class:`._fields.FieldReader`; each event is
encoded once by orjson and gets its id from :class:`._ids.EventIds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any, Literal

from enso_provider.events import ids
from enso_provider.events._columns import ColumnEncoder, eligible, positions
from enso_provider.events._fields import FieldReader
from enso_provider.events._identity import EventIdentity
from enso_provider.events._legacy import v1_content
from enso_provider.events._metadata import event_content
from enso_provider.events._options import check_defaults, check_field_map, check_metadata_columns
from enso_provider.events._plan import PLAN_CACHE_LIMIT, Plan, compile_plan
from enso_provider.events._records import (
    CUSTOMER_ENTITY_ID,
    EVENT_ID,
    INVALID_ROW,
    JOB_ID,
    METADATA,
    METRIC,
    Event,
    FieldError,
    Rejection,
)
from enso_provider.events._rejections import mapped_fields, row_key, source_row, truncate
from enso_provider.events._shapes import as_dict, mapped_by, sequence_values
from enso_provider.events._timestamps import TimestampConverter, TimestampTexts, parse_timezone
from enso_provider.events._values import NumberText, plain_value

#: Items per list of :meth:`EventMapper.map_chunks`.
CHUNK = 1024


def _stripped(raw: Any) -> str | None:
    """A plain string's stripped text (blank gives ''), or None for anything else."""
    return raw.strip() if type(raw) is str else None


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
    :param event_id_version: the eventId derivation: ``"v2"`` (default, see docs/event-ids.md), or
        ``"v1"``, the derivation of releases before it, to re-run intervals already sent with it.
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
        event_id_version: str = ids.VERSION,
    ) -> None:
        if event_id_version not in ids.VERSIONS:
            raise ValueError(
                f"event_id_version must be one of {', '.join(ids.VERSIONS)}, not {event_id_version!r}"
            )
        self.event_id_version = event_id_version
        self._v1 = event_id_version == "v1"
        self.timezone_name, tz, tz_is_utc = parse_timezone(timezone)
        if timestamp_unit not in (None, "s", "ms"):
            raise ValueError(f"timestamp_unit must be 's', 'ms' or None, not {timestamp_unit!r}")
        self.timestamp_unit = timestamp_unit
        converter = TimestampConverter(tz, tz_is_utc, timestamp_unit)
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

        self.field_map = check_field_map(field_map)
        if EVENT_ID in self.field_map and event_id_column:
            raise ValueError("field_map maps eventId and event_id_column is set: choose one")
        self._defaults = check_defaults(defaults, job_id, converter)
        self.metadata_columns = check_metadata_columns(metadata_columns)

        self._fields = FieldReader(self._defaults, TimestampTexts(converter))
        self._ids = ids.EventIds(namespace, self.event_id_namespace)
        self._identity = EventIdentity(self._ids, max_event_bytes, event_id_column)
        self._columns = ColumnEncoder(
            self._fields.timestamps, self._defaults.get(METADATA), self._defaults.get(JOB_ID)
        )
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self._column_plans: dict[tuple[Any, ...], Plan] = {}
        self._rows_seen = 0
        self._rejected = 0
        #: Rejections so far, by code.
        self.rejections_by_code: dict[str, int] = {}

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
        return len(self._ids.occurrences)

    def __repr__(self) -> str:
        return (
            f"EventMapper(namespace={self.namespace!r}, rows_seen={self._rows_seen}, "
            f"rejected={self._rejected})"
        )

    # ------------------------------------------------------------ plans

    def _compile(self, columns: tuple[Any, ...], strict: bool) -> Plan:
        return compile_plan(
            columns,
            strict=strict,
            field_map=self.field_map,
            event_id_column=self.event_id_column,
            metadata_columns=self.metadata_columns,
            metadata_default=METADATA in self._defaults,
        )

    def _plan_for_keys(self, keys: tuple[Any, ...]) -> Plan:
        plan = self._plans.get(keys)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_LIMIT:
                self._plans.clear()
            plan = self._plans[keys] = self._compile(keys, strict=False)
        return plan

    def _plan_for_columns(self, columns: Sequence[str] | None) -> Plan | None:
        if columns is None:
            return None
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise ValueError("columns must be a sequence of column names")
        names = tuple(columns)
        if not all(isinstance(n, str) for n in names):
            raise ValueError("columns must all be strings")
        plan = self._column_plans.get(names)
        if plan is None:
            # With a row_mapper the options apply to its output: these columns only name the values.
            plan = self._compile(names, strict=self.row_mapper is None)
            if len(self._column_plans) >= PLAN_CACHE_LIMIT:
                self._column_plans.clear()
            self._column_plans[names] = plan
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
        # One row at a time: nothing is read or counted before it is asked for.
        return self._run_rows(rows, self._plan_for_columns(columns))

    def map_chunks(
        self, rows: Iterable[Any], columns: Sequence[str] | None = None
    ) -> Iterator[list[Event | Rejection]]:
        """
        :meth:`map`, a list of items at a time (up to about a thousand), for consumers that batch.

        The same items in the same order, with the same state; ``rows`` is read ahead by up to one
        list (its rows are indexed and counted when the list is made).

        :param rows: as for :meth:`map`.
        :param columns: as for :meth:`map`.
        :raises ValueError: as :meth:`map` does, at once.
        """
        fixed = self._plan_for_columns(columns)
        if (
            fixed is None
            or self.row_mapper is not None
            or self._v1
            or self.event_id_column
            or not eligible(fixed)
        ):
            items = self._run_rows(rows, fixed)
            return iter(lambda: list(islice(items, CHUNK)), [])
        return self._column_chunks(iter(rows), fixed)

    def map_one(self, row: Any, columns: Sequence[str] | None = None) -> Event | Rejection:
        """
        Map a single row (convenient in tests and TaskFlow code); same state as :meth:`map`.

        :param row: a mapping, or a sequence named by ``columns``.
        :param columns: the column names of a sequence row.
        """
        return next(iter(self.map([row], columns)))

    def _run_rows(self, rows: Iterable[Any], fixed: Plan | None) -> Iterator[Event | Rejection]:
        width = len(fixed.columns) if fixed is not None else -1
        tuple_rows = fixed is not None and self.row_mapper is None
        for row in rows:
            # Read back each row: another map() of the same run may have advanced it meanwhile.
            index = self._rows_seen
            self._rows_seen = index + 1
            plan, vals = fixed, row
            try:
                if not (tuple_rows and type(row) is tuple and len(row) == width):
                    plan, vals = self._layout(row, fixed, width)
                yield self._event(index, vals, plan)  # type: ignore[arg-type]
            except Exception as exc:  # never let one row's content stop the run
                yield self._reject(index, exc, row, vals, plan, fixed)

    def _column_chunks(self, rows: Iterator[Any], plan: Plan) -> Iterator[list[Event | Rejection]]:
        """:meth:`map_chunks` of tuple rows: each list of plain tuples encoded column-wise."""
        width = len(plan.columns)
        while chunk := list(islice(rows, CHUNK)):
            if set(map(type, chunk)) == {tuple} and set(map(len, chunk)) == {width}:
                yield self._map_columns(chunk, plan)
            else:
                yield list(self._run_rows(chunk, plan))

    def _map_columns(self, rows: list[tuple[Any, ...]], plan: Plan) -> list[Event | Rejection]:
        """The items of a list of tuple rows: the same items, in the same order, as the row loop's."""
        start = self._rows_seen
        self._rows_seen = start + len(rows)
        errors: dict[int, Exception] = {}  # made rejections in row order at the end, as the row loop does
        contents = self._columns.contents(rows, plan)
        for i in positions(contents):  # the rows the column form left to the row loop
            try:
                contents[i] = self._content(rows[i], plan)
            except Exception as exc:
                errors[i] = exc
        identity = self._identity
        if max(map(len, filter(None, contents)), default=0) > identity.content_limit:
            for i, content in enumerate(contents):
                if content is not None and len(content) > identity.content_limit:
                    errors[i] = identity.content_too_large(content)
        todo: Sequence[int] = range(len(rows))
        sent: list[bytes] = contents  # type: ignore[assignment]
        if errors:
            todo = [i for i in todo if i not in errors]
            sent = [contents[i] for i in todo]  # type: ignore[misc]
        events, oversize = identity.content_events(start, todo, sent)
        errors.update(oversize)
        if not errors:
            return events  # type: ignore[return-value]
        items: list[Any] = [None] * len(rows)
        for i, event in zip(todo, events, strict=True):
            items[i] = event
        for i in sorted(errors):
            items[i] = self._reject(start + i, errors[i], rows[i], rows[i], plan, plan)
        return items

    def _event(self, index: int, vals: Sequence[Any], plan: Plan) -> Event:
        """The event of one row's values; raises FieldError for a value that cannot be sent."""
        content = self._content(vals, plan)
        own_id = plan.i_eid >= 0 and vals[plan.i_eid] is not None
        if not own_id and not self.event_id_column:
            return self._identity.content_event(index, content)
        return self._identity.own_or_key_event(index, vals, plan, content)

    def _content(self, vals: Sequence[Any], plan: Plan) -> bytes:
        """The canonical content of one row's values; raises FieldError for a value that cannot be sent."""
        if plan.error:
            raise FieldError(INVALID_ROW, None, plan.error)
        fields = self._fields
        raw_cid, raw_metric, raw_value, raw_ts = plan.required(vals)
        cid = _stripped(raw_cid) or fields.required(raw_cid, CUSTOMER_ENTITY_ID, plan)
        metric = _stripped(raw_metric) or fields.required(raw_metric, METRIC, plan)
        value = plain_value(raw_value)
        if value is None:
            value = fields.value(raw_value, plan)
        ts = fields.timestamps.lookup(raw_ts) or fields.timestamp(raw_ts, plan)
        job = self._job(vals, plan)
        if self._v1:
            return v1_content(fields, vals, plan, cid, job, metric, ts, value)
        meta = fields.metadata(vals, plan) if plan.meta or plan.i_meta >= 0 else fields.metadata_constant
        amount = ids.number(Decimal(value) if isinstance(value, NumberText) else value)
        try:
            return event_content(cid, job, meta, metric, ts, amount)
        except UnicodeEncodeError:
            raise fields.bad_text(cid, metric, job) from None

    def _job(self, vals: Sequence[Any], plan: Plan) -> str | None:
        default = self._defaults.get(JOB_ID)
        if plan.i_job < 0:
            return default
        raw = vals[plan.i_job]
        if raw is None:
            return default
        return _stripped(raw) or self._fields.identifier(raw, JOB_ID, plan)

    # ------------------------------------------------------------ row shapes

    def _layout(self, row: Any, fixed: Plan | None, width: int) -> tuple[Plan, Sequence[Any]]:
        """``(plan, values)`` of a row that is not a plain tuple of the columns' width."""
        if fixed is not None and self.row_mapper is None:
            return fixed, sequence_values(row, width)
        if self.row_mapper is None:
            mapping = row if type(row) is dict else as_dict(row, None)
        else:
            mapping = mapped_by(self.row_mapper, row, fixed.columns if fixed is not None else None)
        keys = tuple(mapping)
        plan = self._plans.get(keys) or self._plan_for_keys(keys)
        return plan, tuple(mapping.values())

    # ------------------------------------------------------------ rejections

    def _reject(
        self, index: int, exc: Exception, row: Any, vals: Any, plan: Plan | None, fixed: Plan | None
    ) -> Rejection:
        if isinstance(exc, FieldError):
            error = exc
        else:
            error = FieldError(INVALID_ROW, None, f"row could not be mapped: {type(exc).__name__}: {exc}")
        self._rejected += 1
        self.rejections_by_code[error.code] = self.rejections_by_code.get(error.code, 0) + 1
        source = source_row(row, fixed)
        event = error.event
        if event is None and plan is not None and not plan.error:
            event = mapped_fields(vals, plan)
        return Rejection(
            index=index,
            error=truncate(error.message),
            code=error.code,
            status_code=400,
            row_key=row_key(self.event_id_column, vals, plan, source),
            row=source,
            event=event,
            field=error.field,
        )
