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

import os
import random
import sys
import threading
import time
import uuid
from typing import List, Tuple

from . import _forksafe

_lock = threading.Lock()
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
