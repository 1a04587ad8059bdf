"""Time-ordered event ids: UUID version 7 (RFC 9562).

48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made in the
same millisecond by this process in order, then 62 random bits. Ids sort by
creation time, which keeps Kafka consumers and databases index-friendly.

The random bits come from a private generator seeded from ``os.urandom`` at
import and again in every forked child, not from ``os.urandom`` per id: that
system call releases the GIL, and on a busy producer each release let the
delivery-report thread in, tripling the caller's cost (measured with
bench/caller_cost.py). A private generator also keeps ids unique when the
program seeds Python's global ``random`` for reproducibility.
"""

import operator
import os
import random
import sys
import threading
import time
import uuid
from typing import Any, Iterator, List, Sequence, Tuple, Union, overload

from . import _forksafe

# Re-entrant: SIGTERM's exit procedure runs between two bytecodes of the main
# thread, possibly inside next_stamp(), and draws ids (the final SdkReport).
_lock = threading.RLock()
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
_rng = random.Random(os.urandom(32))
_last_ms = 0
_counter = 0

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_new_uuid = object.__new__
_set = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_RANDOM_TAIL = (1 << 62) - 1
_time_ns = time.time_ns
_getrandbits = _rng.getrandbits


def _reseed_after_fork() -> None:
    # A child must not repeat its parent's (or a sibling's) random sequence.
    _rng.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)


def next_stamp() -> Tuple[int, int]:
    """A new UUIDv7 (as its 128-bit int) and the ``time.time_ns()`` it was
    made from: one clock reading gives an event its id and its timestamp.

    The single-id case of :func:`reserve`, written out: it runs once per
    ``log_*`` call, and one draw of random bits serves both the counter's
    start and the id's random tail.
    """
    global _last_ms, _counter
    now_ns = _time_ns()
    now_ms = now_ns // 1_000_000
    bits = _getrandbits(71)
    with _lock:
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = counter = bits >> 62
            position = now_ms << 12 | counter
        else:
            position = (_last_ms << 12 | _counter) + 1
            _last_ms, _counter = position >> 12, position & 0xFFF
    return (
        (position >> 12 & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | (position & 0xFFF) << 64
        | _VARIANT_RFC
        | bits & _RANDOM_TAIL
    ), now_ns


def reserve(count: int) -> Tuple[List[int], int]:
    """``count`` consecutive UUIDv7 values (ints, ascending) reserved under one
    lock, and the ``time.time_ns()`` they were made from.

    Past 4096 ids in a millisecond the counter carries into the next
    millisecond, as it does for single ids; later ids still sort after these.
    """
    global _last_ms, _counter
    now_ns = time.time_ns()
    now_ms = now_ns // 1_000_000
    start_bits = _rng.getrandbits(9)
    with _lock:
        if now_ms > _last_ms:
            # Start low in the counter space so many ids fit in one millisecond.
            first = now_ms << 12 | start_bits
        else:
            # Same millisecond, or the clock stepped back: keep counting on.
            first = (_last_ms << 12 | _counter) + 1
        last = first + count - 1
        _last_ms, _counter = last >> 12, last & 0xFFF
    bits = _rng.getrandbits
    return [
        (position >> 12 & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | (position & 0xFFF) << 64
        | _VARIANT_RFC
        | bits(62)
        for position in range(first, last + 1)
    ], now_ns


def as_uuid(value: int) -> uuid.UUID:
    """The ``uuid.UUID`` of a value made here."""
    # uuid.UUID(int=...) re-checks the range; this value is in range by
    # construction, so set the slots directly (about twice as fast).
    result = _new_uuid(uuid.UUID)
    _set(result, "int", value)
    _set(result, "is_safe", _SAFE_UNKNOWN)
    return result


def uuid7() -> uuid.UUID:
    """Returns a new UUIDv7; later calls in this process sort after earlier ones."""
    return as_uuid(reserve(1)[0][0])


_from_bytes = int.from_bytes


class EventIds(Sequence[uuid.UUID]):
    """The ids of the events a bulk call sent, in order: a read-only sequence
    of :class:`uuid.UUID` (``len``, indexing, slicing, iteration, ``in``,
    ``index``, ``count``; equal to a list or tuple of the same ids).

    It holds the ids' 16 bytes each and makes a ``UUID`` when one is read:
    a list of 100,000 ``UUID`` objects cost the bulk call about 1.3 us a row
    to make and held ~108 bytes a row, and, being objects the garbage
    collector tracks, set off a full collection of the program's heap (about
    0.1 s with 400,000 live objects) in most calls. ``list(ids)`` gives a
    list.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Union[bytes, bytearray] = b"") -> None:
        if len(raw) % 16:
            raise ValueError("EventIds needs 16 bytes an id")
        self._raw = bytes(raw)

    def __len__(self) -> int:
        return len(self._raw) >> 4

    @overload
    def __getitem__(self, index: int) -> uuid.UUID: ...

    @overload
    def __getitem__(self, index: slice) -> "EventIds": ...

    def __getitem__(self, index: Union[int, slice]) -> Union[uuid.UUID, "EventIds"]:
        if isinstance(index, slice):
            return EventIds(
                b"".join(
                    self._raw[i << 4 : (i + 1) << 4]
                    for i in range(*index.indices(len(self)))
                )
            )
        size = len(self)
        at = operator.index(index)  # TypeError for a str, as a list's
        if at < 0:
            at += size
        if not 0 <= at < size:
            raise IndexError("EventIds index out of range")
        return as_uuid(_from_bytes(self._raw[at << 4 : (at + 1) << 4], "big"))

    def __iter__(self) -> Iterator[uuid.UUID]:
        raw = self._raw
        for start in range(0, len(raw), 16):
            yield as_uuid(_from_bytes(raw[start : start + 16], "big"))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, uuid.UUID):
            return False
        wanted = value.bytes
        raw = self._raw
        at = raw.find(wanted)
        while at >= 0:
            if not at & 15:
                return True
            at = raw.find(wanted, at + 1)
        return False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventIds):
            return self._raw == other._raw
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are not

    def __add__(self, other: Any) -> List[uuid.UUID]:
        if isinstance(other, (list, tuple, EventIds)):
            return [*self, *other]
        return NotImplemented

    def __radd__(self, other: Any) -> List[uuid.UUID]:
        if isinstance(other, (list, tuple)):
            return [*other, *self]
        return NotImplemented

    def __repr__(self) -> str:
        return f"EventIds({list(self)!r})"

    def __reduce__(self) -> Tuple[Any, Tuple[bytes]]:
        return EventIds, (self._raw,)
