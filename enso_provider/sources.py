"""
Row sources for the operators: SQL read as a stream through any Airflow ``DbApiHook``.

``DbApiHook.get_records`` is ``fetchall``; here the query runs on the hook's own DB-API connection and
rows arrive ``fetch_size`` at a time. Some drivers buffer a whole result client-side even behind
``fetchmany``; those get the cursor that streams from the server instead (a named cursor on
PostgreSQL, an unbuffered ``SSCursor`` on MySQL/MariaDB).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, suppress
from typing import Any

import orjson

log = logging.getLogger(__name__)

DEFAULT_FETCH_SIZE = 5000

# ``:name`` placeholders, not ``::type`` casts nor times such as ``'10:30'`` (a digit cannot start a name).
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def adapt_named_parameters(sql: str, parameters: Any, paramstyle: str | None) -> str:
    """
    Let one query text with ``:name`` placeholders run on any driver.

    sqlite3 (and other ``named`` drivers) take ``:name`` as it is; ``pyformat``/``format`` drivers
    (psycopg2, psycopg, MySQLdb, PyMySQL) want ``%(name)s``, and then a literal ``%`` must be doubled.
    Only names that are keys of ``parameters`` are replaced, and only when ``parameters`` is a mapping.
    """
    if not isinstance(parameters, Mapping) or paramstyle not in ("pyformat", "format"):
        return sql
    names = set(parameters)
    if not any(m.group(1) in names for m in _NAMED.finditer(sql)):
        return sql
    escaped = sql.replace("%", "%%")
    return _NAMED.sub(lambda m: f"%({m.group(1)})s" if m.group(1) in names else m.group(0), escaped)


def driver_paramstyle(conn: Any) -> str | None:
    """The DB-API ``paramstyle`` of the module a connection object comes from."""
    module = sys.modules.get(type(conn).__module__.split(".")[0])
    return getattr(module, "paramstyle", None)


# A run of 19 digits may be an integer beyond 64 bits, which orjson reads as a float, json as an int.
_LONG_DIGITS = re.compile(rb"\d{19}")


def read_json(data: str | bytes | memoryview) -> Any:
    """
    ``json.loads(data)``'s value, read by orjson (2-3x faster) where the two give the same value.

    They differ only for integers beyond 64 bits (orjson: a float), numbers beyond a double's range
    and lone surrogates (orjson refuses both): those texts are read by ``json.loads``.
    """
    if not isinstance(data, str) and not _LONG_DIGITS.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(bytes(data) if type(data) is memoryview else data)


def _psycopg_json_loader(cursor: Any) -> None:
    """Let a psycopg (3) cursor read json/jsonb with :func:`read_json` (the driver's own adapter hook)."""
    with suppress(Exception):
        loader = _psycopg_loader()
        for name in ("json", "jsonb"):
            cursor.adapters.register_loader(name, loader)


@functools.cache
def _psycopg_loader() -> type:
    from psycopg.adapt import Loader

    class ReadJson(Loader):
        """psycopg's text json/jsonb loader, reading with :func:`read_json` and no frame of its own."""

        load = staticmethod(read_json)  # type: ignore[assignment]

    return ReadJson


class SqlChunks:
    """
    The result of one query, as chunks of rows.

    :param hook: an Airflow ``DbApiHook`` (PostgreSQL, MySQL, SQLite, Snowflake, ...).
    :param sql: one SELECT statement.
    :param parameters: the query's parameters (a sequence or a mapping, as the driver takes them).
    :param fetch_size: rows per ``fetchmany``.
    """

    def __init__(
        self,
        hook: Any,
        sql: str,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        fetch_size: int = DEFAULT_FETCH_SIZE,
    ) -> None:
        self.hook = hook
        self.sql = sql
        self.parameters = parameters
        self.fetch_size = fetch_size
        self.columns: list[str] = []

    def __iter__(self) -> Iterator[Sequence[Sequence[Any]]]:
        with closing(self.hook.get_conn()) as conn:
            cursor = self._cursor(conn)
            try:
                if self.parameters is None:
                    cursor.execute(self.sql)
                else:
                    sql = adapt_named_parameters(self.sql, self.parameters, driver_paramstyle(conn))
                    cursor.execute(sql, self.parameters)
                if cursor.description is None:
                    raise ValueError("the SQL source ran a statement that returns no rows (not a SELECT?)")
                self.columns = [str(col[0]) for col in cursor.description]
                while True:
                    chunk = cursor.fetchmany(self.fetch_size)
                    if not chunk:
                        break
                    yield chunk
            finally:
                with suppress(Exception):
                    cursor.close()
                # Named and unbuffered cursors live in a transaction; end it without side effects.
                with suppress(Exception):
                    conn.rollback()

    def _cursor(self, conn: Any) -> Any:
        module = type(conn).__module__
        if module.startswith(("psycopg2", "psycopg")):
            # A named cursor keeps the result on the server; itersize is its per-round-trip fetch.
            cursor = conn.cursor(name=f"enso_stream_{uuid.uuid4().hex[:12]}")
            with suppress(AttributeError):
                cursor.itersize = self.fetch_size
            if not module.startswith("psycopg2"):
                _psycopg_json_loader(cursor)
            return cursor
        if module.startswith("MySQLdb"):
            import MySQLdb.cursors

            return conn.cursor(MySQLdb.cursors.SSCursor)
        if module.startswith("pymysql"):
            import pymysql.cursors

            return conn.cursor(pymysql.cursors.SSCursor)
        if module.startswith("mysql.connector"):
            return conn.cursor(buffered=False)
        # sqlite3 and most other drivers step through the result as fetchmany asks.
        return conn.cursor()
