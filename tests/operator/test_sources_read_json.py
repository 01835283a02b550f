"""The SQL source's json/jsonb reader gives exactly the values json.loads (the drivers' own loader) gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from enso_provider.sources import SqlChunks, read_json
from tests.support import require_server

TEXTS = [
    b'{"sku": "sku_1", "cost": 0.01, "tags": ["batch", "v1"], "n": null, "ok": true}',
    b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809}',
    b'{"u64": 18446744073709551616, "id": "12345678901234567890"}',
    b'{"i64": 9223372036854775807, "min": -9223372036854775808, "short": 123456789012345678}',
    b"[1e400, -1e400, 0.1, 1E5, -0, 2.50]",
    b'{"a": 1, "a": 2}',
    b'"\\ud800"',
    '{"plan": "pro", "note": "caf\u00e9 \u00e0 2\u20ac, \u0661\u0662\u0663"}'.encode(),
    b'{"deep": {"x": [1, {"y": [true, false, null]}]}}',
]


def same(got: Any, want: Any) -> bool:
    return repr(got) == repr(want) and type(got) is type(want)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("form", [bytes, memoryview, "str"])
def test_read_json_is_json_loads(text: bytes, form: Any) -> None:
    data = text.decode() if form == "str" else form(text)
    assert same(read_json(data), json.loads(text))


def test_read_json_of_a_lone_surrogate_in_text_is_json_loads() -> None:
    text = '{"s": "\ud800"}'  # a code point no UTF-8 text holds: orjson refuses it
    assert same(read_json(text), json.loads(text))


# -- through a real PostgreSQL cursor, with either driver ---------------------------------------------------

ROWS = [
    (1, TEXTS[0].decode(), TEXTS[0].decode()),
    (2, TEXTS[1].decode(), TEXTS[1].decode()),
    (3, None, None),
    (4, TEXTS[7].decode(), TEXTS[3].decode()),
    # jsonb refuses a lone surrogate; json keeps the text as it is.
    (5, '"\\ud800"', TEXTS[8].decode()),
    (6, TEXTS[4].decode(), "[0.1, 1E5, -0, 2.50]"),
    *[(7 + i, TEXTS[8].decode(), TEXTS[0].decode()) for i in range(7)],
]
# The arrays' elements come through the same loaders as the columns.
QUERY = (
    "SELECT id, j, jb, jb->'sku' AS sku, ARRAY[jb, '[1]'::jsonb] AS jba, ARRAY[j] AS ja"
    " FROM enso_json_source ORDER BY id"
)


class ConnHook:
    """The one thing SqlChunks asks of an Airflow hook: a new DB-API connection."""

    def __init__(self, connect: Any) -> None:
        self.get_conn = connect


@pytest.fixture(scope="module")
def json_table() -> Iterator[None]:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    from tests.operator.usage_tables import postgres_connection

    conn = postgres_connection()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS enso_json_source")
        cur.execute("CREATE TABLE enso_json_source (id int PRIMARY KEY, j json, jb jsonb)")
        cur.executemany("INSERT INTO enso_json_source VALUES (%s, %s, %s)", ROWS)
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE enso_json_source")
        conn.close()


def connector(driver: str, **options: Any) -> Any:
    from tests.operator.usage_tables import DATABASE

    if driver == "psycopg2":
        import psycopg2

        return lambda: psycopg2.connect(host="127.0.0.1", user="postgres", dbname=DATABASE, **options)
    import psycopg

    return lambda: psycopg.connect(host="127.0.0.1", user="postgres", dbname=DATABASE, **options)


def driver_rows(connect: Any) -> list[Any]:
    """The rows as the driver's own loaders read them (json.loads per value)."""
    with connect() as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        return list(cur.fetchall())


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("fetch_size", [4, 1000])
def test_sql_chunks_read_json_and_jsonb_as_the_driver_does(
    json_table: None, driver: str, fetch_size: int
) -> None:
    connect = connector(driver)
    chunks = SqlChunks(ConnHook(connect), QUERY, fetch_size=fetch_size)
    got = [row for chunk in chunks for row in chunk]
    want = driver_rows(connect)
    assert chunks.columns == ["id", "j", "jb", "sku", "jba", "ja"]
    assert len(got) == len(ROWS) == len(want)
    for row, expected in zip(got, want, strict=True):
        assert type(row) is tuple
        assert all(same(a, b) for a, b in zip(row, expected, strict=True)), (row, expected)
    assert isinstance(got[0][1], dict)
    assert isinstance(got[1][2]["big"], int)
    assert isinstance(got[1][4][0]["big"], int)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sql_chunks_of_an_empty_result_have_its_columns(json_table: None, driver: str) -> None:
    chunks = SqlChunks(ConnHook(connector(driver)), "SELECT id, jb FROM enso_json_source WHERE id < 0")
    assert list(chunks) == []
    assert chunks.columns == ["id", "jb"]


def test_sql_chunks_read_json_in_dict_rows(json_table: None) -> None:
    from psycopg.rows import dict_row

    connect = connector("psycopg", row_factory=dict_row)
    got = [row for chunk in SqlChunks(ConnHook(connect), QUERY, fetch_size=5) for row in chunk]
    want = driver_rows(connect)
    assert [type(row) for row in got] == [dict] * len(ROWS)
    assert repr(got) == repr(want)
