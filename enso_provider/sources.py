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
_LONG_DIGITS = b"0" * 19
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)


def read_json(data: str | bytes | memoryview) -> Any:
    """
    ``json.loads(data)``'s value, read by orjson (2-3x faster) where the two give the same value.

    They differ only for integers beyond 64 bits (orjson: a float), numbers beyond a double's range
    and lone surrogates (orjson refuses both): those texts are read by ``json.loads``.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    # Translate-then-find runs in C throughout: a third of a regular expression's cost per value.
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data if isinstance(data, str) else raw)


def _read_json_with_driver(cursor: Any, module: str) -> None:
    """
    Have a PostgreSQL cursor read json/jsonb with :func:`read_json`, through the driver's own hook.

    The values (also inside arrays and composites) are those of the drivers' ``json.loads`` loaders.
    """
    try:
        if module.startswith("psycopg2"):
            import psycopg2.extensions as extensions

            caster = extensions.new_type((114, 3802), "ENSO_JSON", _psycopg2_cast)
            extensions.register_type(caster, cursor)
        else:
            loader = _psycopg_loader()
            for name in ("json", "jsonb"):
                cursor.adapters.register_loader(name, loader)
    except Exception:  # an unknown driver build keeps its own loaders: the same values, slower
        log.debug("json/jsonb keep the driver's own loader on this cursor", exc_info=True)


def _psycopg2_cast(text: str | None, _cursor: Any) -> Any:
    return None if text is None else read_json(text)


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
                chunk = None
                if cursor.description is None and getattr(cursor, "name", None):
                    # psycopg2's named cursor describes its result only once the first rows are fetched.
                    chunk = cursor.fetchmany(self.fetch_size)
                if cursor.description is None:
                    raise ValueError("the SQL source ran a statement that returns no rows (not a SELECT?)")
                self.columns = [str(col[0]) for col in cursor.description]
                while True:
                    if chunk is None:
                        chunk = cursor.fetchmany(self.fetch_size)
                    if not chunk:
                        break
                    yield chunk
                    chunk = None
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
            _read_json_with_driver(cursor, module)
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
