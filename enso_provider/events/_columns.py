"""
The row loop's column-wise form: the contents of a list of tuple rows, one column at a time.

Warehouse drivers hand over lists of tuples whose columns each hold one type. For such a list the
fields are normalised column by column (``map`` over C methods: ``str.strip``, ``str(Decimal)``,
``datetime.isoformat``) and each content is written by one orjson call, with the same rules as the
row loop (:meth:`.EventMapper._content`). A value these checks do not settle (a None, a NaN, a blank
id, a timestamp the cache does not hold, a float orjson writes otherwise) leaves its row to the row
loop, which gives the exact result or the exact rejection; a column of mixed types leaves every row
to it. So the two always agree, which the property tests check.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from itertools import accumulate, repeat
from typing import Any

import orjson

from enso_provider.events._metadata import FAST, FAST_OPTIONS, canonical_default, odd_marks, odd_number
from enso_provider.events._plan import Plan
from enso_provider.events._timestamps import TIMESTAMP_MAX, TIMESTAMP_MIN, TimestampTexts
from enso_provider.events._values import INT64_MIN, UINT64_MAX

_UTC = timezone.utc
_AWARE_MIN = TIMESTAMP_MIN.replace(tzinfo=_UTC)
_AWARE_MAX = TIMESTAMP_MAX.replace(tzinfo=_UTC)
#: Zone names psycopg and others give UTC datetimes: their isoformat() already ends in "+00:00".
_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})
_NONE = type(None)
#: The row loop's content writer (:func:`._metadata.event_content`), as one C callable for ``map``.
_dumps = partial(orjson.dumps, default=canonical_default, option=FAST_OPTIONS)


# Every content starts with its first key, CustomerEntityId (the keys are sorted), so in the array of a
# list's contents each boundary between two of them reads exactly: ``},{"CustomerEntityId":``.
_HEAD = b'{"CustomerEntityId":'
_BOUNDARY = b"}," + _HEAD
_CONTENT = _HEAD + b"%b}"


def _dump_each(objs: list[dict[str, Any]]) -> tuple[list[bytes], set[int]]:
    """
    ``[_dumps(obj) for obj in objs]`` and the positions the row loop must decide (a value orjson
    cannot write, a number it writes otherwise than the canonical form). Written by one orjson call
    and cut at the boundaries: orjson is several times faster writing one array than a thousand
    objects kept alive.
    """
    try:
        blob = _dumps(objs)
    except TypeError:  # a huge int, lone surrogates...: find the rows one by one
        blob = b""
    pieces = blob[len(_HEAD) + 1 : -2].split(_BOUNDARY) if blob else []
    if len(pieces) != len(objs):
        # A boundary's text inside a content (a metadata list of such objects), or a value orjson
        # cannot write: one at a time.
        out = list(map(_dump_or_empty, objs))
        return out, {i for i, content in enumerate(out) if not content or odd_number(content)}
    marks = odd_marks(blob)
    odd: set[int] = set()
    if marks:
        starts = list(accumulate((len(piece) + len(_BOUNDARY) for piece in pieces), initial=1 + len(_HEAD)))
        odd = {bisect_right(starts, at) - 1 for at in marks}
    return list(map(_CONTENT.__mod__, pieces)), odd


def _dump_or_empty(obj: dict[str, Any]) -> bytes:
    try:
        return _dumps(obj)
    except TypeError:
        return b""


def eligible(plan: Plan) -> bool:
    """Whether rows of this plan can be encoded column-wise (fields in columns, content ids, no JobId column)."""
    return FAST and not plan.error and min(plan.slots[:4]) >= 0 and plan.i_eid < 0 and plan.i_job < 0


class Column:
    """One column's values as sent, and the rows this form cannot settle (left to the row loop)."""

    __slots__ = ("slow", "values")

    def __init__(self, values: list[Any], slow: set[int]) -> None:
        self.values = values
        self.slow = slow


def _kinds(col: Sequence[Any]) -> tuple[set[type], list[Any], set[int]]:
    """The column's value types besides None, a copy with None replaced by '', and the None rows."""
    kinds = set(map(type, col))
    if _NONE not in kinds:
        return kinds, list(col), set()
    kinds.discard(_NONE)
    nones = {i for i, v in enumerate(col) if v is None}
    values = ["" if v is None else v for v in col]
    return kinds, values, nones


def _where(values: list[Any], bad: Any) -> set[int]:
    return {i for i, v in enumerate(values) if v == bad} if bad in values else set()


def identifiers(col: Sequence[Any]) -> Column | None:
    """CustomerEntityId or metric: stripped text; blank and None rows to the row loop."""
    kinds, values, slow = _kinds(col)
    if kinds == {str}:
        values = list(map(str.strip, values))
    elif not kinds <= {str}:
        return None
    return Column(values, slow | _where(values, ""))


def numbers(col: Sequence[Any]) -> Column | None:
    """The value's canonical text (:func:`.ids.number`) for a column of Decimals, floats or ints."""
    kinds, values, slow = _kinds(col)
    if kinds == {Decimal}:
        texts = list(map(str, values))
        # Anything but finite positional digits (exponents, NaN, Infinity) to the row loop.
        if "E" in (joined := "\x1f".join(texts)) or "N" in joined or "I" in joined:
            slow |= {i for i, t in enumerate(texts) if "E" in t or "N" in t or "I" in t}
        if joined.count(".") == len(texts):
            texts = list(map(str.rstrip, map(str.rstrip, texts, repeat("0")), repeat(".")))
        else:
            texts = [t.rstrip("0").rstrip(".") if "." in t else t for t in texts]
        if max(map(len, texts), default=0) > 21:  # more than 21 integer digits: exponent form
            slow |= {i for i, t in enumerate(texts) if len(t.lstrip("-").partition(".")[0]) > 21}
    elif kinds == {float}:
        texts = [v.__repr__() if v != "" else "" for v in values] if slow else list(map(float.__repr__, values))
        if "e" in (joined := "\x1f".join(texts)) or "n" in joined:  # exponents, nan, inf
            slow |= {i for i, t in enumerate(texts) if "e" in t or "n" in t}
        texts = list(map(str.removesuffix, texts, repeat(".0")))
    elif kinds == {int}:
        present = [v for v in values if v != ""] if slow else values
        if present and (min(present) < INT64_MIN or max(present) > UINT64_MAX):
            return None
        texts = list(map(str, values))
    elif not kinds:
        texts = values
    else:
        return None
    texts = ["0" if t == "-0" else t for t in texts] if "-0" in texts else texts
    return Column(list(map(orjson.Fragment, texts)), slow | _where(texts, ""))


def timestamps(col: Sequence[Any], texts: TimestampTexts) -> Column | None:
    """UTC text of datetimes, or strings the cache holds; the rest to the row loop."""
    kinds, values, slow = _kinds(col)
    if kinds == {str}:
        found = texts.cached(values)
        return Column(found, slow | _where(found, None))
    if kinds != {datetime}:
        return None if kinds else Column(values, slow)
    present = [v for v in values if v != ""] if slow else values
    zones = {v.tzinfo for v in present}
    if zones == {None}:
        if not texts.naive_is_utc:
            return None
        low, high = TIMESTAMP_MIN, TIMESTAMP_MAX
        suffix = ""
    elif None in zones:
        return None  # naive and aware in one column: to the row loop
    else:
        if not all(z is _UTC or getattr(z, "key", None) in _UTC_KEYS for z in zones):
            present = list(map(datetime.astimezone, present, repeat(_UTC)))
            values = present if not slow else _refill(values, present)
        low, high = _AWARE_MIN, _AWARE_MAX
        suffix = "+00:00"
    if present and (min(present) < low or max(present) > high):
        slow |= {i for i, v in enumerate(values) if v != "" and not low <= v <= high}
        values = ["" if i in slow else v for i, v in enumerate(values)]
    isos = [v.isoformat() if v != "" else "" for v in values] if slow else list(map(datetime.isoformat, values))
    if suffix:
        return Column(list(map(str.replace, isos, repeat(suffix), repeat("Z"))), slow)
    return Column(list(map(str.__add__, isos, repeat("Z"))), slow)


def _refill(values: list[Any], present: list[Any]) -> list[Any]:
    """``values`` with its non-placeholder entries replaced, in order, by ``present``."""
    it = iter(present)
    return [v if v == "" else next(it) for v in values]


def metadata_values(col: Sequence[Any]) -> list[Any]:
    """A metadata column's values, naive datetimes as their ISO text (what orjson's default would give)."""
    kinds = set(map(type, col))
    if kinds == {datetime} and {v.tzinfo for v in col} == {None}:
        return list(map(datetime.isoformat, col))
    if kinds == {datetime, _NONE} and {v.tzinfo for v in col if v is not None} == {None}:
        return [None if v is None else v.isoformat() for v in col]
    return list(col)


def objects(col: Sequence[Any], default: Any) -> Column:
    """The mapped metadata objects: dicts as they are, JSON object text parsed, None as the default."""
    kinds = set(map(type, col))
    base = default or {}
    slow: set[int] = set()
    values = [base if v is None else v for v in col] if _NONE in kinds else list(col)
    if not kinds <= {dict, str, _NONE}:  # a list, a number...: its rejection comes from the row loop
        slow = {i for i, v in enumerate(values) if type(v) is not dict and type(v) is not str}
        values = [{} if i in slow else v for i, v in enumerate(values)]
    if str in kinds:
        at = [i for i, v in enumerate(values) if type(v) is str]
        try:
            parsed = list(map(orjson.loads, (values[i] for i in at)))
        except orjson.JSONDecodeError:  # blank or invalid text: its message comes from the row loop
            parsed = [None] * len(at)
        for i, obj in zip(at, parsed, strict=True):
            if type(obj) is dict:
                values[i] = obj
            else:
                slow.add(i)
                values[i] = {}
    return Column(values, slow)


class ColumnEncoder:
    """
    The contents of a list of tuple rows of one plan, or None for each row left to the row loop.

    :param timestamps: the mapper's timestamp texts (the cache of string timestamps).
    :param metadata_default: the ``metadata`` default, or None.
    :param job: the constant JobId, or None.
    """

    __slots__ = ("job", "metadata_default", "timestamps")

    def __init__(self, timestamps: TimestampTexts, metadata_default: Any, job: str | None) -> None:
        self.timestamps = timestamps
        self.metadata_default = metadata_default
        self.job = job

    def contents(self, rows: list[tuple[Any, ...]], plan: Plan) -> list[bytes | None]:
        """
        One content per row (:func:`.ids.content`), None where the row loop must decide.

        :param rows: tuples of the plan's width.
        :param plan: an :func:`eligible` plan.
        """
        cols = list(zip(*rows, strict=True))
        i_cid, i_metric, i_value, i_ts = plan.slots[:4]
        fields = (
            identifiers(cols[i_cid]),
            identifiers(cols[i_metric]),
            numbers(cols[i_value]),
            timestamps(cols[i_ts], self.timestamps),
            self._bags(cols, plan),
        )
        if any(f is None for f in fields):
            return [None] * len(rows)
        cid, metric, value, ts, bags = fields  # type: ignore[misc]
        job = self.job
        if job is None:
            objs = [
                {"CustomerEntityId": c, "metadata": b, "metric": m, "timestamp": t, "value": v}
                for c, b, m, t, v in zip(cid.values, bags.values, metric.values, ts.values, value.values)
            ]
        else:
            objs = [
                {"CustomerEntityId": c, "JobId": job, "metadata": b, "metric": m, "timestamp": t, "value": v}
                for c, b, m, t, v in zip(cid.values, bags.values, metric.values, ts.values, value.values)
            ]
        slow = cid.slow | metric.slow | value.slow | ts.slow | bags.slow
        out, odd = _dump_each(objs)
        result: list[bytes | None] = out  # type: ignore[assignment]
        slow |= odd
        for i in slow:
            result[i] = None
        return result

    def _bags(self, cols: list[tuple[Any, ...]], plan: Plan) -> Column | None:
        if plan.meta:
            names = [name for name, _ in plan.meta]
            values = [metadata_values(cols[i]) for _, i in plan.meta]
            columns = list(map(dict, map(zip, repeat(names), zip(*values))))
        else:
            columns = None
        if plan.i_meta >= 0:
            mapped = objects(cols[plan.i_meta], self.metadata_default)
            if mapped is None or columns is None:
                return mapped
            return Column([b | c for b, c in zip(mapped.values, columns)], mapped.slow)
        base = self.metadata_default or {}
        if columns is None:
            return Column(list(repeat(base, len(cols[0]))), set())
        return Column([base | c for c in columns] if base else columns, set())
