"""The SQL source's json/jsonb reader gives exactly json.loads' values."""

from __future__ import annotations

import json

import pytest

from enso_provider.sources import read_json


@pytest.mark.parametrize(
    "text",
    [
        b'{"sku": "sku_1", "cost": 0.01, "tags": ["batch", "v1"], "n": null, "ok": true}',
        b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809}',
        b'{"u64": 18446744073709551616, "id": "12345678901234567890"}',
        b"[1e400, -1e400, 0.1, 1E5, -0, 2.50]",
        b'{"a": 1, "a": 2}',
        b'"\\ud800"',
        '{"text": "as str"}',
    ],
)
def test_read_json_is_json_loads(text: bytes | str) -> None:
    got, want = read_json(text), json.loads(text)
    assert repr(got) == repr(want)
    assert type(got) is type(want)
