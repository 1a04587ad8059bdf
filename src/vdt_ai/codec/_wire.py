"""Protobuf wire bytes, written directly (no generated code on the hot path).

Only what ``events.proto`` needs: varints (int64 two's complement for
negatives), length-delimited fields, little-endian doubles, the Timestamp and
the Event envelope. Fields are written in field-number order, as the official
encoder does, so the bytes are equal to ``SerializeToString()``'s (map entries
aside, whose order the official encoder does not fix); the tests compare them.

A field's key (number and wire type) is computed once, at import, from
:mod:`._schema`: ``key(FIELDS["Event"]["source"], LEN)``.
"""

import struct
from typing import Dict, Iterable, Optional, Tuple

from ._schema import FIELDS

VARINT = 0
I64 = 1
LEN = 2

pack_double = struct.Struct("<d").pack
_pack_double = pack_double
# The one-byte varints (0..127), shared with the payload writers.
SMALL_VARINTS = [bytes((n,)) for n in range(0x80)]
_SMALL = SMALL_VARINTS


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint (negatives as 64-bit two's complement)."""
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    # Unrolled for the sizes the hot path meets (lengths, Unix seconds, nanos).
    if value < 1 << 14:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 1 << 21:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 1 << 28:
        return bytes(
            (
                value & 0x7F | 0x80,
                value >> 7 & 0x7F | 0x80,
                value >> 14 & 0x7F | 0x80,
                value >> 21,
            )
        )
    if value < 1 << 35:
        return bytes(
            (
                value & 0x7F | 0x80,
                value >> 7 & 0x7F | 0x80,
                value >> 14 & 0x7F | 0x80,
                value >> 21 & 0x7F | 0x80,
                value >> 28,
            )
        )
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    """The key bytes of field ``number`` with ``wire_type``."""
    return varint(number << 3 | wire_type)


def keys(message: str, wire_types: Dict[str, int]) -> Dict[str, bytes]:
    """Key bytes of each named field of ``message``."""
    numbers = FIELDS[message]
    return {name: key(numbers[name], kind) for name, kind in wire_types.items()}


def length_delimited(field_key: bytes, payload: bytes) -> bytes:
    """A length-delimited field: key, length, payload."""
    size = len(payload)
    return field_key + (_SMALL[size] if size < 0x80 else varint(size)) + payload


def text(field_key: bytes, value: str) -> bytes:
    """A string field (the text is valid Unicode: checked at validation)."""
    return length_delimited(field_key, value.encode())


def double(field_key: bytes, value: float) -> bytes:
    """A double field."""
    return field_key + _pack_double(value)


def integer(field_key: bytes, value: int) -> bytes:
    """A varint field (int64, enum)."""
    return field_key + varint(value)


# -- Timestamp ------------------------------------------------------------------

_TS = keys("Timestamp", {"seconds": VARINT, "nanos": VARINT})
_TS_SECONDS = _TS["seconds"]
_TS_NANOS = _TS["nanos"]


def timestamp(seconds: int, nanos: int) -> bytes:
    """The body of a ``google.protobuf.Timestamp`` (zero fields omitted)."""
    out = _TS_SECONDS + varint(seconds) if seconds else b""
    if nanos:
        out += _TS_NANOS + varint(nanos)
    return out


# -- the Event envelope -----------------------------------------------------------

_EV = keys(
    "Event",
    {
        "event_id": LEN,
        "timestamp": LEN,
        "source": LEN,
        "tags": LEN,
        "trace_id": LEN,
        "span_id": LEN,
    },
)
EVENT_ID_PREFIX = _EV["event_id"] + varint(16)
TIMESTAMP_KEY = _EV["timestamp"]
_SOURCE_KEY = _EV["source"]
_TAGS_KEY = _EV["tags"]
_TRACE_KEY = _EV["trace_id"]
_SPAN_KEY = _EV["span_id"]
_TAG_ENTRY = keys("TagsEntry", {"key": LEN, "value": LEN})
_TAG_ENTRY_KEY = _TAG_ENTRY["key"]
_TAG_ENTRY_VALUE = _TAG_ENTRY["value"]
_SRC = keys(
    "Source",
    {
        "service": LEN,
        "environment": LEN,
        "host": LEN,
        "sdk_name": LEN,
        "sdk_version": LEN,
    },
)


def payload_key(event_type_name: str) -> bytes:
    """The Event field key of a payload (``"model_call"``, ...)."""
    return key(FIELDS["Event"][event_type_name], LEN)


def source_field(fields: Iterable[Tuple[str, str]]) -> bytes:
    """The Event's ``source`` field from ``(name, text)`` pairs in field order;
    empty texts are omitted (proto3 implicit presence)."""
    body = b"".join(text(_SRC[name], value) for name, value in fields if value)
    return length_delimited(_SOURCE_KEY, body)


def tags_field(tags: Dict[str, str]) -> bytes:
    """The Event's ``tags`` map, one entry per tag, in the dict's order."""
    out = b""
    for name, value in tags.items():
        entry = text(_TAG_ENTRY_KEY, name) + text(_TAG_ENTRY_VALUE, value)
        out += length_delimited(_TAGS_KEY, entry)
    return out


def trace_fields(trace_id: Optional[str], span_id: Optional[str]) -> bytes:
    """The Event's ``trace_id`` and ``span_id`` (proto3 optional)."""
    out = b"" if trace_id is None else text(_TRACE_KEY, trace_id)
    if span_id is not None:
        out += text(_SPAN_KEY, span_id)
    return out


# (Unix seconds, the Timestamp's seconds field): events made in the same
# second share it. One tuple, so that threads read a consistent pair.
_second = (0, b"")


def stamp(event_id: bytes, seconds: int, nanos: int) -> bytes:
    """The Event's first two fields: its 16-byte id and its timestamp."""
    global _second
    cached, head = _second
    if cached != seconds:
        head = _TS_SECONDS + varint(seconds) if seconds else b""
        _second = (seconds, head)
    body = head + _TS_NANOS + varint(nanos) if nanos else head
    return EVENT_ID_PREFIX + event_id + TIMESTAMP_KEY + _SMALL[len(body)] + body
