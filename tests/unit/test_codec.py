"""Wire format: topics, keys, headers, size limit and lossless round trips."""

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

from vdt_ai import (
    DataQuality,
    Event,
    GroundTruth,
    JobRun,
    Metric,
    ModelCall,
    SerializationError,
    ValidationError,
    decode,
    encode,
)
from vdt_ai.codec import SCHEMA_VERSION, TOPIC_SUFFIXES, topic_for
from vdt_ai.models import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    EventType,
    Source,
    build_event,
)
from vdt_ai.proto import events_pb2 as pb

from .._examples import examples
from ..conftest import API_KEY, KEY_ID, SECRET

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc


def test_generated_code_is_not_stale() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen-proto"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "event,topic,key",
    [
        (ModelCall(model_name="rec"), "vdt.model_calls", b"rec"),
        (DataQuality(dataset_name="ds", record_count=1), "vdt.data_quality", b"ds"),
        (Metric(name="loss", value=1.0, run_id="r1"), "vdt.metrics", b"r1"),
        (Metric(name="loss", value=1.0), "vdt.metrics", b"loss"),
        (GroundTruth(request_id="q", model_name="rec"), "vdt.ground_truth", b"rec"),
        (GroundTruth(request_id="q"), "vdt.ground_truth", b"q"),
        (
            JobRun(job_name="etl", run_id="run-7", status="started"),
            "vdt.job_runs",
            b"run-7",
        ),
    ],
)
def test_topic_and_key_per_event_type(event: Event, topic: str, key: bytes) -> None:
    record = encode(event)
    assert record.topic == topic
    assert record.key == key
    assert decode(record.value) == event


def test_topic_prefix_is_applied() -> None:
    record = encode(ModelCall(model_name="m"), topic_prefix="acme.ml")
    assert record.topic == "acme.ml.model_calls"
    assert {topic_for(t, "p") for t in EventType} == {
        f"p.{suffix}" for suffix in TOPIC_SUFFIXES.values()
    }


def test_headers_carry_type_version_content_type_and_key_id_only() -> None:
    event = ModelCall(model_name="m")
    record = encode(event, api_key_id=KEY_ID)
    headers = dict(record.headers)
    assert headers == {
        "vdt-event-type": b"model_call",
        "vdt-event-id": str(event.event_id).encode(),
        "vdt-schema-version": SCHEMA_VERSION.encode(),
        "content-type": b"application/x-protobuf; messageType=vdt.ai.v1.Event",
        "vdt-api-key-id": KEY_ID.encode(),
    }
    everything = record.topic.encode() + record.key + record.value
    everything += b"".join(k.encode() + v for k, v in record.headers)
    assert SECRET.encode() not in everything
    assert API_KEY.encode() not in everything
    assert "vdt-api-key-id" not in dict(encode(event).headers)


def test_value_is_a_plain_protobuf_event() -> None:
    event = ModelCall(
        model_name="m", input_data={"user_id": 123}, tags={"team": "search"}
    )
    message = pb.Event.FromString(encode(event).value)
    assert message.WhichOneof("payload") == "model_call"
    assert message.event_id == event.event_id.bytes
    assert message.model_call.input_data_json == b'{"user_id":123}'
    assert dict(message.tags) == {"team": "search"}
    assert not message.model_call.HasField("prediction_json")


def test_oversized_event_is_refused_with_sizes() -> None:
    event = ModelCall(model_name="m", input_data={"blob": "x" * 5000})
    with pytest.raises(ValidationError) as info:
        encode(event, max_event_bytes=4096)
    problems = dict(info.value.errors)
    assert "exceeds max_event_bytes (4096)" in problems["event"]
    assert encode(event, max_event_bytes=8192).value


def test_text_protobuf_cannot_carry_is_refused_by_the_model() -> None:
    with pytest.raises(PydanticValidationError):
        ModelCall(model_name="m", input_data={"text": "lone \ud800 surrogate"})
    # An event copied without validation still cannot reach the wire.
    event = ModelCall(model_name="m").model_copy(
        update={"input_data": {"text": "lone \ud800 surrogate"}}
    )
    with pytest.raises(SerializationError):
        encode(event)


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xff\xff",
        pb.Event(event_id=b"x" * 16).SerializeToString(),  # no payload
        pb.Event(event_id=b"short", metric=pb.Metric(name="x")).SerializeToString(),
        pb.Event(
            event_id=b"x" * 16, metric=pb.Metric(name="", value=1)
        ).SerializeToString(),
        pb.Event(
            event_id=b"x" * 16,
            job_run=pb.JobRun(job_name="j", run_id="r", status=9),  # type: ignore
        ).SerializeToString(),
    ],
)
def test_decode_refuses_what_is_not_a_valid_event(value: bytes) -> None:
    with pytest.raises(SerializationError):
        decode(value)


def test_decode_of_every_field() -> None:
    start = dt.datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)
    events = [
        ModelCall(
            model_name="llm",
            model_version="v2",
            input_data={"prompt": "hi", "n": [1, 2.5, None, True]},
            prediction="hello",
            latency_ms=12.5,
            status="error",
            error_type="Timeout",
            error_message="took too long",
            request_id="req-1",
            prompt_tokens=10,
            completion_tokens=20,
            cost=0.002,
            tags={"a": "b"},
            trace_id="t" * 32,
            span_id="s" * 16,
            timestamp=start,
            source=Source(service="svc", environment="prod", host="h"),
        ),
        DataQuality(
            dataset_name="users",
            record_count=100,
            null_count=3,
            anomaly_score=0.25,
            columns=[
                {
                    "name": "age",
                    "dtype": "int64",
                    "null_count": 1,
                    "distinct_count": 50,
                    "min": 0,
                    "max": 99,
                    "mean": 41.5,
                    "stddev": 12.0,
                },
                {"name": "joined", "min": "2020-01-01", "max": "2024-01-01"},
            ],
        ),
        GroundTruth(request_id="req-1", actual={"label": 0}, model_name="llm"),
        JobRun(
            job_name="train",
            run_id="r",
            status="failed",
            start_time=start,
            end_time=start + dt.timedelta(minutes=1),
            error_type="OOM",
            error_message="out of memory",
            metrics={"rows": 10, "auc": 0.9},
        ),
        Metric(name="loss", value=-0.0, step=0, run_id="r"),
    ]
    for event in events:
        assert decode(encode(event).value) == event


# -- property-based: any valid event survives encode -> decode unchanged -------

_SURROGATES: "tuple[Literal['Cs']]" = ("Cs",)

# Lone surrogates are not text protobuf or JSON can carry.
_VALID_CHARS = st.characters(blacklist_categories=_SURROGATES)
_text = st.text(alphabet=_VALID_CHARS, min_size=1, max_size=40).filter(
    lambda s: s.strip() != ""
)
_names = _text.filter(lambda s: len(s) <= MAX_NAME_LENGTH)
_ids = _text.filter(lambda s: len(s) <= MAX_ID_LENGTH)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=_VALID_CHARS, max_size=20)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.text(alphabet=_VALID_CHARS, max_size=8),
        inner,
        max_size=4,
    ),
    max_leaves=12,
)
_aware = st.datetimes(  # the whole range a UTC datetime can hold
    min_value=dt.datetime(1, 1, 1),
    max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(UTC),
)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_nonneg = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
_counts = st.integers(min_value=0, max_value=2**63 - 1)  # int64 edge included
_tags = st.dictionaries(
    _text.filter(lambda s: len(s) <= 128),
    st.text(max_size=30).filter(
        lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
    ),
    max_size=5,
)


def _envelope() -> Dict[str, Any]:
    return {
        "timestamp": _aware,
        "tags": _tags,
        "trace_id": st.none() | _ids,
    }


model_calls = st.builds(
    ModelCall,
    model_name=_names,
    model_version=st.none() | _ids,
    input_data=_json,
    prediction=_json,
    latency_ms=st.none() | _nonneg,
    status=st.sampled_from(["success", "error"]),
    error_message=st.none()
    | st.text(max_size=50).filter(
        lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
    ),
    prompt_tokens=st.none() | _counts,
    completion_tokens=st.none() | _counts,
    cost=st.none() | _nonneg,
    **_envelope(),
)
metrics = st.builds(
    Metric,
    name=_names,
    value=_finite,
    step=st.none() | _counts,
    run_id=st.none() | _ids,
    **_envelope(),
)
ground_truths = st.builds(
    GroundTruth, request_id=_ids, actual=_json, model_name=st.none() | _names
)


@st.composite
def data_qualities(draw: Any) -> DataQuality:
    records = draw(_counts)
    nulls = draw(st.integers(min_value=0, max_value=records))
    columns = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": _names,
                    "null_count": st.none() | st.integers(0, records),
                    "min": _json_scalars,
                    "max": _json_scalars,
                    "mean": st.none() | _finite,
                    "stddev": st.none() | _nonneg,
                }
            ),
            max_size=3,
        )
    )
    score = draw(st.none() | st.floats(min_value=0, max_value=1))
    return build_event(
        DataQuality,
        {
            "dataset_name": draw(_names),
            "record_count": records,
            "null_count": nulls,
            "anomaly_score": score,
            "columns": columns,
            "timestamp": draw(_aware),
        },
    )


@st.composite
def job_runs(draw: Any) -> JobRun:
    start = draw(st.none() | _aware)
    end = None
    if start is not None and draw(st.booleans()):
        room = (dt.datetime.max.replace(tzinfo=UTC) - start) // dt.timedelta(
            microseconds=1
        )
        micros = draw(st.integers(0, min(10**12, room)))
        end = start + dt.timedelta(microseconds=micros)
    return build_event(
        JobRun,
        {
            "job_name": draw(_names),
            "run_id": draw(_ids),
            "status": draw(st.sampled_from(["started", "succeeded", "failed"])),
            "start_time": start,
            "end_time": end,
            "metrics": draw(_json),
        },
    )


@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(model_calls | metrics | ground_truths | data_qualities() | job_runs())
def test_any_valid_event_round_trips(event: Event) -> None:
    record = encode(event, max_event_bytes=10 * 1024 * 1024)
    decoded = decode(record.value)
    assert decoded == event
    assert type(decoded) is type(event)


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=200))
def test_decode_of_random_bytes_never_crashes_otherwise(value: bytes) -> None:
    try:
        decode(value)
    except SerializationError:
        pass


def test_protobuf_runtime_in_supported_range() -> None:
    import google.protobuf

    major, minor = (int(p) for p in google.protobuf.__version__.split(".")[:2])
    assert (major, minor) >= (4, 21) and major < 8, sys.version
