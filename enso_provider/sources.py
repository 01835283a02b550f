"""
Row sources for the operators: SQL read as a stream through any Airflow ``DbApiHook``.

``DbApiHook.get_records`` is ``fetchall``; here the query runs on the hook's own DB-API connection and
rows arrive ``fetch_size`` at a time. Some drivers buffer a whole result client-side even behind
``fetchmany``; those get the cursor that streams from the server instead (a named cursor on
PostgreSQL, an unbuffered ``SSCursor`` on MySQL/MariaDB).
"""

from __future__ import annotations

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

#: PostgreSQL's json and jsonb type oids, the ``type_code`` in a psycopg ``cursor.description``.
_JSON_OIDS = frozenset((114, 3802))


def _has_long_digits(data: bytes | memoryview) -> bool:
    # translate-then-find is C all the way: about 5x a regex over the same bytes.
    return _LONG_DIGITS in bytes(data).translate(_DIGITS_AS_ZERO)


def read_json(data: str | bytes | memoryview) -> Any:
    """
    ``json.loads(data)``'s value, read by orjson (2-3x faster) where the two give the same value.

    They differ only for integers beyond 64 bits (orjson: a float), numbers beyond a double's range
    and lone surrogates (orjson refuses both): those texts are read by ``json.loads``.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _has_long_digits(raw):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(bytes(data) if type(data) is memoryview else data)


def read_json_column(texts: Sequence[Any]) -> list[Any]:
    """
    :func:`read_json` of each text of a column, with the checks done once for the whole column.

    One scan of the column for long digit runs, then one orjson pass. A column with a text orjson must
    not read falls back to :func:`read_json` per text; a value that is not a text is kept as it is.
    """
    present = [text for text in texts if text is not None]
    try:
        joined = "\x00".join(present).encode("utf-8", "surrogatepass")
    except TypeError:  # a value the driver gave as something other than text
        return [read_json(value) if isinstance(value, str) else value for value in texts]
    if not _has_long_digits(joined):
        loads = orjson.loads
        try:
            if len(present) == len(texts):
                return list(map(loads, texts))
            return [None if text is None else loads(text) for text in texts]
        except orjson.JSONDecodeError:
            pass
    return [None if text is None else read_json(text) for text in texts]


def _json_as_text(cursor: Any, module: str) -> bool:
    """
    Have a PostgreSQL cursor give json/jsonb as text, for :func:`read_json_column`.

    The drivers' own json loaders call ``json.loads`` once per value; text comes from their C loaders.
    :return: whether the cursor now gives json/jsonb as text.
    """
    try:
        if module.startswith("psycopg2"):
            import psycopg2.extensions

            extensions = psycopg2.extensions
            extensions.register_type(
                extensions.new_type(tuple(_JSON_OIDS), "ENSO_JSON", lambda text, _: text), cursor
            )
        else:
            from psycopg.types.string import TextLoader

            for name in ("json", "jsonb"):
                cursor.adapters.register_loader(name, TextLoader)
    except Exception:  # an unknown driver build keeps its own loaders, and its values
        log.debug("json/jsonb keep the driver's loader on this cursor", exc_info=True)
        return False
    return True


def _read_json_columns(chunk: Sequence[Any], columns: Sequence[int], names: Sequence[str]) -> list[Any]:
    """The chunk's rows with the json texts in ``columns`` (named ``names``) read as values."""
    if set(map(type, chunk)) == {tuple}:
        by_column = list(zip(*chunk, strict=True))
        for index in columns:
            by_column[index] = read_json_column(by_column[index])  # type: ignore[call-overload]
        return list(zip(*by_column, strict=True))
    # Rows of a cursor factory the connection set (dict rows, say): read them one at a time.
    return [_read_json_row(row, columns, names) for row in chunk]


def _read_json_row(row: Any, columns: Sequence[int], names: Sequence[str]) -> Any:
    if isinstance(row, Mapping):
        read = dict(row)
        for index in columns:
            if isinstance(read.get(names[index]), str):
                read[names[index]] = read_json(read[names[index]])
        return read
    values = list(row)
    for index in columns:
        if isinstance(values[index], str):
            values[index] = read_json(values[index])
    return tuple(values)


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
            cursor, json_as_text = self._cursor(conn)
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
                types = [col[1] for col in cursor.description] if json_as_text else []
                json_columns = [index for index, code in enumerate(types) if code in _JSON_OIDS]
                while True:
                    if chunk is None:
                        chunk = cursor.fetchmany(self.fetch_size)
                    if not chunk:
                        break
                    yield _read_json_columns(chunk, json_columns, self.columns) if json_columns else chunk
                    chunk = None
            finally:
                with suppress(Exception):
                    cursor.close()
                # Named and unbuffered cursors live in a transaction; end it without side effects.
                with suppress(Exception):
                    conn.rollback()

    def _cursor(self, conn: Any) -> tuple[Any, bool]:
        """The cursor that streams this driver's result, and whether it gives json/jsonb as text."""
        module = type(conn).__module__
        if module.startswith(("psycopg2", "psycopg")):
            # A named cursor keeps the result on the server; itersize is its per-round-trip fetch.
            cursor = conn.cursor(name=f"enso_stream_{uuid.uuid4().hex[:12]}")
            with suppress(AttributeError):
                cursor.itersize = self.fetch_size
            return cursor, _json_as_text(cursor, module)
        if module.startswith("MySQLdb"):
            import MySQLdb.cursors

            return conn.cursor(MySQLdb.cursors.SSCursor), False
        if module.startswith("pymysql"):
            import pymysql.cursors

            return conn.cursor(pymysql.cursors.SSCursor), False
        if module.startswith("mysql.connector"):
            return conn.cursor(buffered=False), False
        # sqlite3 and most other drivers step through the result as fetchmany asks.
        return conn.cursor(), False
