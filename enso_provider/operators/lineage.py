"""
OpenLineage for :class:`~enso_provider.operators.batch_events.EnsoBatchEventsOperator`.

When ``apache-airflow-providers-openlineage`` is installed (and configured), the operator reports on
completion:

- input: the SQL source's table(s), named the way Airflow's own SQL operators name them (the
  namespace from the SQL connection's hook, ``get_openlineage_database_info``; the table names parsed
  from the query by the OpenLineage SQL parser), with the query as the job's ``sql`` facet. An XCom
  source (or ``@task.enso_events``) has no input dataset here: its upstream task reports its own.
- output: the Enso events endpoint, namespace the API base URL (``https://api.getenso.ai``), name
  ``events/batch``. A dry run posts nothing and reports no output.

Without the OpenLineage provider everything here returns ``None`` and imports nothing. Lineage never
fails a task: any error while building it is logged at debug level and the part is left out.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from enso_provider.operators.batch_events import EnsoBatchEventsOperator

log = logging.getLogger(__name__)

#: The output dataset's name: the endpoint events are posted to, relative to the base URL.
EVENTS_DATASET_NAME = "events/batch"

# DB-API placeholders the OpenLineage SQL parser cannot read, rewritten to ``:name`` before parsing
# (the job's ``sql`` facet keeps the query as written). Quoted strings are left alone.
_PLACEHOLDERS = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|%\((\w+)\)s|%s|\?""")


def enso_lineage(operator: EnsoBatchEventsOperator) -> OperatorLineage | None:
    """
    The operator's lineage after a run, or ``None`` when the OpenLineage provider is not installed.

    :param operator: the operator instance that has just run (its templates rendered).
    """
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
    except ImportError:
        return None

    lineage: OperatorLineage = OperatorLineage()
    if operator.sql and operator.sql_conn_id:
        try:
            source = sql_source_lineage(str(operator.sql), operator.sql_conn_id)
        except Exception:
            log.debug("OpenLineage: could not build the SQL source's lineage", exc_info=True)
            source = None
        if source is not None:
            lineage = source
    if not operator.is_dry_run:
        base_url = _base_url(operator)
        if base_url:
            lineage.outputs.append(Dataset(namespace=base_url, name=EVENTS_DATASET_NAME))
    return lineage


def sql_source_lineage(sql: str, conn_id: str) -> OperatorLineage | None:
    """
    The input datasets and ``sql`` job facet of a query on an Airflow SQL connection.

    The namespace, dialect and default schema come from the connection's ``DbApiHook`` (its
    ``get_openlineage_*`` methods), as for Airflow's own SQL operators; a hook without OpenLineage
    support gets ``<conn_type>://<host>[:<port>]`` (SQLite: ``sqlite://<path>``, schema ``main``).
    Unqualified tables get the hook's default schema (PostgreSQL asks the server for
    ``CURRENT_SCHEMA``; MySQL has none, so the connection's database); table names are read from the
    query alone: no metadata query is sent to the database.

    :param sql: the rendered query.
    :param conn_id: the SQL connection's id.
    """
    from airflow.providers.openlineage.sqlparser import DatabaseInfo, SQLParser
    from openlineage.client.facet_v2 import sql_job

    from enso_provider.version_compat import BaseHook

    connection = BaseHook.get_connection(conn_id)
    hook: Any = connection.get_hook()
    database_info = _call(hook, "get_openlineage_database_info", connection)
    default_schema: str | None = None
    if database_info is not None:
        default_schema = _call(hook, "get_openlineage_default_schema")
    else:
        conn_type = (connection.conn_type or "sql").lower()
        host = connection.host or ""
        authority = f"{host}:{connection.port}" if host and connection.port else host
        database_info = DatabaseInfo(scheme=conn_type, authority=authority or None)
        if conn_type == "sqlite":
            default_schema = "main"
    dialect = _call(hook, "get_openlineage_database_dialect", connection) or "generic"
    if not default_schema:
        # MySQL has databases, not schemas: the connection's database qualifies unqualified tables.
        # Otherwise Airflow's generic default (DbApiHook's), when the hook could not say.
        default_schema = (connection.schema if dialect == "mysql" else None) or "public"

    parser = SQLParser(dialect=dialect, default_schema=default_schema)
    lineage = parser.generate_openlineage_metadata_from_sql(
        sql=_parsable(sql),
        hook=hook,
        database_info=database_info,
        use_connection=False,
    )
    lineage.job_facets["sql"] = sql_job.SQLJobFacet(query=SQLParser.normalize_sql(sql), dialect=dialect)
    return lineage


def _parsable(sql: str) -> str:
    """Rewrite ``%(name)s``, ``%s`` and ``?`` placeholders to ``:name`` / ``:pN`` for the parser."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1):
            return match.group(1)
        if match.group(2):
            return f":{match.group(2)}"
        count += 1
        return f":p{count}"

    return _PLACEHOLDERS.sub(replace, sql)


def _call(hook: Any, method: str, *args: Any) -> Any:
    """A hook's optional OpenLineage method, or ``None`` when it has none or it fails."""
    function = getattr(hook, method, None)
    if function is None:
        return None
    try:
        return function(*args)
    except Exception:
        log.debug("OpenLineage: %s.%s failed", type(hook).__name__, method, exc_info=True)
        return None


def _base_url(operator: EnsoBatchEventsOperator) -> str | None:
    """The API base URL the run posted to (the hook resolved it in ``execute``)."""
    try:
        return str(operator.hook.base_url).rstrip("/")
    except Exception:
        log.debug("OpenLineage: no Enso base URL for connection %r", operator.enso_conn_id, exc_info=True)
        return None


__all__ = ["EVENTS_DATASET_NAME", "enso_lineage", "sql_source_lineage"]
