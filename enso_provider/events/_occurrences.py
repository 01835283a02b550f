"""
An exact, compact counter of how many times each 64-bit fingerprint has been seen.

The mapper asks it, for every event, "how many times has this content (or this key)
occurred in this run?". A Python ``dict`` of a million ints costs ~100 MB; this costs
8 bytes a slot (16 MB for a million distinct fingerprints) and never allocates a
Python object per entry.

Layout: 64 open-addressing tables of ``array('Q')`` (linear probing, doubled when half
full), chosen by the fingerprint's low 6 bits. Because the partition already encodes
those 6 bits, each slot stores the other 58 bits of the fingerprint *and*, in its low
6 bits, the count (1..63); counts beyond 63 (rare) move to a small dict. Partitioning
also keeps the transient of a doubling small (one 64th of the table at a time).
"""

from __future__ import annotations

from array import array

_PART_BITS = 6
_PARTS = 1 << _PART_BITS
_LOW = _PARTS - 1
_HIGH = ((1 << 64) - 1) ^ _LOW
_INITIAL_SLOTS = 64
_INLINE_MAX = _LOW  # the largest count a slot holds inline


class OccurrenceCounter:
    """
    Exact occurrence counts of 64-bit fingerprints, in 8-16 bytes per distinct fingerprint.

    """

    __slots__ = ("_over", "masks", "room", "tables")

    def __init__(self) -> None:
        #: One open-addressing table per partition (the fingerprint's low 6 bits).
        self.tables = [array("Q", [0]) * _INITIAL_SLOTS for _ in range(_PARTS)]
        #: ``len(table) - 1`` per partition.
        self.masks = [_INITIAL_SLOTS - 1] * _PARTS
        #: Inserts left before a partition's table is half full and must double.
        self.room = [_INITIAL_SLOTS // 2] * _PARTS
        self._over: dict[int, int] = {}

    def add(self, fingerprint: int) -> int:
        """
        Count one occurrence of ``fingerprint`` and return its occurrence number (1 the first time).

        :param fingerprint: an integer in ``[0, 2**64)``, uniformly distributed (a hash).
        """
        return self.add_many([fingerprint])[0]

    def add_many(self, fingerprints: list[int]) -> list[int]:
        """
        :meth:`add` each fingerprint in order; their occurrence numbers.

        :param fingerprints: integers in ``[0, 2**64)``, uniformly distributed (hashes).
        """
        tables, masks, room = self.tables, self.masks, self.room
        seen = []
        for fingerprint in fingerprints:
            part = fingerprint & _LOW
            table = tables[part]
            key = fingerprint ^ part  # the 58 high bits; the low 6 are implied by the partition
            mask = masks[part]
            slot = (fingerprint >> _PART_BITS) & mask
            while True:
                held = table[slot]
                if held == 0:
                    table[slot] = key | 1
                    room[part] -= 1
                    if room[part] <= 0:
                        self._grow(part)
                    seen.append(1)
                    break
                if held & _HIGH == key:
                    count = held & _LOW
                    if count < _INLINE_MAX:
                        table[slot] = held + 1
                        seen.append(count + 1)
                    else:
                        count = self._over.get(fingerprint, _INLINE_MAX) + 1
                        self._over[fingerprint] = count
                        seen.append(count)
                    break
                slot = (slot + 1) & mask
        return seen

    def _grow(self, part: int) -> None:
        old = self.tables[part]
        table = array("Q", [0]) * (len(old) * 2)
        mask = len(table) - 1
        for held in old:
            if held:
                slot = (held >> _PART_BITS) & mask
                while table[slot]:
                    slot = (slot + 1) & mask
                table[slot] = held
        self.tables[part] = table
        self.masks[part] = mask
        self.room[part] = len(table) // 2 - (len(old) // 2 - self.room[part])

    @property
    def nbytes(self) -> int:
        """Bytes held by the tables (not counting the small overflow dict)."""
        return sum(len(t) * t.itemsize for t in self.tables)

    def __len__(self) -> int:
        """How many distinct fingerprints have been seen."""
        return sum(len(t) // 2 - r for t, r in zip(self.tables, self.room, strict=True))
