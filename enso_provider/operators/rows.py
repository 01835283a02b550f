"""
The ``events`` argument: rows are data, never templates.

Airflow renders every template field, walking lists and dicts and rendering each string as Jinja,
and then uploads the rendered value whole. For usage rows that is wrong three ways: a row holding
``{{ conn.x.password }}`` would put a secret into an event, a row holding ``{%`` would fail the task,
and a row holding NaN fails the rendered-fields upload before ``execute``. So the operator holds its
rows in :class:`EventRows`, which the templater leaves alone (it is neither a string nor a container
it walks) and which Airflow shows as a short summary. An ``XComArg`` is kept as is until Airflow
resolves it; the rows it resolves to are wrapped in turn, never rendered.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

#: How many keys of the first row the summary names, and how much of each.
SUMMARY_KEYS = 8
_KEY_CHARS = 40


class EventRows:
    """
    Rows given to an operator (a list, or any iterable of mappings), held as data.

    Iterating it iterates the rows. ``str()`` is the summary Airflow shows for the field, in the
    rendered-fields view, ``airflow tasks render`` and the serialized DAG: the row count (when
    known) and the first row's keys, never a value.

    :param rows: the rows, as given.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: Any) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def summary(self) -> str:
        """The row count (when known) and the first row's keys."""
        rows = self.rows
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
            return f"<events: a {type(rows).__name__}, not rows>"
        if not isinstance(rows, Sized):
            return f"<events: streamed rows from a {type(rows).__name__}>"
        count = len(rows)
        text = f"<events: {count:,} row{'' if count == 1 else 's'}"
        first = next(iter(rows), None) if isinstance(rows, (list, tuple)) else None
        if isinstance(first, Mapping):
            keys = [str(k)[:_KEY_CHARS] for k in list(first)[:SUMMARY_KEYS]]
            more = ", ..." if len(first) > SUMMARY_KEYS else ""
            text += f"; first row's keys: {', '.join(keys)}{more}"
        return text + ">"

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()


def is_resolvable(value: Any) -> bool:
    """Whether Airflow resolves ``value`` at run time (an ``XComArg``), as its templater decides it."""
    return not isinstance(value, os.PathLike) and callable(getattr(value, "resolve", None))


def as_rows(value: Any) -> Any:
    """
    Hold ``value`` as data: ``None`` and what Airflow resolves (an ``XComArg``) stay as they are.

    :param value: the ``events`` argument, or what its ``XComArg`` resolved to.
    """
    if value is None or isinstance(value, EventRows) or is_resolvable(value):
        return value
    return EventRows(value)


def unwrap(value: Any) -> Any:
    """
    The rows themselves (what was given), for the operator's own use.

    :param value: the ``events`` attribute.
    """
    return value.rows if isinstance(value, EventRows) else value
