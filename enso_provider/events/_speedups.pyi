"""Types of the C fast path (see _speedups.c)."""

from collections.abc import Callable
from typing import Any

class FastPlan:
    def __init__(
        self,
        width: int,
        indexes: tuple[int, int, int, int],
        constants: tuple[bytes | None, bytes | None, bytes | None, bytes | None],
        meta: tuple[tuple[bytes, int], ...],
        meta_const: bytes,
        job: bytes | None,
        ts_text: dict[str, str],
        ts_datetime: dict[Any, str],
        tz_is_utc: bool,
        utc: Any,
        slow: tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any]],
        encode: Callable[[Any], bytes],
        counter: Any,
        event_type: type,
        person: bytes,
        namespace: bytes,
        content_cap: int,
        /,
    ) -> None: ...
    def map(self, rows: list[Any], start: int, end: int, index: int, /) -> tuple[list[Any], int]: ...

def blake2b_16(person: bytes, data: bytes, /) -> bytes: ...
def float_text(value: float, /) -> bytes | None: ...
def rehash(old: Any, new: Any, /) -> None: ...
def fill_batch(
    items: list[Any],
    start: int,
    batch: list[Any],
    size: int,
    limit_count: int,
    limit_bytes: int,
    event_type: type,
    /,
) -> tuple[int, int]: ...
