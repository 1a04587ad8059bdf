"""The spool frame, written directly, against the generated SpoolRecord encoder."""

import struct
import zlib
from pathlib import Path
from typing import Any, List, Literal, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from vdt_ai import ModelCall, encode
from vdt_ai import spool as spool_module
from vdt_ai.codec import Record
from vdt_ai.proto import events_pb2 as pb
from vdt_ai.spool import (
    MAGIC,
    SpoolTransport,
    SpoolWriter,
    encode_record,
    read_segment,
)
from vdt_ai.transport import Counters

from .._examples import examples

# Valid Unicode (no lone surrogates, which neither encoder can write).
_SURROGATES: "Tuple[Literal['Cs']]" = ("Cs",)
texts = st.text(st.characters(blacklist_categories=_SURROGATES), max_size=40)
blobs = st.binary(max_size=300)
headers = st.lists(st.tuples(texts, blobs), max_size=8)
records = st.builds(
    Record,
    topic=texts,
    key=blobs,
    value=st.one_of(blobs, st.binary(min_size=16_000, max_size=20_000)),
    headers=headers,
)


def official(record: Record) -> bytes:
    message = pb.SpoolRecord(topic=record.topic, key=record.key, value=record.value)
    for name, value in record.headers:
        message.headers.add(key=name, value=value)
    payload = message.SerializeToString()
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


@settings(max_examples=examples(500), deadline=None)
@given(records)
def test_frame_equals_the_generated_encoder(record: Record) -> None:
    assert encode_record(record) == official(record)


def test_edge_cases_equal_the_generated_encoder() -> None:
    big = bytes(range(256)) * 5000  # 1.28 MB: a multi-byte length
    cases = [
        Record("", b"", b"", []),
        Record("vdt.model_calls", b"", b"x", []),
        Record("vdt.métriques.日本", b"k", big, [("", b"")]),
        Record("t", b"k" * 200, b"v", [("naïve-ключ", b"\x00\xff"), ("x", b"")]),
        Record("t", b"", b"", [("a", b"1")] * 20),
    ]
    for record in cases:
        assert encode_record(record) == official(record), record.topic


def test_header_caches_stay_bounded_and_correct() -> None:
    caches = (
        spool_module._header_prefixes,
        spool_module._header_fields,
        spool_module._topic_fields,
        spool_module._value_prefixes,
    )
    for cache in caches:
        cache.clear()
    size = spool_module._CACHE_SIZE
    for i in range(3 * size):
        record = Record(
            f"t{i}", b"", b"v" * i, [(f"n{i}", str(i).encode()), ("c", b"1")]
        )
        assert encode_record(record) == official(record)
        assert all(len(cache) <= size for cache in caches)


def test_repeated_headers_come_from_the_caches_byte_exact() -> None:
    # As the SDK sends them: constant header tuples (the same objects, or
    # equal copies, as spilled records rebuild them) around an event id that
    # is new on every record. Two event types with values of one length.
    for cache in (spool_module._header_prefixes, spool_module._header_fields):
        cache.clear()
    kind = ("vdt-event-type", b"ground_truth")
    other = ("vdt-event-type", b"data_quality")  # same length, other value
    tail = [("vdt-schema-version", b"1"), ("content-type", b"application/x")]
    for i in range(300):
        event_id = f"{i:036d}".encode()
        first = kind if i % 3 else other
        if i % 5 == 0:  # equal copies, not the same objects
            first = (str(first[0]), bytes(first[1]))
        record = Record(
            "vdt.ground_truth",
            f"key{i % 7}".encode(),
            bytes([i % 256]) * (i % 200),
            [first, ("vdt-event-id", event_id)] + tail,
        )
        assert encode_record(record) == official(record), i
    fields = spool_module._header_fields
    # The first header of each name and value length is cached whole (the
    # first type seen, the tail), later values of that name and length are
    # written from the prefix: of the event ids only the first is kept, never
    # one per record.
    assert other in fields and kind not in fields
    assert all(header in fields for header in tail)
    assert sum(name == "vdt-event-id" for name, _ in fields) == 1
    assert len(fields) == 4


def test_unhashable_and_odd_headers_after_cached_ones() -> None:
    # A cached name met again with a value the caches cannot key (bytearray,
    # a list pair, None) goes the slow way and stays byte-exact.
    base = ("h", b"v1")
    assert encode_record(Record("t", b"", b"x", [base])) == official(
        Record("t", b"", b"x", [base])
    )
    odd: List[Any] = [
        base,
        ("h", bytearray(b"v2")),
        ["h", b"v3"],
        ("h", None),
        ("h", b"v4"),
    ]
    expect = Record("t", b"", b"x", [("h", b"v1"), ("h", b"v2"), ("h", b"v3")])
    expect.headers.extend([("h", b""), ("h", b"v4")])
    assert encode_record(Record("t", b"", b"x", odd)) == official(expect)
    # A bytearray first of its name and length: written, never cached (it
    # could change after the call).
    value = bytearray(b"mutable")
    first = Record("t", b"", b"x", [("fresh-name", value)])  # type: ignore
    assert encode_record(first) == official(
        Record("t", b"", b"x", [("fresh-name", b"mutable")])
    )
    assert all(name != "fresh-name" for name, _ in spool_module._header_fields)
    # A large value is written, never kept whole (the cache's memory).
    big = ("big-name", b"b" * (spool_module._FIELD_VALUE_MAX + 1))
    assert encode_record(Record("t", b"", b"", [big])) == official(
        Record("t", b"", b"", [big])
    )
    assert big not in spool_module._header_fields


# Header names and values from small pools, so that records repeat the cached
# ones, mixed with fresh values of the same lengths.
pool_headers = st.lists(
    st.tuples(
        st.sampled_from(["a", "vdt-event-id", "é"]),
        st.one_of(st.sampled_from([b"", b"1", b"22", b"xy"]), st.binary(max_size=3)),
    ),
    max_size=6,
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["t", "u"]), blobs, pool_headers)))
def test_record_sequences_equal_the_generated_encoder(
    batch: List[Tuple[str, bytes, List[Tuple[str, bytes]]]],
) -> None:
    for topic, value, header_list in batch:
        record = Record(topic, value[:5], value, header_list)
        assert encode_record(record) == official(record)


def test_bytearray_and_missing_header_values() -> None:
    # A bytearray value is written like bytes; a None value (a header without
    # one, as confluent-kafka allows) is left out, like an empty one.
    record = Record("t", b"k", b"v", [("a", bytearray(b"xy"))])  # type: ignore
    assert encode_record(record) == official(Record("t", b"k", b"v", [("a", b"xy")]))
    nothing: List[Tuple[str, Optional[bytes]]] = [("a", None)]
    record = Record("t", b"k", b"v", nothing)  # type: ignore[arg-type]
    assert encode_record(record) == official(Record("t", b"k", b"v", [("a", b"")]))


def test_sdk_records_read_back_from_disk(tmp_path: Path) -> None:
    sent = [
        encode(ModelCall(model_name="m", input_data={"i": i}, latency_ms=i))
        for i in range(20)
    ]
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    assert writer.append(sent[0])
    assert writer.append_many(sent[1:]) == len(sent) - 1
    writer.close()
    (segment,) = tmp_path.glob("*.vdtspool")
    data = segment.read_bytes()
    assert data == MAGIC + b"".join(official(record) for record in sent)
    result = read_segment(segment)
    assert result.clean
    assert result.records == sent


def test_transport_counts_into_the_counters_it_is_given(tmp_path: Path) -> None:
    transport = SpoolTransport(tmp_path, max_bytes=10**9)
    first, second = Counters(), Counters()
    record = encode(ModelCall(model_name="m", latency_ms=1))
    for counters in (first, first, second, first):
        transport.send(record, counters)
    transport.close()
    assert first.snapshot().spooled == 3
    assert second.snapshot().spooled == 1
    assert len(read_segment(next(tmp_path.glob("*.vdtspool"))).records) == 4
