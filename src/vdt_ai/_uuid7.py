"""Time-ordered event ids: UUID version 7 (RFC 9562).

48 bits of Unix milliseconds, then a 12-bit counter that keeps ids made in the
same millisecond by this process in order, then 62 random bits. Ids sort by
creation time, which keeps Kafka consumers and databases index-friendly.
"""

import os
import sys
import threading
import time
import uuid

from . import _forksafe

_lock = threading.Lock()
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
_last_ms = 0
_counter = 0

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62


def uuid7() -> uuid.UUID:
    """Returns a new UUIDv7; later calls in this process sort after earlier ones."""
    global _last_ms, _counter
    now_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(8), "big")
    with _lock:
        if now_ms > _last_ms:
            _last_ms = now_ms
            # Start low in the counter space so many ids fit in one millisecond.
            _counter = rand >> 55  # 9 random bits: 0..511
        else:
            # Same millisecond, or the clock stepped back: keep counting on.
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        counter = _counter
    value = (
        (now_ms & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | counter << 64
        | _VARIANT_RFC
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    )
    return uuid.UUID(int=value)
