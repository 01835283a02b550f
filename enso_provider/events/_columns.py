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

import re
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from itertools import accumulate, repeat
from operator import attrgetter, is_, is_not
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from enso_provider.events._metadata import FAST, dump_canonical, odd_marks, odd_number
from enso_provider.events._plan import Plan
from enso_provider.events._timestamps import TIMESTAMP_MAX, TIMESTAMP_MIN, TimestampTexts
from enso_provider.events._values import INT64_MIN, UINT64_MAX

_UTC = timezone.utc
#: The zone types whose datetimes with a zero offset go to orjson as they are.
_STDLIB_ZONES = (timezone, ZoneInfo)
_NONE = type(None)
#: The quoted texts' first bytes for the years of the range (the year alone decides it).
_FIRST_YEAR, _LAST_YEAR = b'"%04d' % TIMESTAMP_MIN.year, b'"%04d' % TIMESTAMP_MAX.year
#: orjson's text of a datetime in UTC: aware ones (with a zero offset here) and naive ones read as UTC.
_AS_UTC_Z = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
_ZONE = attrgetter("tzinfo")
_NOT_NONE = partial(is_not, None)
_IS_NONE = partial(is_, None)
#: What ``datetime.isoformat`` writes for an aware datetime (seconds, microseconds or none), or with Z.
#: (Only offsets the row loop reads: fromisoformat also takes minutes of 60 to 99.)
_ZONED_ISO = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)


# Every content starts with its first key, CustomerEntityId (the keys are sorted), so in the array of a
# list's contents each boundary between two of them reads exactly: ``},{"CustomerEntityId":``.
_HEAD = b'{"CustomerEntityId":'
_BOUNDARY = b"}," + _HEAD
_CONTENT = _HEAD + b"%b}"


def _dump_each(objs: list[dict[str, Any]]) -> tuple[list[bytes], set[int]]:
    """
    ``[dump_canonical(obj) for obj in objs]`` and the positions the row loop must decide (a value orjson
    cannot write, a number it writes otherwise than the canonical form). Written by one orjson call
    and cut at the boundaries: orjson is several times faster writing one array than a thousand
    objects kept alive.
    """
    try:
        blob = dump_canonical(objs)
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
        starts = list(accumulate(map(len(_BOUNDARY).__add__, map(len, pieces)), initial=1 + len(_HEAD)))
        odd = {bisect_right(starts, at) - 1 for at in marks}
    return list(map(_CONTENT.__mod__, pieces)), odd


def _dump_or_empty(obj: dict[str, Any]) -> bytes:
    try:
        return dump_canonical(obj)
    except TypeError:
        return b""


def _writes_datetimes_as_isoformat() -> bool:
    """
    Whether this orjson writes datetimes exactly as the row loop does: ``isoformat()``, and for UTC
    (aware with a zero offset, or naive read as UTC) ``isoformat()`` of the naive time with ``Z``.
    """
    naive = [
        datetime(1970, 1, 1),
        datetime(2024, 2, 29, 23, 59, 59, 5),
        datetime(2024, 5, 1, 10, 0, 7),
        datetime(2030, 1, 15, 8, 30),
        datetime(2024, 5, 1, 10, 0, 0, 120000, fold=1),
        datetime(2261, 12, 31, 23, 59, 59, 999999),
        datetime(1, 1, 1),
        datetime(999, 3, 4, 5, 6, 7, 8),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
    ]
    # Naive ones read as UTC, and aware ones with a zero offset in each kind of zone (London in winter:
    # not in 1970, when it kept summer time, nor in year 1, before standard time).
    cases: list[tuple[Any, list[datetime]]] = [(None, naive), (_UTC, naive)]
    with suppress(ZoneInfoNotFoundError):  # no zone database: psycopg then gives timezone.utc
        winter = [moment for moment in naive if moment.month in (1, 2, 12) and 2000 <= moment.year <= 2100]
        cases += [(ZoneInfo("Etc/UTC"), naive), (ZoneInfo("Europe/London"), winter)]
    try:
        if _quoted(naive) != [orjson.dumps(moment.isoformat()) for moment in naive]:
            return False
        for zone, moments in cases:
            written = _quoted([moment.replace(tzinfo=zone) for moment in moments], _AS_UTC_Z)
            if written != [orjson.dumps(moment.isoformat() + "Z") for moment in moments]:
                return False
    except Exception:  # an orjson that cannot write these: the row loop writes every datetime
        return False
    return True


def _quoted(moments: Sequence[datetime], option: int = 0) -> list[bytes]:
    """The JSON strings orjson writes for ``moments``, one call for all (their text holds no comma)."""
    return orjson.dumps(moments, option=option)[1:-1].split(b",") if moments else []


#: Checked once at import: where orjson writes otherwise, every row is left to the row loop.
DATETIMES = _writes_datetimes_as_isoformat()


def eligible(plan: Plan) -> bool:
    """Whether the rows of a plan can be encoded column-wise: fields in columns, content ids, no JobId."""
    ready = FAST and DATETIMES
    return ready and not plan.error and min(plan.slots[:4]) >= 0 and plan.i_eid < 0 and plan.i_job < 0


# Each function below gives one field's values as sent, one per row, with None where the row loop
# must decide; or None for the whole column (a mix of types), which leaves every row to the row loop.


def positions(values: Sequence[Any], item: Any = None) -> list[int]:
    """Where ``item`` is in ``values`` (by equality), found by C scans: it is rare in a column."""
    found: list[int] = []
    try:
        at = values.index(item)
        while True:
            found.append(at)
            at = values.index(item, at + 1)
    except ValueError:
        return found


def _present(col: Sequence[Any]) -> tuple[set[type], Sequence[Any], list[int]]:
    """The column's types besides None, its values that are not None, and where the Nones are."""
    kinds = set(map(type, col))
    if _NONE not in kinds:
        return kinds, col, []
    kinds.discard(_NONE)
    return kinds, list(filter(_NOT_NONE, col)), positions(col)


def _gaps(values: list[Any], nones: list[int]) -> list[Any]:
    """``values`` (one per non-None row) with None put back where the column's Nones were."""
    for i in nones:  # in ascending order, so each lands on its own row
        values.insert(i, None)
    return values


def _unless(values: list[Any], bad: Any) -> list[Any]:
    """``values`` with each one equal to ``bad`` replaced by None."""
    for i in positions(values, bad):
        values[i] = None
    return values


def identifiers(col: Sequence[Any]) -> list[Any] | None:
    """CustomerEntityId or metric: stripped text (blank and None to the row loop)."""
    kinds, present, nones = _present(col)
    if kinds != {str}:
        return None if kinds else [None] * len(col)
    return _gaps(_unless(list(map(str.strip, present)), ""), nones)


def numbers(col: Sequence[Any]) -> list[Any] | None:
    """The value's canonical text (:func:`.ids.number`) for a column of Decimals, floats or ints."""
    kinds, present, nones = _present(col)
    texts: list[Any]
    if kinds == {Decimal}:
        texts = list(map(str, present))
        joined = "\x1f".join(texts)
        if joined.count(".") == len(texts):
            texts = list(map(str.rstrip, map(str.rstrip, texts, repeat("0")), repeat(".")))
        else:
            texts = [t.rstrip("0").rstrip(".") if "." in t else t for t in texts]
        # Exponents, NaN, Infinity and more than 21 integer digits to the row loop.
        if "E" in joined or "N" in joined or "I" in joined or max(map(len, texts)) > 21:
            texts = [
                None if "E" in t or "N" in t or "I" in t or len(t.partition(".")[0]) > 21 else t
                for t in texts
            ]
    elif kinds == {float}:
        texts = list(map(str.removesuffix, map(float.__repr__, present), repeat(".0")))
        joined = "\x1f".join(texts)
        if "e" in joined or "n" in joined:  # exponents, nan, inf
            texts = [None if "e" in t or "n" in t else t for t in texts]
    elif kinds == {int}:
        if min(present) < INT64_MIN or max(present) > UINT64_MAX:
            return None
        texts = list(map(str, present))
    else:
        return None if kinds else [None] * len(col)
    texts = _unless(texts, "-0")  # -0 is 0; the row loop writes it
    fragments = (
        list(map(orjson.Fragment, texts)) if None not in texts else [t and orjson.Fragment(t) for t in texts]
    )
    return _gaps(fragments, nones)


def timestamps(col: Sequence[Any], cache: TimestampTexts) -> list[Any] | None:
    """The UTC text of datetimes, or of strings the cache holds."""
    kinds, present, nones = _present(col)
    if kinds == {str}:
        found = cache.cached(list(present))
        misses = positions(found)
        if misses:  # not held by the cache: the strings datetime.isoformat writes are read here
            for i, text in zip(misses, iso_texts([present[i] for i in misses]), strict=True):
                found[i] = text
        return _gaps(found, nones)
    if kinds != {datetime}:
        return None if kinds else [None] * len(col)
    zones = list({id(zone): zone for zone in map(_ZONE, present)}.values())  # some zones cannot be hashed
    if zones == [None]:
        if not cache.naive_is_utc:
            return None
    elif None in zones:
        return None  # naive and aware in one column
    elif not all(zone is _UTC for zone in zones):
        offsets = list(map(datetime.utcoffset, present))
        if None in offsets:  # a zone without an offset for a value is read in the mapper's zone: the row loop
            return None
        # orjson writes Z for a zero offset of a stdlib zone (psycopg's ZoneInfo; DATETIMES checks it);
        # other offsets, and other libraries' zones, are converted first.
        if any(offsets) or not all(type(zone) in _STDLIB_ZONES for zone in zones):
            present = list(map(datetime.astimezone, present, repeat(_UTC)))
    return _gaps(_utc_texts(present), nones)


def _utc_texts(moments: Sequence[datetime]) -> list[Any]:
    """
    The wire text of datetimes in UTC (aware with a zero offset, or naive read as UTC) as quoted JSON
    fragments, None out of the range 1970-01-01T00:00:00Z .. 2261-12-31T23:59:59.999999Z.

    One orjson call writes them all (about a quarter of ``isoformat`` per value); :data:`DATETIMES`
    holds that its text is the row loop's.
    """
    quoted = _quoted(moments, _AS_UTC_Z)
    if not quoted or (min(quoted) >= _FIRST_YEAR and max(quoted)[:5] <= _LAST_YEAR):
        return list(map(orjson.Fragment, quoted))
    return [None if q < _FIRST_YEAR or q[:5] > _LAST_YEAR else orjson.Fragment(q) for q in quoted]


def iso_texts(texts: list[str]) -> list[str | None]:
    """
    The UTC text of strings in the form ``datetime.isoformat`` writes with a zone (or ``Z``), by
    ``datetime.fromisoformat``; None for any other string (the row loop reads those, or refuses them).
    """
    shaped = list(map(_ZONED_ISO.fullmatch, texts))
    readable = texts if all(shaped) else [t for t, m in zip(texts, shaped, strict=True) if m]
    zoned = list(map(str.replace, readable, repeat("Z"), repeat("+00:00")))  # 3.10 reads no "Z"
    utc: list[Any]
    try:
        moments = list(map(datetime.fromisoformat, zoned))
        utc = list(map(datetime.astimezone, moments, repeat(_UTC)))
    except (ValueError, OverflowError):  # an invalid date or offset among them: one at a time
        utc = list(map(_utc_or_none, zoned))
    # The one-at-a-time reading leaves None for the strings it could not read.
    out = _utc_texts(utc) if None not in utc else [t and _utc_texts([t])[0] for t in utc]
    if readable is texts:
        return out
    found = iter(out)
    return [next(found) if m else None for m in shaped]


def _utc_or_none(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text).astimezone(_UTC)
    except (ValueError, OverflowError):
        return None


def metadata_values(col: Sequence[Any]) -> list[Any]:
    """
    A metadata column's values, naive datetimes as their ISO text (json_safe's) in quoted fragments
    written by one orjson call (:data:`DATETIMES` holds that its text is ``isoformat``'s).
    """
    kinds, present, nones = _present(col)
    if kinds == {datetime} and all(map(_IS_NONE, map(_ZONE, present))):
        return _gaps(list(map(orjson.Fragment, _quoted(present))), nones)  # the Nones are metadata nulls
    return list(col)


def objects(col: Sequence[Any], default: Any) -> list[Any]:
    """The mapped metadata objects: dicts as they are, JSON object text parsed, None as the default."""
    kinds = set(map(type, col))
    base = default or {}
    values: list[Any] = [base if v is None else v for v in col] if _NONE in kinds else list(col)
    if not kinds <= {dict, str, _NONE}:  # a list, a number...: its rejection comes from the row loop
        values = [v if type(v) is dict or type(v) is str else None for v in values]
    if str in kinds:
        at = [i for i, v in enumerate(values) if type(v) is str]
        try:
            parsed = [orjson.loads(values[i]) for i in at]
        except orjson.JSONDecodeError:  # blank or invalid text: its message comes from the row loop
            parsed = [None] * len(at)
        for i, obj in zip(at, parsed, strict=True):
            values[i] = obj if type(obj) is dict else None
    return values


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
        try:
            return self._contents(rows, plan)
        except Exception:  # a value of a kind no check here foresaw: the row loop decides every row
            return [None] * len(rows)

    def _contents(self, rows: list[tuple[Any, ...]], plan: Plan) -> list[bytes | None]:
        cols = list(zip(*rows, strict=True))
        i_cid, i_metric, i_value, i_ts = plan.slots[:4]
        fields = (
            identifiers(cols[i_cid]),
            self._bags(cols, plan),
            identifiers(cols[i_metric]),
            timestamps(cols[i_ts], self.timestamps),
            numbers(cols[i_value]),
        )
        if any(f is None for f in fields):
            return [None] * len(rows)
        objs = [
            {"CustomerEntityId": c, "metadata": b, "metric": m, "timestamp": t, "value": v}
            for c, b, m, t, v in zip(*fields, strict=True)  # type: ignore[arg-type]
        ]
        if self.job is not None:  # sorted into its place by the writer
            deque(map(dict.__setitem__, objs, repeat("JobId"), repeat(self.job)), maxlen=0)
        out, slow = _dump_each(objs)
        for values in fields:
            slow.update(positions(values))  # type: ignore[arg-type]
        result: list[bytes | None] = out  # type: ignore[assignment]
        for i in slow:
            result[i] = None
        return result

    def _bags(self, cols: list[tuple[Any, ...]], plan: Plan) -> list[Any]:
        """The metadata objects: the mapped one (or the default) with the metadata columns on top."""
        if plan.i_meta >= 0:
            bases = objects(cols[plan.i_meta], self.metadata_default)
        else:
            bases = list(repeat(self.metadata_default or {}, len(cols[0])))
        if not plan.meta:
            return bases
        slow = positions(bases)
        for i in slow:
            bases[i] = {}
        bags: list[Any] = list(map(dict.copy, bases))  # the driver's objects are never changed
        for name, i in plan.meta:  # a column at a time: no tuple per row
            deque(map(dict.__setitem__, bags, repeat(name), metadata_values(cols[i])), maxlen=0)
        for i in slow:
            bags[i] = None
        return bags
