"""The direct wire writers against the official protobuf encoder."""

import datetime as dt
from typing import Any, Dict

import pytest
from google.protobuf.internal.encoder import _VarintBytes  # type: ignore
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vdt_ai import ValidationError
from vdt_ai.codec import Encoder, _wire, decode
from vdt_ai.codec._reference import reference_value
from vdt_ai.codec._schema import ENUMS, FIELDS
from vdt_ai.models import (
    EVENT_CLASSES,
    LEDGER_COUNTS,
    Event,
    EventType,
    Source,
    build_event,
)
from vdt_ai.proto import events_pb2 as pb

from .._examples import examples

UTC = dt.timezone.utc


def test_schema_numbers_match_the_generated_descriptors() -> None:
    descriptor: Any
    for message, numbers in FIELDS.items():
        if message == "Timestamp":
            from google.protobuf.timestamp_pb2 import Timestamp

            descriptor = Timestamp.DESCRIPTOR
        elif message == "TagsEntry":
            descriptor = pb.Event.DESCRIPTOR.fields_by_name["tags"].message_type
        elif message == "DoubleEntry":
            fields = pb.ModelCall.DESCRIPTOR.fields_by_name
            descriptor = fields["class_probabilities"].message_type
            other: Any = fields["feature_importance"].message_type
            assert [(f.name, f.number, f.type) for f in other.fields] == [
                (f.name, f.number, f.type) for f in descriptor.fields
            ]
        elif message == "Int64Entry":
            fields = pb.SdkReport.DESCRIPTOR.fields_by_name
            descriptor = fields["dropped_by_reason"].message_type
            other = fields["failed_by_reason"].message_type
            assert [(f.name, f.number, f.type) for f in other.fields] == [
                (f.name, f.number, f.type) for f in descriptor.fields
            ]
        else:
            descriptor = pb.DESCRIPTOR.message_types_by_name[message]
        assert {f.name: f.number for f in descriptor.fields} == numbers, message
    for enum, values in ENUMS.items():
        descriptor = pb.DESCRIPTOR.enum_types_by_name[enum]
        assert {v.name: v.number for v in descriptor.values if v.number} == values, enum


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_varint_matches_the_official_encoder(value: int) -> None:
    expected = _VarintBytes(value if value >= 0 else value + (1 << 64))
    assert _wire.varint(value) == expected


@given(
    st.dictionaries(
        # Around the one-byte entry length (names of 116 and 117 bytes), and
        # multi-byte characters.
        st.text(alphabet="abc", min_size=110, max_size=124)
        | st.text(min_size=30, max_size=130),
        st.floats(allow_nan=False),
        max_size=3,
    )
)
def test_double_map_matches_the_official_encoder(values: Dict[str, float]) -> None:
    from vdt_ai.codec._payloads import double_map

    assume(all(_valid(name) for name in values))
    number = FIELDS["ModelCall"]["feature_importance"]
    written = double_map(_wire.key(number, _wire.LEN), values)
    message = pb.ModelCall()
    message.feature_importance.update(values)
    parsed = pb.ModelCall.FromString(written)
    assert dict(parsed.feature_importance) == values
    assert len(written) == message.ByteSize()


def _valid(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text(6),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(_text(4), inner, max_size=3),
    max_leaves=8,
)
_opt_text = st.none() | _text(8, 1)
_count = st.integers(min_value=0, max_value=2**63 - 1)
_float = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
_time = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.just(UTC),
)
_envelope = st.fixed_dictionaries(
    {
        "timestamp": _time,
        "source": st.builds(
            Source,
            service=_text(6),
            environment=_text(6),
            host=_text(6),
            sdk_name=_text(6),
        ),
        "tags": st.dictionaries(_text(5, 1), _text(5), max_size=3),
        "trace_id": _opt_text,
        "span_id": _opt_text,
    }
)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_probabilities = st.dictionaries(_text(5, 1), st.floats(0, 1), max_size=4)
_vector = st.lists(_finite, min_size=1, max_size=6) | st.lists(
    st.floats(-65504, 65504, width=16), min_size=1, max_size=6
)
# The typed ML fields: each alone, or all together.
TYPED_MODEL_CALL_FIELDS = {
    "prediction_label": st.none() | _text(8),
    "prediction_score": st.none() | _finite,
    "class_probabilities": st.none() | _probabilities,
    "embedding": st.none() | _vector,
    "embedding_name": _opt_text,
    "embedding_dtype": st.none() | st.sampled_from(["float32", "float16"]),
    "feature_importance": st.none() | st.dictionaries(_text(5, 1), _finite, max_size=4),
}


@st.composite
def _data_profiles(draw: Any) -> Dict[str, Any]:
    rows = draw(st.just(2**63 - 1) | st.integers(0, 5))
    sketch = st.none() | st.binary(max_size=12)
    columns = {}
    for name in draw(st.lists(_text(5, 1), max_size=3, unique=True)):
        kind = draw(st.sampled_from(["number", "string", "boolean", "other"]))
        count = draw(st.integers(0, min(rows, 5)))
        columns[name] = {
            "kind": kind,
            "count": count,
            "null_count": rows - count,
            "min": draw(st.none() | _finite),
            "max": draw(st.none() | _finite),
            "mean": draw(st.none() | _finite),
            "stddev": draw(st.none() | _float),
            "quantiles": draw(sketch) if kind == "number" else None,
            "distinct": draw(sketch),
            "frequent": draw(sketch) if kind in ("string", "boolean") else None,
        }
    window = draw(st.none() | _time)
    return {
        "dataset_name": draw(_text(8, 1)),
        "row_count": rows,
        "columns": columns,
        "window_start": window,
        "window_end": window,
        "kll_k": draw(st.integers(8, 65535)),
        "hll_lg_k": draw(st.integers(4, 21)),
        "frequent_lg_max_k": draw(st.integers(3, 20)),
    }


_report_counts = {
    name: st.sampled_from([0, 1, 2**63 - 1]) | st.integers(0, 300)
    for name in ("pid", "sequence", "spool_bytes") + LEDGER_COUNTS
}
_payloads: Dict[EventType, Any] = {
    EventType.DATA_PROFILE: _data_profiles(),
    EventType.SDK_REPORT: st.fixed_dictionaries(
        {"instance_id": _text(8, 1)},
        optional={
            "final": st.booleans(),
            "window_start": st.none() | _time,
            "window_end": st.none() | _time,
            **_report_counts,
            **{
                name: st.dictionaries(
                    _text(8, 1), st.sampled_from([0, 1, 2**63 - 1]), max_size=3
                )
                for name in ("dropped_by_reason", "failed_by_reason")
            },
        },
    ),
    EventType.MODEL_CALL: st.fixed_dictionaries(
        {"model_name": _text(8, 1)},
        optional={
            "model_version": _opt_text,
            "input_data": _json,
            "prediction": _json,
            "latency_ms": _float,
            "status": st.sampled_from(["success", "error"]),
            "error_type": _opt_text,
            "error_message": st.none() | _text(8),
            "request_id": _opt_text,
            "prompt_tokens": _count,
            "completion_tokens": _count,
            "cost": _float,
            **TYPED_MODEL_CALL_FIELDS,
        },
    ),
    EventType.DATA_QUALITY: st.fixed_dictionaries(
        {
            "dataset_name": _text(8, 1),
            "record_count": st.just(2**63 - 1) | st.integers(0, 5),
            "null_count": st.integers(0, 5),
        },
        optional={
            "anomaly_score": st.floats(0, 1),
            "columns": st.lists(
                st.fixed_dictionaries(
                    {"name": _text(5, 1)},
                    optional={
                        "dtype": _opt_text,
                        "null_count": st.none() | st.integers(0, 5),
                        "distinct_count": st.none() | _count,
                        "min": _json,
                        "max": _json,
                        "mean": st.floats(allow_nan=False, allow_infinity=False),
                        "stddev": _float,
                    },
                ),
                max_size=3,
            ),
        },
    ),
    EventType.METRIC: st.fixed_dictionaries(
        {
            "name": _text(8, 1),
            "value": st.sampled_from([0.0, -0.0])
            | st.floats(allow_nan=False, allow_infinity=False),
        },
        optional={"step": st.none() | _count, "run_id": _opt_text},
    ),
    EventType.GROUND_TRUTH: st.fixed_dictionaries(
        {"request_id": _text(8, 1)},
        optional={
            "actual": _json,
            "model_name": _opt_text,
            "actual_label": st.none() | _text(8),
            "actual_score": st.none() | _finite,
        },
    ),
    EventType.JOB_RUN: st.fixed_dictionaries(
        {
            "job_name": _text(8, 1),
            "status": st.sampled_from(["started", "succeeded", "failed"]),
        },
        optional={
            "run_id": _text(8, 1),
            "start_time": st.none() | _time,
            "end_time": st.none() | _time,
            "duration_ms": _float,
            "error_type": _opt_text,
            "error_message": _text(8),
            "metrics": _json,
        },
    ),
}


@st.composite
def events(draw: Any) -> Event:
    kind = draw(st.sampled_from(list(EventType)))
    fields = {**draw(_envelope), **draw(_payloads[kind])}
    try:
        return build_event(EVENT_CLASSES[kind], fields)
    except ValidationError:
        assume(False)
        raise  # pragma: no cover


def assert_same_event_bytes(ours: bytes, official: bytes) -> None:
    """Byte for byte, or parsed when maps (tags, class_probabilities,
    feature_importance, *_by_reason: entry order not fixed) differ only in
    order."""
    if ours == official:
        return
    a, b = pb.Event.FromString(ours), pb.Event.FromString(official)
    assert a == b
    sizes = [len(a.tags)]
    if a.WhichOneof("payload") == "model_call":
        call = a.model_call
        sizes += [len(call.class_probabilities), len(call.feature_importance)]
    elif a.WhichOneof("payload") == "sdk_report":
        report = a.sdk_report
        sizes += [len(report.dropped_by_reason), len(report.failed_by_reason)]
    assert max(sizes) > 1, "only map entry order may differ"


# No deadline, as every other property test here: under load (the CPython
# matrix runs beside the broker suites) one example took 273 ms against the
# 200 ms default and hypothesis called the test flaky.
@settings(
    max_examples=examples(400),
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much],
)
@given(events())
def test_encoder_writes_what_the_official_encoder_writes(event: Event) -> None:
    record = Encoder(max_event_bytes=10**7).encode(event)
    assert_same_event_bytes(record.value, reference_value(event))
    assert decode(record.value) == event


def test_timestamps_before_1970_and_zero_fields() -> None:
    event = build_event(
        EVENT_CLASSES[EventType.METRIC],
        {
            "name": "m",
            "value": 0.0,
            "timestamp": dt.datetime(1, 1, 1, tzinfo=UTC),
            "source": Source(sdk_name="", sdk_version=""),
        },
    )
    assert Encoder().encode(event).value == reference_value(event)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 2**14, 2**35, -1, -(2**63)])
def test_timestamp_body(value: int) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    expected = Timestamp(seconds=value, nanos=999_999_000).SerializeToString()
    assert _wire.timestamp(value, 999_999_000) == expected


@settings(max_examples=examples(300))
@given(raw=st.binary(min_size=16, max_size=16))
def test_uuid_text_is_the_canonical_form(raw: bytes) -> None:
    import uuid

    from vdt_ai.codec import uuid_text

    assert uuid_text(raw) == str(uuid.UUID(bytes=raw)).encode()
    headers = Encoder(api_key_id="k").headers(EventType.METRIC, raw)
    assert headers[1] == ("vdt-event-id", uuid_text(raw))
    assert [name for name, _ in headers] == [
        "vdt-event-type",
        "vdt-event-id",
        "vdt-schema-version",
        "content-type",
        "vdt-api-key-id",
    ]
