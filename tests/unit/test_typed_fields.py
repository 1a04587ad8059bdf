"""The typed ML fields of ModelCall and GroundTruth: validation, round trips
(client, Kafka record, offline spool), compatibility with old readers, the
data policy and before_send."""

import math
import struct
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdt_ai import GroundTruth, ModelCall, ValidationError, VDTClient, decode
from vdt_ai.client import OfflineModeWarning
from vdt_ai.codec import Encoder
from vdt_ai.codec._reference import reference_value
from vdt_ai.config import load_settings
from vdt_ai.models import (
    MAX_CLASSES,
    MAX_EMBEDDING_DIMENSION,
    MAX_FEATURES,
    EmbeddingDType,
    Event,
    build_event,
)
from vdt_ai.proto import events_pb2 as pb
from vdt_ai.spool import iter_events
from vdt_ai.testing import MemoryTransport

from .._examples import examples
from .test_codec_wire import TYPED_MODEL_CALL_FIELDS, assert_same_event_bytes

API_KEY = "vdt_abcdefabcdef_" + "A" * 32


def _client(**settings_: Any) -> "tuple[VDTClient, MemoryTransport]":
    transport = MemoryTransport()
    return VDTClient(transport=transport, handle_sigterm=False, **settings_), transport


def _errors(call: Any) -> List[Any]:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.errors


# -- round trips -----------------------------------------------------------------

client_typed = st.fixed_dictionaries(
    {},
    optional={
        **{
            name: strategy
            for name, strategy in TYPED_MODEL_CALL_FIELDS.items()
            if name != "embedding_dtype"
        },
        # Within the float32 range (beyond it is refused: tested below).
        "embedding": st.none()
        | st.lists(st.floats(-1e38, 1e38), min_size=1, max_size=6),
        "embedding_name": st.none() | st.sampled_from(["text", "image", "é"]),
    },
)


# (actual_label, actual_score) of a ground truth.
ground_truth_typed = st.tuples(
    st.none() | st.text(max_size=10),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
)


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much],
)
@given(typed=client_typed, dtype=st.sampled_from(["float32", "float16"]))
def test_log_model_call_round_trips_every_typed_field(
    typed: Dict[str, Any], dtype: str
) -> None:
    typed = loggable(typed, dtype)
    client, transport = _client(embedding_dtype=dtype)
    event_id = client.log_model_call("m", {"x": 1}, request_id="r", **typed)
    (record,) = transport.records
    event = decode(record.value)
    assert isinstance(event, ModelCall) and event.event_id == event_id
    assert event == transport.events[0]
    assert_same_event_bytes(record.value, reference_value(event))
    assert_typed_fields(event, typed, dtype)


def loggable(typed: Dict[str, Any], dtype: str) -> Dict[str, Any]:
    """A draw of ``client_typed`` as log_model_call takes it with ``dtype``."""
    typed = dict(typed)
    if typed.get("embedding") is None:
        typed.pop("embedding_name", None)
    vector = typed.get("embedding")
    if dtype == "float16" and vector and max(map(abs, vector)) > 65504:
        typed["embedding"] = [0.5]
    return typed


def assert_typed_fields(event: Any, typed: Dict[str, Any], dtype: str) -> None:
    """``event`` carries the typed fields logged as ``typed``."""
    assert isinstance(event, ModelCall)
    assert event.prediction_label == typed.get("prediction_label")
    assert event.prediction_score == typed.get("prediction_score")
    assert event.class_probabilities == (typed.get("class_probabilities") or None)
    assert event.feature_importance == (typed.get("feature_importance") or None)
    if typed.get("embedding") is None:
        assert event.embedding is None and event.embedding_dtype is None
    else:
        numpy_dtype = "<f4" if dtype == "float32" else "<f2"
        expected = np.asarray(typed["embedding"], dtype=numpy_dtype).tolist()
        assert list(event.embedding or ()) == expected
        assert event.embedding_dtype == EmbeddingDType(dtype)
        assert event.embedding_name == typed.get("embedding_name")


@settings(max_examples=examples(60), deadline=None)
@given(
    label=st.none() | st.text(max_size=10),
    score=st.none() | st.floats(allow_nan=False, allow_infinity=False),
)
def test_log_ground_truth_round_trips_label_and_score(
    label: Optional[str], score: Optional[float]
) -> None:
    client, transport = _client()
    client.log_ground_truth("req-1", actual_label=label, actual_score=score)
    (record,) = transport.records
    event = decode(record.value)
    assert isinstance(event, GroundTruth)
    assert (event.actual_label, event.actual_score, event.actual) == (
        label,
        score,
        None,
    )
    assert event == transport.events[0]
    assert record.value == reference_value(event)


def test_bulk_rows_carry_typed_fields_and_share_common_ones() -> None:
    client, transport = _client()
    rows: List[Dict[str, Any]] = [
        {"input_data": {"i": 0}, "prediction_label": "a", "prediction_score": 0.25},
        {"input_data": {"i": 1}, "class_probabilities": {"a": 0.5, "b": 0.5}},
        {"input_data": {"i": 2}},
    ]
    ids = client.log_model_calls(rows, model_name="m", embedding=[1.0, 2.0])
    events = [decode(r.value) for r in transport.records]
    assert [e.event_id for e in events] == ids
    assert [getattr(e, "prediction_label") for e in events] == ["a", None, None]
    assert getattr(events[1], "class_probabilities") == {"a": 0.5, "b": 0.5}
    assert all(getattr(e, "embedding") == (1.0, 2.0) for e in events)


def test_offline_spool_round_trips_typed_fields(tmp_path: Path) -> None:
    with pytest.warns(OfflineModeWarning):
        client = VDTClient(spool_dir=tmp_path / "spool", handle_sigterm=False)
    client.log_model_call(
        "m",
        prediction_label="cat",
        prediction_score=0.75,
        class_probabilities={"cat": 0.75, "dog": 0.25},
        embedding=np.linspace(0, 1, 16, dtype=np.float32),
        embedding_name="image",
        feature_importance={"age": -0.5},
    )
    client.log_ground_truth("r", actual_label="dog", actual_score=0.0)
    client.close()
    call, truth = list(iter_events(tmp_path / "spool"))
    assert isinstance(call, ModelCall) and isinstance(truth, GroundTruth)
    assert call.embedding == tuple(np.linspace(0, 1, 16, dtype=np.float32).tolist())
    assert call.class_probabilities == {"cat": 0.75, "dog": 0.25}
    assert (truth.actual_label, truth.actual_score) == ("dog", 0.0)


@settings(max_examples=examples(25), deadline=None)
@given(
    calls=st.lists(client_typed, min_size=1, max_size=6),
    truths=st.lists(ground_truth_typed, max_size=3),
    dtype=st.sampled_from(["float32", "float16"]),
)
def test_offline_spool_round_trips_every_typed_field(
    calls: List[Dict[str, Any]], truths: List[Any], dtype: str
) -> None:
    calls = [loggable(typed, dtype) for typed in calls]
    with tempfile.TemporaryDirectory() as folder:
        with pytest.warns(OfflineModeWarning):
            client = VDTClient(
                spool_dir=folder, handle_sigterm=False, embedding_dtype=dtype
            )
        for index, typed in enumerate(calls):
            client.log_model_call("m", {"x": 1}, request_id=f"c{index}", **typed)
        for index, (label, score) in enumerate(truths):
            client.log_ground_truth(f"t{index}", actual_label=label, actual_score=score)
        client.close()
        events = list(iter_events(Path(folder)))
    read_calls = [e for e in events if isinstance(e, ModelCall)]
    read_truths = [e for e in events if isinstance(e, GroundTruth)]
    assert [e.request_id for e in read_calls] == [f"c{i}" for i in range(len(calls))]
    for event, typed in zip(read_calls, calls):
        assert_typed_fields(event, typed, dtype)
    assert [(e.actual_label, e.actual_score) for e in read_truths] == truths


def test_embedding_wire_bytes_are_packed_little_endian() -> None:
    vector = [1.0, -2.5, 3.25]
    for dtype, code in (("float32", "<3f"), ("float16", "<3e")):
        client, transport = _client(embedding_dtype=dtype)
        client.log_model_call("m", embedding=vector, embedding_name="t")
        message = pb.Event.FromString(transport.records[0].value)
        embedding = message.model_call.embedding
        assert embedding.vector == struct.pack(code, *vector)
        assert embedding.name == "t"
        assert embedding.dtype == (
            pb.EMBEDDING_DTYPE_FLOAT32
            if dtype == "float32"
            else pb.EMBEDDING_DTYPE_FLOAT16
        )
    # 8192 float32 values: 32 KiB of vector, about as much on the wire.
    client, transport = _client()
    client.log_model_call("m", embedding=np.ones(MAX_EMBEDDING_DIMENSION))
    assert 32_768 < len(transport.records[0].value) < 33_200


def test_embedding_dtype_setting_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VDT_AI_EMBEDDING_DTYPE", "float16")
    assert load_settings().embedding_dtype == "float16"
    client, transport = _client()
    client.log_model_call("m", embedding=[0.1])
    event = transport.events[0]
    assert isinstance(event, ModelCall)
    assert event.embedding_dtype is EmbeddingDType.FLOAT16
    assert event.embedding == (struct.unpack("<e", struct.pack("<e", 0.1))[0],)


class _ArrayLike:
    def __init__(self, values: List[float]) -> None:
        self._values = values

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        return np.asarray(self._values, dtype=dtype)


@pytest.mark.parametrize(
    "vector",
    [
        [1, 2.5],
        (1, 2.5),
        np.array([1, 2.5]),
        np.array([1, 2.5], dtype=np.float16),
        [np.float32(1), np.int64(2) + 0.5],
        _ArrayLike([1, 2.5]),
    ],
    ids=["list", "tuple", "ndarray", "float16", "numpy-scalars", "__array__"],
)
def test_embedding_accepts_sequences_and_arrays(vector: Any) -> None:
    event = build_event(ModelCall, {"model_name": "m", "embedding": vector})
    assert event.embedding == (1.0, 2.5)
    assert all(type(x) is float for x in event.embedding or ())


def test_embedding_accepts_tensor_like_objects() -> None:
    # What torch tensors offer (tolist()) and TensorFlow's (numpy()).
    plain = type("T", (), {"tolist": lambda self: [0.5, 1.5]})()
    tf_like = type("TF", (), {"numpy": lambda self: np.array([0.5, 1.5])})()
    for tensor in (plain, tf_like):
        event = build_event(ModelCall, {"model_name": "m", "embedding": tensor})
        assert event.embedding == (0.5, 1.5)


# -- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field, reason",
    [
        ({"embedding": "abc"}, "embedding", "one-dimensional"),
        ({"embedding": [[1.0, 2.0]]}, "embedding", "one-dimensional"),
        ({"embedding": np.ones((2, 2))}, "embedding", "one-dimensional"),
        ({"embedding": [1.0, math.nan]}, "embedding", "finite"),
        ({"embedding": [math.inf]}, "embedding", "finite"),
        ({"embedding": [True]}, "embedding", "numbers only"),
        ({"embedding": ["1.0"]}, "embedding", "numbers only"),
        ({"embedding": []}, "embedding", "1 to 8192"),
        ({"embedding": np.ones(MAX_EMBEDDING_DIMENSION + 1)}, "embedding", "8192"),
        ({"embedding": [1e39]}, "embedding", "float32 range"),
        ({"embedding_name": "x"}, "embedding_name", "without an embedding"),
        ({"embedding": [1.0], "embedding_name": ""}, "embedding_name", ""),
        ({"prediction_score": math.nan}, "prediction_score", "finite"),
        ({"prediction_score": "0.5"}, "prediction_score", "number"),
        ({"prediction_score": True}, "prediction_score", "number"),
        ({"prediction_label": 3}, "prediction_label", ""),
        ({"prediction_label": "x" * 1025}, "prediction_label", "1024"),
        ({"class_probabilities": {"a": 1.5}}, "class_probabilities.a", "1"),
        ({"class_probabilities": {"a": -0.1}}, "class_probabilities.a", "0"),
        ({"class_probabilities": {"a": math.nan}}, "class_probabilities.a", ""),
        ({"class_probabilities": {"": 0.5}}, "class_probabilities", ""),
        ({"class_probabilities": [("a", 0.5)]}, "class_probabilities", ""),
        ({"feature_importance": {"f": math.inf}}, "feature_importance.f", "finite"),
        ({"feature_importance": {"f": "1"}}, "feature_importance.f", "number"),
    ],
)
def test_bad_typed_values_name_their_field(
    fields: Dict[str, Any], field: str, reason: str
) -> None:
    client, transport = _client()
    errors = _errors(lambda: client.log_model_call("m", **fields))
    assert any(
        path.startswith(field) and reason in message for path, message in errors
    ), errors
    assert transport.records == []


def test_float16_range_is_checked_with_the_setting() -> None:
    client, transport = _client(embedding_dtype="float16")
    errors = _errors(lambda: client.log_model_call("m", embedding=[70000.0]))
    assert errors == [("embedding", "holds a value beyond the float16 range")]
    client32, _ = _client()
    assert client32.log_model_call("m", embedding=[70000.0]) is not None


def test_counts_are_bounded() -> None:
    client, _ = _client()
    too_many = {f"c{i}": 0.0 for i in range(MAX_CLASSES + 1)}
    errors = _errors(lambda: client.log_model_call("m", class_probabilities=too_many))
    assert errors[0][0] == "class_probabilities"
    features = {f"f{i}": 0.0 for i in range(MAX_FEATURES + 1)}
    errors = _errors(lambda: client.log_model_call("m", feature_importance=features))
    assert errors[0][0] == "feature_importance"


def test_bad_bulk_row_names_its_index_and_records_nothing() -> None:
    client, transport = _client()
    rows = [{"prediction_score": 0.5}, {"prediction_score": math.nan}]
    errors = _errors(lambda: client.log_model_calls(rows, model_name="m"))
    assert errors[0][0] == "calls.1.prediction_score"
    assert transport.records == []


def test_ground_truth_validation() -> None:
    client, _ = _client()
    errors = _errors(lambda: client.log_ground_truth("r", actual_score=math.inf))
    assert errors[0][0] == "actual_score"
    bad: Any = b"x"
    errors = _errors(lambda: client.log_ground_truth("r", actual_label=bad))
    assert errors[0][0] == "actual_label"


def test_empty_maps_are_none() -> None:
    event = build_event(
        ModelCall,
        {"model_name": "m", "class_probabilities": {}, "feature_importance": {}},
    )
    assert event.class_probabilities is None and event.feature_importance is None


# -- compatibility -----------------------------------------------------------------


def _old_schema_event_class() -> Any:
    """The Event message as readers built before the typed fields see it."""
    proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(proto)
    proto.name = "old/events.proto"
    proto.package = "old.vdt.ai.v1"
    for message in proto.message_type:
        last = {"ModelCall": 12, "GroundTruth": 3}.get(message.name)
        if last is not None:
            keep = [f for f in message.field if f.number <= last]
            del message.field[:]
            message.field.extend(keep)
            # The new fields' synthetic oneofs (proto3 optional) come last.
            used = max(f.oneof_index for f in keep if f.HasField("oneof_index"))
            del message.oneof_decl[used + 1 :]
            if message.name == "ModelCall":
                del message.nested_type[:]
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(".vdt.ai.v1."):
                field.type_name = ".old" + field.type_name
        for nested in message.nested_type:
            for field in nested.field:
                if field.type_name.startswith(".vdt.ai.v1."):
                    field.type_name = ".old" + field.type_name
    pool = descriptor_pool.DescriptorPool()
    from google.protobuf import timestamp_pb2

    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("old.vdt.ai.v1.Event")
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # protobuf < 4.22 (the lowest we support: 4.21.6)
        factory: Any = message_factory.MessageFactory(pool)
        return factory.GetPrototype(descriptor)
    return get_class(descriptor)


def test_readers_of_the_old_schema_skip_the_new_fields() -> None:
    Old = _old_schema_event_class()
    client, transport = _client()
    client.log_model_call(
        "m",
        {"x": 1},
        [2],
        12.5,
        request_id="r",
        prediction_label="cat",
        prediction_score=0.5,
        class_probabilities={"cat": 0.5},
        embedding=[1.0],
        feature_importance={"x": 1.0},
    )
    client.log_ground_truth("r", 1, actual_label="cat", actual_score=1.0)
    call, truth = (Old.FromString(r.value) for r in transport.records)
    assert call.model_call.model_name == "m"
    assert call.model_call.input_data_json == b'{"x":1}'
    assert call.model_call.latency_ms == 12.5
    assert call.model_call.request_id == "r"
    assert "prediction_label" not in call.model_call.DESCRIPTOR.fields_by_name
    assert truth.ground_truth.request_id == "r"
    assert truth.ground_truth.actual_json == b"1"


# -- data policy and before_send ---------------------------------------------------


def test_policy_rules_on_typed_fields() -> None:
    client, transport = _client(
        data_policy={
            "prediction_label": "mask",
            "embedding": "drop",
            "feature_importance.zip.code": "drop",
            "class_probabilities": "drop",
            "input_data.email": "mask",
        }
    )
    client.log_model_call(
        "m",
        {"email": "a@b.c", "age": 3},
        prediction_label="cat",
        prediction_score=0.5,
        class_probabilities={"cat": 0.5},
        embedding=[1.0],
        embedding_name="image",
        feature_importance={"zip.code": 1.0, "age": 2.0},
    )
    (event,) = transport.events
    assert isinstance(event, ModelCall)
    assert event.input_data == {"email": "****", "age": 3}
    assert event.prediction_label == "****"
    assert event.prediction_score == 0.5
    assert event.class_probabilities is None
    assert event.embedding is None and event.embedding_name is None
    assert event.embedding_dtype is None
    assert event.feature_importance == {"age": 2.0}
    assert decode(transport.records[0].value) == event


def test_ground_truth_rules() -> None:
    client, transport = _client(
        data_policy={"actual_score": "drop", "actual_label": "hash"},
        hash_salt="s" * 16,
    )
    client.log_ground_truth("r", actual_label="cat", actual_score=1.0)
    (event,) = transport.events
    assert isinstance(event, GroundTruth)
    assert event.actual_score is None
    assert (event.actual_label or "").startswith("sha256:")


@pytest.mark.parametrize(
    "rules, problem",
    [
        ({"embedding": "mask"}, "may only drop"),
        ({"prediction_score": "hash"}, "may only drop"),
        ({"feature_importance.age": "mask"}, "may only drop"),
        ({"prediction_score.x": "drop"}, "no sub-fields"),
        ({"prediction_label.x": "mask"}, "no sub-fields"),
    ],
)
def test_policy_refuses_rules_that_cannot_apply(
    rules: Dict[str, str], problem: str
) -> None:
    from vdt_ai import ConfigError

    with pytest.raises(ConfigError, match=problem):
        VDTClient(transport=MemoryTransport(), data_policy=rules, hash_salt="s" * 16)


def test_api_keys_are_masked_in_labels_and_map_names() -> None:
    client, transport = _client()
    client.log_model_call(
        "m",
        prediction_label=f"see {API_KEY}",
        class_probabilities={API_KEY: 0.5},
        feature_importance={API_KEY: 1.0, "password_length": 0.25},
        embedding=[1.0],
        embedding_name=API_KEY,
    )
    client.log_ground_truth("r", actual_label=API_KEY)
    for record in transport.records:
        assert b"A" * 32 not in record.value
    call = transport.events[0]
    assert isinstance(call, ModelCall)
    assert call.prediction_label == "see vdt_abcdefabcdef_****"
    # Numbers under secret-looking names are importances, not secrets: kept.
    assert call.feature_importance == {
        "vdt_abcdefabcdef_****": 1.0,
        "password_length": 0.25,
    }


def test_before_send_sees_and_edits_typed_fields() -> None:
    seen: List[Event] = []

    def hook(event: Event) -> Optional[Event]:
        seen.append(event)
        if isinstance(event, ModelCall):
            return event.model_copy(
                update={"prediction_score": 1.0, "feature_importance": None}
            )
        return event

    transport = MemoryTransport()
    client = VDTClient(transport=transport, before_send=hook, handle_sigterm=False)
    client.log_model_call("m", prediction_score=0.5, feature_importance={"a": 1.0})
    assert isinstance(seen[0], ModelCall) and seen[0].prediction_score == 0.5
    event = decode(transport.records[0].value)
    assert isinstance(event, ModelCall)
    assert event.prediction_score == 1.0 and event.feature_importance is None


def test_before_send_edit_that_breaks_a_typed_field_is_dropped() -> None:
    transport = MemoryTransport()
    client = VDTClient(
        transport=transport,
        before_send=lambda e: e.model_copy(update={"prediction_score": math.nan}),
        handle_sigterm=False,
    )
    client.log_model_call("m", prediction_score=0.5)
    assert transport.records == []
    assert client.stats().failed == 1


def test_encoder_and_reference_agree_on_a_full_event() -> None:
    event = build_event(
        ModelCall,
        {
            "model_name": "m",
            "prediction_label": "",
            "prediction_score": -0.0,
            "class_probabilities": {"a": 0.0, "b": 1.0},
            "embedding": [0.0, -0.0, 1e-40],
            "embedding_dtype": "float32",
            "feature_importance": {"x": -1e300},
        },
    )
    value = Encoder().encode(event).value
    assert_same_event_bytes(value, reference_value(event))
    assert decode(value) == event


def test_typed_fields_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Plain typed values are written by the fast path (the differential test
    # holds its bytes to the reference path's); a value it does not take as
    # it is (a numpy scalar, an int to convert in a big map, a label to mask)
    # falls back to the reference path.
    from vdt_ai import _pipeline

    taken: List[Dict[str, Any]] = []
    original = _pipeline.Pipeline._model_call_reference

    def spy(self: Any, arguments: Dict[str, Any]) -> Any:
        taken.append(arguments)
        return original(self, arguments)

    monkeypatch.setattr(_pipeline.Pipeline, "_model_call_reference", spy)
    client, transport = _client()
    fast: List[Any] = [
        ("prediction_label", "x"),
        ("prediction_score", 0.5),
        ("prediction_score", 3),
        ("class_probabilities", {"a": 1.0, "b": 0}),
        ("embedding", [1.0, -2.5]),
        ("embedding", np.array([0.25, 1e30], dtype=np.float64)),
        ("embedding", np.array([0.5], dtype=np.float32)),
        ("feature_importance", {"a": -1.0}),
    ]
    for name, value in fast:
        client.log_model_call("m", {"a": 1}, **{name: value})
    assert taken == []
    slow: List[Any] = [
        ("prediction_label", "vdt_abc"),
        ("prediction_score", np.float64(0.5)),
        ("class_probabilities", {"a": 2**60}),
        ("embedding", [1.0, 2]),
        ("embedding", np.array([1e39])),
        ("embedding", np.array([[1.0]])),
        ("feature_importance", {"vdt_a": 1.0}),
    ]
    for name, value in slow:
        try:
            client.log_model_call("m", {"a": 1}, **{name: value})
        except ValidationError:
            pass
        assert taken[-1][name] is value
    assert len(taken) == len(slow)
    sent: List[Any] = [decode(record.value) for record in transport.records]
    assert sent[3].class_probabilities == {"a": 1.0, "b": 0.0}
    assert sent[5].embedding == (0.25, np.float32(1e30).item())
    assert sent[5].embedding_dtype is EmbeddingDType.FLOAT32
