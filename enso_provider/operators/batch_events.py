"""EnsoBatchEventsOperator: usage rows (XCom or SQL) -> validated events -> Enso, a report and a policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from enso_provider.delivery import (
    DeliveryReport,
    ItemChunks,
)
from enso_provider.events import Event, EventMapper, Rejection, ids, json_safe
from enso_provider.exceptions import EnsoConfigError, EnsoError
from enso_provider.operators.base import EnsoDeliveryOperator
from enso_provider.operators.policy import FailurePolicy
from enso_provider.operators.rejected import RejectedRecordsWriter, check_writable
from enso_provider.operators.report import log_report
from enso_provider.operators.rows import as_rows, unwrap
from enso_provider.sources import SqlChunks
from enso_provider.version_compat import AirflowFailException, BaseHook

if TYPE_CHECKING:
    from airflow.sdk import Context


def run_namespace(
    context: Context, partition: Callable[[], Any] | None = None, *, event_id_version: str = ids.VERSION
) -> str:
    """
    The eventId namespace of one task run: the DAG, the task, and the data interval (the run id when
    the run has none), plus, for a mapped task instance, what its partition is.

    A retry or a cleared task has the same namespace, so it builds the same eventIds; two intervals
    or two partitions never share one. A partition is named by ``partition`` (its rendered SQL and
    parameters, or its arguments), canonicalised, never by its map index, so reordering, adding or
    removing other partitions leaves its ids alone; ``event_id_version="v1"`` keeps the map index of
    the landed derivation for intervals sent before.

    :param context: the task's context.
    :param partition: gives the identity of a mapped task instance's partition (plain JSON values);
        asked only for a mapped task instance.
    :param event_id_version: the eventId derivation.
    :raises AirflowFailException: when a mapped partition's identity is not JSON-serialisable.
    """
    ti = context["ti"]
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    window = f"{start.isoformat()}/{end.isoformat()}" if start is not None and end is not None else None
    if window is None or start == end:
        # Manual runs and CronTriggerTimetable runs have no (or a zero-length) interval.
        window = f"run:{context['run_id']}" if window is None else f"{window}|run:{context['run_id']}"
    parts = [ti.dag_id, ti.task_id, window]
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        if event_id_version == "v1":
            parts.append(f"map:{map_index}")
        else:
            try:
                parts.append(ids.partition_key(partition() if partition is not None else None))
            except ids.CanonicalError as err:
                raise AirflowFailException(
                    f"Mapped task {ti.task_id!r} (map index {map_index}): its partition's rendered "
                    f"parameters must be JSON values (str, number, bool, None, lists, dicts with string "
                    f"keys) to name its eventIds: {err}"
                ) from None
    return "|".join(parts)


class EnsoBatchEventsOperator(EnsoDeliveryOperator):
    """
    Send usage rows to Enso as events: from an upstream task (XCom) or from SQL, streamed.

    Every row is accounted for in the returned report: accepted by Enso, refused by Enso (``failed``),
    or rejected locally before sending (``invalid``), so that ``total == success + failed + invalid``.
    Everything deliverable is delivered first; then the failure policy decides the task's state.

    Source (exactly one):

    :param events: a list of mappings, or an XComArg such as ``upstream.output`` (resolved at run time).
        The rows are data, never templates: their strings are sent as written, and Airflow's
        rendered view of this field is a summary (the row count and the first row's keys).
    :param sql: one SELECT, or a path to a ``.sql`` file. (templated)
    :param sql_conn_id: the Airflow connection the SQL runs on; any connection whose hook is a
        ``DbApiHook`` (PostgreSQL, MySQL/MariaDB, SQLite, Snowflake, BigQuery, ...).
    :param parameters: the SQL's parameters. (templated)
    :param fetch_size: rows fetched per ``fetchmany`` while streaming the SQL result; by default
        ``batch_size``, so that reading, mapping and sending alternate a batch at a time (larger
        fetches leave the sending idle while they read). Raise it where each fetch is a network
        round trip to a distant database (a PostgreSQL server-side cursor).

    Mapping (see docs/rows-to-events.md):

    :param field_map: ``{event field: source column}``. (templated)
    :param defaults: constant fields for every event, e.g. ``{"metric": "api_calls"}``. (templated)
    :param metadata_columns: columns collected into ``metadata``, or ``"*"`` for every unmapped one.
    :param row_mapper: a callable ``row -> event mapping`` for anything the above cannot say.
    :param job_id: a ``JobId`` for every event, unless a row maps its own. (templated)
    :param event_id_column: a column holding a unique key per row, used for ``eventId``. The key is
        hashed with the DAG and task ids only, so the same key gives the same id in every run.
    :param timezone: the zone of naive timestamps (default UTC; never guessed from the clock).
    :param timestamp_unit: ``"s"`` or ``"ms"`` to accept epoch numbers as timestamps.
    :param event_id_version: the eventId derivation (docs/event-ids.md): ``"v2"`` (default), or
        ``"v1"`` to re-run intervals sent by releases before it under their first ids.

    Delivery:

    :param enso_conn_id: the Enso connection.
    :param batch_size: most events per request (default 500).
    :param max_batch_bytes: most bytes per request body (default 512 KiB).
    :param concurrency: most requests in flight (default 4).

    Policy:

    :param max_failures: most failed rows (rejected locally + refused by Enso) before the run is a
        breach; None for no limit. Default 0.
    :param max_failure_ratio: most failed rows as a share of all rows (0.0-1.0); None for no limit.
    :param on_breach: ``"fail"`` (the task fails without retrying) or ``"warn"`` (it logs a warning and
        succeeds).
    :param dry_run: read, map and validate everything, post nothing.
    :param rejected_records_path: where every rejected row is written as JSON Lines, through Airflow's
        ``ObjectStoragePath`` (``file://``, ``s3://``, ``gs://``, ...). (templated)
    """

    template_fields: Sequence[str] = (
        "events",
        "sql",
        "parameters",
        "field_map",
        "defaults",
        "job_id",
        "rejected_records_path",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json", "field_map": "json", "defaults": "json"}
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        events: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        fetch_size: int | None = None,
        field_map: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
        metadata_columns: Sequence[str] | Literal["*"] | None = None,
        row_mapper: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        job_id: str | None = None,
        event_id_column: str | None = None,
        timezone: str = "UTC",
        timestamp_unit: Literal["s", "ms"] | None = None,
        event_id_version: str = ids.VERSION,
        rejected_records_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.events = events
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.fetch_size = fetch_size
        self.field_map = field_map
        self.defaults = defaults
        self.metadata_columns = metadata_columns
        self.row_mapper = row_mapper
        self.job_id = job_id
        self.event_id_column = event_id_column
        self.timezone = timezone
        self.timestamp_unit = timestamp_unit
        self.event_id_version = event_id_version
        self.rejected_records_path = rejected_records_path

    # `events` stays a template field, so that Airflow resolves an XComArg there and sets the upstream
    # dependency; held in EventRows, the rows themselves are never rendered (see operators/rows.py).
    @property
    def events(self) -> Any:
        """The rows (held as :class:`~enso_provider.operators.rows.EventRows`), an XComArg, or None."""
        return self._events

    @events.setter
    def events(self, value: Any) -> None:
        self._events = as_rows(value)

    # -- argument checks, at execute time ----------------------------------------------------------------

    def _check_arguments(self) -> FailurePolicy:
        rows = unwrap(self.events)
        has_events = rows is not None
        has_sql = bool(self.sql and str(self.sql).strip())
        if has_events == has_sql:
            raise AirflowFailException(
                "EnsoBatchEventsOperator needs exactly one source: `events` (a list or an XComArg) "
                f"or `sql` with `sql_conn_id`; got {'both' if has_events else 'neither'}."
            )
        if has_sql and not self.sql_conn_id:
            raise AirflowFailException("`sql` needs `sql_conn_id`, the connection to run it on.")
        if has_events and isinstance(rows, (str, bytes, Mapping)):
            raise AirflowFailException(
                f"`events` must be a list of mappings, got a {type(rows).__name__} (it is never "
                "rendered as a template: pass rows, or an XComArg such as upstream.output)."
            )
        if self.fetch_size is not None and (
            isinstance(self.fetch_size, bool) or not isinstance(self.fetch_size, int) or self.fetch_size < 1
        ):
            raise AirflowFailException(f"fetch_size must be a positive integer, got {self.fetch_size!r}")
        return self.checked_policy()

    def partition_identity(self) -> Any:
        """
        What this task instance's partition is, for the namespace of a mapped task: its rendered SQL
        and parameters (or, for XCom rows, the rows themselves, by json_safe's rules).
        """
        if self.sql:
            return {"sql": str(self.sql), "parameters": self.parameters}
        rows = unwrap(self.events)
        if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
            return {"events": json_safe(rows)}
        return {"events": rows}  # not a list: refused by the namespace, with its type

    def _mapper(self, context: Context) -> EventMapper:
        try:
            return EventMapper(
                field_map=self.field_map,
                defaults=self.defaults,
                metadata_columns=self.metadata_columns,
                row_mapper=self.row_mapper,
                job_id=self.job_id or None,
                event_id_column=self.event_id_column,
                timezone=self.timezone,
                timestamp_unit=self.timestamp_unit,
                namespace=run_namespace(
                    context, self.partition_identity, event_id_version=self.event_id_version
                ),
                event_id_version=self.event_id_version,
                # A key column is unique across runs: the same key must give the same id in every run
                # (overlapping windows, backfills), so its namespace leaves the interval out.
                event_id_namespace=f"{context['ti'].dag_id}|{context['ti'].task_id}",
            )
        except ValueError as err:
            raise AirflowFailException(f"Bad mapping arguments: {err}") from None

    # -- sources ------------------------------------------------------------------------------------------

    def _sql_hook(self) -> Any:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        assert self.sql_conn_id is not None
        hook = BaseHook.get_connection(self.sql_conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise AirflowFailException(
                f"Connection {self.sql_conn_id!r} gives a {type(hook).__name__}, which is not a DbApiHook: "
                "the SQL source needs a SQL database connection."
            )
        return hook

    def _items(self, mapper: EventMapper) -> ItemChunks:
        """The mapped rows, a list at a time: the delivery batches a run of events at once."""
        return ItemChunks(self._item_lists(mapper))

    def _item_lists(self, mapper: EventMapper) -> Iterator[list[Event | Rejection]]:
        rows = unwrap(self.events)
        if rows is not None:
            if not isinstance(rows, Iterable):
                raise AirflowFailException(f"`events` must be a list of mappings, got {type(rows).__name__}")
            yield from mapper.map_chunks(rows)
            return
        fetch_size = self.fetch_size or self.batch_size
        chunks = SqlChunks(self._sql_hook(), str(self.sql), self.parameters, fetch_size=fetch_size)
        for chunk in chunks:
            yield from mapper.map_chunks(chunk, columns=chunks.columns)

    # -- the run ------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        policy = self._check_arguments()
        mapper = self._mapper(context)
        writer = None
        if self.rejected_records_path:
            try:
                check_writable(self.rejected_records_path, "rejected_records_path")
            except ValueError as err:
                raise AirflowFailException(str(err)) from None
            writer = RejectedRecordsWriter(self.rejected_records_path)
        self.log.info(
            "Sending usage from %s to Enso (connection %r)%s",
            "SQL" if self.sql else "XCom",
            self.enso_conn_id,
            " as a dry run: nothing will be posted" if self.is_dry_run else "",
        )
        report: DeliveryReport | None = None
        try:
            report = self.deliver(self._items(mapper), on_failure=writer.write if writer else None)
        except EnsoError as err:
            if err.report is not None:
                partial = err.report.as_dict()
                partial["rejected_records_path"] = writer.path if writer and writer.written else None
                log_report(self.log, partial, level="error")
            self.log.error(
                "Delivery stopped: %s. A retry of this task sends the same eventIds again, "
                "so what was accepted above is not counted twice where Enso dedupes.",
                type(err).__name__,
            )
            raise
        finally:
            # Also after a stop: the file then lists what failed before it, and a retry replaces it.
            if writer is not None:
                writer.commit()
        return self.conclude(
            report, policy, rejected_records_path=writer.path if writer and writer.written else None
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """
        OpenLineage on completion: the SQL source as input, Enso's ``events/batch`` as output.

        Called by the OpenLineage provider's listener; ``None`` when that provider is not installed.
        See :mod:`enso_provider.operators.lineage`.

        :param task_instance: the finished task instance (unused: the run's state is on the operator).
        """
        from enso_provider.operators.lineage import enso_lineage

        return enso_lineage(self)


__all__ = ["EnsoBatchEventsOperator", "EnsoConfigError", "run_namespace"]
