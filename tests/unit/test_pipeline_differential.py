"""The fast path against the reference path, on the same inputs.

Each example makes two clients alike but for ``Pipeline.fast``, gives both the
same clock (ids and timestamps from one deterministic sequence), makes the
same call on each, and compares what came out: the records byte for byte
(parsed, where only the order of tag entries differs), the reference
encoder's bytes (the official protobuf encoder) for each sent event, the
returned ids, the counts, and the errors (type, field paths and reasons).
"""

import collections
import datetime as dt
import itertools
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdt_ai import CallStatus, JobStatus, VDTClient
from vdt_ai.codec import decode
from vdt_ai.codec._reference import reference_value
from vdt_ai.testing import MemoryTransport

from .._examples import examples
from .test_codec_wire import assert_same_event_bytes

UTC = dt.timezone.utc
# 2024-05-01, then one step per event: ids and timestamps alike on both sides.
_START_NS = 1_714_521_600_123_456_789


def _clock() -> Callable[[], Tuple[int, int]]:
    ticks = itertools.count()

    def next_stamp() -> Tuple[int, int]:
        n = next(ticks)
        now_ns = _START_NS + n * 1_234_567
        value = (now_ns // 1_000_000) << 80 | 0x7 << 76 | n << 64 | 0x2 << 62
        return value | (n * 0x9E3779B97F4A7C15 & ((1 << 62) - 1)), now_ns

    return next_stamp


def _reserve_from(clock: Callable[[], Tuple[int, int]]) -> Any:
    def reserve(count: int) -> Tuple[List[int], int]:
        stamps = [clock() for _ in range(count)]
        return [v for v, _ in stamps], stamps[0][1] if stamps else _START_NS

    return reserve


Outcome = Tuple[str, Any, List[Tuple[str, bytes, bytes, Any]], Dict[str, int]]


def _run(
    fast: bool,
    call: Callable[[VDTClient], Any],
    **settings_: Any,
) -> Outcome:
    from vdt_ai import _pipeline

    clock = _clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pipeline, "next_stamp", clock)
        patch.setattr(_pipeline, "reserve", _reserve_from(clock))
        if fast:
            reference = _pipeline.Pipeline._model_call_reference

            def counted(self: Any, arguments: Dict[str, Any], *drawn: Any) -> Any:
                _examples["fell back"] += 1
                return reference(self, arguments, *drawn)

            patch.setattr(_pipeline.Pipeline, "_model_call_reference", counted)
            emit = _pipeline.Pipeline.emit

            def counted_emit(self: Any, cls: Any, *rest: Any) -> Any:
                _examples[f"{cls.event_type.value} fell back"] += 1
                return emit(self, cls, *rest)

            patch.setattr(_pipeline.Pipeline, "emit", counted_emit)
        transport = MemoryTransport()
        client = VDTClient(transport=transport, handle_sigterm=False, **settings_)
        client._pipeline.fast = fast and client._pipeline.fast
        try:
            result: Any = ("ok", call(client))
        except Exception as exc:
            errors = getattr(exc, "errors", None)
            result = ("error", (type(exc).__name__, errors, str(exc)))
        client.close()
    records = [(r.topic, r.key, r.value, r.headers) for r in transport.records]
    return result[0], result[1], records, client.stats().as_dict()


def _compare(fast: Outcome, reference: Outcome) -> None:
    assert fast[0] == reference[0]
    assert fast[1] == reference[1]
    assert fast[3] == reference[3]
    assert len(fast[2]) == len(reference[2])
    for ours, theirs in zip(fast[2], reference[2]):
        assert ours[0] == theirs[0] and ours[1] == theirs[1]
        assert ours[3] == theirs[3]
        assert_same_event_bytes(ours[2], theirs[2])
        # And what was sent is what the official encoder writes for it.
        assert_same_event_bytes(ours[2], reference_value(decode(ours[2])))


def _mostly(valid: Any, wild: Any) -> Any:
    """Valid values nine times in ten: many calls can take the fast path."""
    # (one_of(valid, valid, ...) would not weigh: equal branches are merged)
    return st.sampled_from((True,) * 9 + (False,)).flatmap(
        lambda pick: valid if pick else wild
    )


_plain_text = st.text(max_size=6)
_text = _mostly(_plain_text, st.sampled_from(["  ", "vdt_x", "\ud800", "a" * 300, ""]))
_names = _mostly(
    st.text(min_size=1, max_size=6) | st.sampled_from(["rec", "model"]),
    _text | st.none() | st.integers(),
)
_keys = _mostly(_plain_text, st.sampled_from(["password", "apiKey", "vdt_k", "\udc00"]))
_json = st.recursive(
    st.none()
    | st.booleans()
    | _mostly(
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.integers(min_value=2**64, max_value=2**65),
    )
    | _mostly(st.floats(allow_nan=False, allow_infinity=False), st.floats())
    | _text,
    lambda inner: _mostly(
        st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
        st.tuples(inner) | st.dictionaries(st.integers(0, 3), inner, max_size=2),
    ),
    max_leaves=6,
)
_numbers = _mostly(
    st.floats(min_value=0, allow_nan=False, allow_infinity=False)
    | st.integers(min_value=0, max_value=2**53),
    st.floats()
    | st.integers(min_value=-5, max_value=2**64)
    | st.booleans()
    | st.just("45"),
)
_tokens = _mostly(st.none() | st.integers(0, 2**63 - 1), _numbers)
# The typed ML fields: plain values take the fast path (_typed_fast), others
# (conversions, text to mask, invalid values) the reference path.
_scores = _mostly(
    st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53), 2**53),
    st.floats()
    | st.booleans()
    | st.just("0.5")
    | st.integers(2**53, 2**70)
    | st.just(np.float64(0.25)),
)
_map_keys = _mostly(
    st.text(min_size=1, max_size=6),
    st.sampled_from(["", " ", "vdt_k", "\udc00", "k" * 1025]) | st.integers(),
)
_map_numbers = _mostly(
    st.floats(0, 1) | st.integers(0, 1),
    st.floats() | st.just("x") | st.booleans() | st.just(np.float32(0.5)),
)
_number_map = _mostly(
    st.none() | st.dictionaries(_map_keys, _map_numbers, max_size=3),
    st.just({}) | st.just([("a", 1.0)]) | st.just(collections.OrderedDict(a=1.0)),
)
_vector_items = _mostly(
    st.floats(-1e4, 1e4),
    st.floats() | st.integers(-3, 3) | st.booleans() | st.just(1e39) | st.just(7e4),
)


def _numpy_vectors(width: Literal[16, 32, 64], dtype: str) -> Any:
    values = st.floats(width=width, allow_nan=False, allow_infinity=False)
    return st.lists(values, min_size=1, max_size=4).map(
        lambda items: np.array(items, dtype=dtype)
    )


_vectors = _mostly(
    st.none()
    | st.lists(_vector_items, min_size=1, max_size=4)
    | st.lists(_vector_items, min_size=1, max_size=4).map(tuple)
    | _numpy_vectors(16, "float16")
    | _numpy_vectors(32, "float32")
    | _numpy_vectors(64, "float64"),
    st.lists(st.floats(), max_size=3)
    | st.just([[1.0]])
    | st.just("abc")
    | st.just(np.array([[1.0, 2.0]]))
    | st.just(np.array(1.5))
    | st.just(np.array([1.0, np.nan]))
    | st.just(np.array([3.5e38, 1.0]))
    | st.just(np.array([1, 2], dtype=np.int64))
    | st.just(np.zeros(0)),
)
TYPED = {
    "prediction_label": _mostly(
        st.none() | _plain_text, _text | st.integers() | st.just("l" * 1025)
    ),
    "prediction_score": _scores,
    "class_probabilities": _number_map,
    "embedding": _vectors,
    "embedding_name": _mostly(st.none() | st.just("text"), _names),
    "feature_importance": _number_map,
}
_model_call = st.fixed_dictionaries(
    {"model_name": _names},
    optional={
        "input_data": _json,
        "prediction": _json,
        "latency_ms": _numbers,
        "model_version": _names,
        "status": _mostly(
            st.sampled_from([None, "success", "error", CallStatus.ERROR]),
            st.sampled_from(["bad", 1]),
        ),
        "error_type": _names,
        "error_message": _mostly(st.none() | _plain_text, _text | st.just("x" * 17000)),
        "request_id": _names,
        "prompt_tokens": _tokens,
        "completion_tokens": _tokens,
        "cost": _numbers,
        "tags": _mostly(
            st.none() | st.dictionaries(_keys, _plain_text, max_size=3),
            st.dictionaries(_keys, _text | st.integers(), max_size=3)
            | st.just([("a", "b")]),
        ),
        "timestamp": _mostly(
            st.none(), st.datetimes(timezones=st.none() | st.just(UTC))
        ),
        "trace_id": _names,
        "span_id": _names,
        **TYPED,
    },
)
_client_settings = st.sampled_from(
    [
        {},
        {"embedding_dtype": "float16"},
        {"tags": {"team": "search"}},
        {"tags": {"token": "t"}},
        {"sample_rate": 0.5},
        {"max_event_bytes": 1024},
    ]
)
_examples: Dict[str, int] = collections.Counter()
_examples.update(
    dict.fromkeys(
        [
            "single",
            "simple",
            "bulk",
            "fell back",
            "metric",
            "metrics",
            "ground_truth",
            "data_quality",
            "job_run",
            "typed",
            "typed fell back",
        ],
        0,
    )
)


@settings(max_examples=examples(1500), deadline=None)
@given(arguments=_model_call, client_settings=_client_settings)
def test_log_model_call_fast_equals_reference(
    arguments: Dict[str, Any],
    client_settings: Dict[str, Any],
) -> None:
    _examples["single"] += 1
    typed = any(arguments.get(name) is not None for name in TYPED)
    fell_back = _examples["fell back"]

    def call(client: VDTClient) -> Optional[Any]:
        return client.log_model_call(**arguments)

    _compare(
        _run(True, call, **client_settings),
        _run(False, call, **client_settings),
    )
    if typed:
        _examples["typed"] += 1
        _examples["typed fell back"] += _examples["fell back"] - fell_back


# The common call: no more than name, input, prediction and latency
# (simple_model_call's shape), and the typed fields.
_simple_call = st.fixed_dictionaries(
    {"model_name": _names},
    optional={
        "input_data": _json,
        "prediction": _json,
        "latency_ms": _numbers,
        # What OpenTelemetry's current span adds to the common call.
        "trace_id": _mostly(st.none(), _names),
        "span_id": _mostly(st.none(), _names),
        # simple_model_call also takes the typed ML fields.
        **TYPED,
    },
)


@settings(max_examples=examples(700), deadline=None)
@given(arguments=_simple_call, client_settings=_client_settings)
def test_simple_log_model_call_fast_equals_reference(
    arguments: Dict[str, Any],
    client_settings: Dict[str, Any],
) -> None:
    _examples["simple"] += 1

    def call(client: VDTClient) -> Optional[Any]:
        return client.log_model_call(**arguments)

    _compare(
        _run(True, call, **client_settings),
        _run(False, call, **client_settings),
    )


# A bulk row holding only the per-call values, the shape the bulk row writer
# takes when the shared arguments carry the rest.
_row_only = st.fixed_dictionaries(
    {},
    optional={"input_data": _json, "prediction": _json, "latency_ms": _numbers},
) | st.fixed_dictionaries(
    {},
    optional={
        "input_data": _json,
        "latency_ms": _numbers,
        **TYPED,  # the row writer takes a row's own typed fields too
    },
)
_common = st.fixed_dictionaries(
    {},
    optional={
        "model_name": _names,
        "tags": st.just({"k": "v"}) | st.just({"password": "p"}),
        "model_version": _names,
        "status": st.sampled_from([None, "success", "error", "bad"]),
        "error_type": _names,
        "error_message": st.sampled_from(["", "boom", "vdt_x"]),
        "request_id": _names,
        "prompt_tokens": _tokens,
        "cost": _numbers,
        "trace_id": _names,
        "timestamp": st.just(dt.datetime(2026, 1, 2, tzinfo=UTC)),
        "latency_ms": _numbers,
        "prediction_label": st.just("cat"),
        "embedding": st.just([0.1, 0.2]),
        "feature_importance": st.just({"x": 1.0}),
    },
)


@settings(max_examples=examples(700), deadline=None)
@given(
    rows=st.lists(_mostly(_row_only, _model_call), max_size=4),
    common=_mostly(st.fixed_dictionaries({"model_name": st.just("rec")}), _common),
    client_settings=_client_settings,
)
def test_log_model_calls_fast_equals_reference(
    rows: List[Dict[str, Any]],
    common: Dict[str, Any],
    client_settings: Dict[str, Any],
) -> None:
    _examples["bulk"] += 1

    def call(client: VDTClient) -> Any:
        return client.log_model_calls(rows, **common)

    _compare(
        _run(True, call, **client_settings),
        _run(False, call, **client_settings),
    )


_metric_values = _mostly(
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
    st.floats() | st.integers() | st.booleans() | st.just("1.5") | st.none(),
)
_metric_args = st.fixed_dictionaries(
    {"name": _names, "value": _metric_values},
    optional={
        "step": _tokens,
        "run_id": _names,
        "tags": _mostly(
            st.none() | st.dictionaries(_keys, _plain_text, max_size=2),
            st.dictionaries(_keys, _text | st.integers(), max_size=2),
        ),
        "timestamp": _mostly(st.none(), st.just(dt.datetime(2026, 1, 2, tzinfo=UTC))),
    },
)


@settings(max_examples=examples(400), deadline=None)
@given(arguments=_metric_args, client_settings=_client_settings)
def test_log_metric_fast_equals_reference(
    arguments: Dict[str, Any], client_settings: Dict[str, Any]
) -> None:
    _examples["metric"] += 1
    arguments = dict(arguments)
    name, value = arguments.pop("name"), arguments.pop("value")

    def call(client: VDTClient) -> Any:
        return client.log_metric(name, value, **arguments)

    _compare(_run(True, call, **client_settings), _run(False, call, **client_settings))


@settings(max_examples=examples(300), deadline=None)
@given(
    metrics=_mostly(
        st.dictionaries(st.sampled_from(["loss", "acc", "lr"]), _metric_values),
        st.dictionaries(_names, _metric_values, max_size=3),
    ),
    step=_tokens,
    run_id=_names,
    client_settings=_client_settings,
)
def test_log_metrics_fast_equals_reference(
    metrics: Dict[Any, Any], step: Any, run_id: Any, client_settings: Dict[str, Any]
) -> None:
    _examples["metrics"] += 1

    def call(client: VDTClient) -> Any:
        return client.log_metrics(metrics, step=step, run_id=run_id)

    _compare(_run(True, call, **client_settings), _run(False, call, **client_settings))


@settings(max_examples=examples(400), deadline=None)
@given(
    request_id=_names,
    actual=_json,
    model_name=st.none() | _names,
    tags=st.none() | st.dictionaries(_keys, _plain_text, max_size=2),
    typed=st.fixed_dictionaries(
        {},
        optional={
            "actual_label": TYPED["prediction_label"],
            "actual_score": _scores,
        },
    ),
    client_settings=_client_settings,
)
def test_log_ground_truth_fast_equals_reference(
    request_id: Any,
    actual: Any,
    model_name: Any,
    tags: Any,
    typed: Dict[str, Any],
    client_settings: Dict[str, Any],
) -> None:
    _examples["ground_truth"] += 1

    def call(client: VDTClient) -> Any:
        return client.log_ground_truth(
            request_id, actual, model_name=model_name, tags=tags, **typed
        )

    _compare(_run(True, call, **client_settings), _run(False, call, **client_settings))


_counts = _mostly(st.integers(0, 2**63 - 1), _numbers | st.none())
_tags = _mostly(
    st.none() | st.dictionaries(_keys, _plain_text, max_size=2),
    st.dictionaries(_keys, _text | st.integers(), max_size=2),
)
_utc_times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)
)
_times = st.none() | _mostly(
    _utc_times.map(lambda t: t.replace(tzinfo=UTC)),
    _utc_times
    | _utc_times.map(lambda t: t.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))),
)


@settings(max_examples=examples(400), deadline=None)
@given(
    dataset_name=_names,
    record_count=_counts,
    null_count=_counts,
    optional=st.fixed_dictionaries(
        {},
        optional={
            "anomaly_score": _mostly(
                st.none() | st.floats(0, 1),
                st.floats() | st.integers(-1, 2) | st.just("0.5"),
            ),
            "columns": _mostly(st.none() | st.just([]), st.just([{"name": "age"}])),
            "tags": _tags,
            "trace_id": _mostly(st.none(), _names),
            "span_id": _mostly(st.none(), _names),
            "timestamp": _mostly(
                st.none(), st.just(dt.datetime(2026, 1, 2, tzinfo=UTC))
            ),
        },
    ),
    client_settings=_client_settings,
)
def test_log_data_quality_fast_equals_reference(
    dataset_name: Any,
    record_count: Any,
    null_count: Any,
    optional: Dict[str, Any],
    client_settings: Dict[str, Any],
) -> None:
    _examples["data_quality"] += 1

    def call(client: VDTClient) -> Any:
        return client.log_data_quality(
            dataset_name, record_count, null_count=null_count, **optional
        )

    _compare(_run(True, call, **client_settings), _run(False, call, **client_settings))


@settings(max_examples=examples(500), deadline=None)
@given(
    job_name=_names,
    status=_mostly(
        st.sampled_from(["started", "succeeded", "failed"] + list(JobStatus)),
        st.sampled_from(["done", "STARTED", 1, None]),
    ),
    run_id=_mostly(_names, st.none()),
    optional=st.fixed_dictionaries(
        {},
        optional={
            "start_time": _times,
            "end_time": _times,
            "duration_ms": _mostly(st.none() | _numbers, _numbers),
            "error_type": _mostly(st.none(), _names),
            "error_message": _mostly(
                st.none() | _plain_text,
                _text | st.just("x" * 16_400) | st.just("key vdt_abc_def"),
            ),
            "metrics": _mostly(st.none(), _json),
            "tags": _tags,
            "timestamp": _mostly(
                st.none(), st.just(dt.datetime(2026, 1, 2, tzinfo=UTC))
            ),
        },
    ),
    client_settings=_client_settings,
)
def test_log_job_run_fast_equals_reference(
    job_name: Any,
    status: Any,
    run_id: Any,
    optional: Dict[str, Any],
    client_settings: Dict[str, Any],
) -> None:
    _examples["job_run"] += 1

    def call(client: VDTClient) -> Any:
        return client.log_job_run(job_name, status, run_id=run_id, **optional)

    if run_id is None:
        # The default run id is a new UUIDv7 on each side (the fast path
        # leaves such a call to the reference path): same outcome and count.
        fast, reference = _run(True, call, **client_settings), _run(
            False, call, **client_settings
        )
        assert fast[0] == reference[0] and fast[3] == reference[3]
        return
    _compare(_run(True, call, **client_settings), _run(False, call, **client_settings))


def test_metric_and_ground_truth_take_the_fast_path() -> None:
    transport = MemoryTransport()
    client = VDTClient(transport=transport, handle_sigterm=False)
    from vdt_ai import _pipeline

    with pytest.MonkeyPatch.context() as patch:
        # The reference path's entry points: any use of them fails.
        patch.setattr(_pipeline.Pipeline, "emit", None)
        patch.setattr(_pipeline.Pipeline, "build", None)
        client.log_metric("loss", 0.25, step=3, run_id="r1")
        client.log_metrics({"loss": 0.5, "acc": 1}, step=4)
        client.log_ground_truth("req-1", {"label": 1}, model_name="rec")
        client.log_data_quality("orders", 1000, null_count=3, anomaly_score=0.25)
        start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        client.log_job_run(
            "nightly",
            "succeeded",
            run_id="run-42",
            start_time=start,
            end_time=start + dt.timedelta(seconds=90),
            metrics={"rows": 10},
        )
    kinds = [type(e).__name__ for e in transport.events]
    assert kinds == [
        "Metric",
        "Metric",
        "Metric",
        "GroundTruth",
        "DataQuality",
        "JobRun",
    ]
    assert [r.key for r in transport.records] == [
        b"r1",
        b"loss",
        b"acc",
        b"rec",
        b"orders",
        b"run-42",
    ]
    assert transport.events[-1].duration_ms == 90_000.0  # type: ignore[attr-defined]


@pytest.fixture(scope="module", autouse=True)
def _report_examples() -> Iterator[None]:
    yield
    print(f"\ndifferential examples: {_examples}")
    # Where a test ran in full, both paths were compared, not the reference
    # with itself: some calls took the fast path, some fell back.
    if _examples["single"] >= 100:
        assert 0.05 < _examples["fell back"] / _examples["single"] < 0.95
    if _examples["typed"] >= 100:
        assert 0.05 < _examples["typed fell back"] / _examples["typed"] < 0.95
    for kind in ("data_quality", "job_run"):
        if _examples[kind] >= 100:
            assert 0.05 < _examples[f"{kind} fell back"] / _examples[kind] < 0.95


def test_the_fast_path_is_taken_for_the_common_call() -> None:
    transport = MemoryTransport()
    client = VDTClient(transport=transport, handle_sigterm=False)
    assert client._pipeline.fast
    from vdt_ai import _pipeline

    original = _pipeline.Pipeline._model_call_reference
    taken: List[Any] = []

    def spy(self: Any, arguments: Dict[str, Any]) -> Any:
        taken.append(arguments)
        return original(self, arguments)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pipeline.Pipeline, "_model_call_reference", spy)
        client.log_model_call("rec", {"user_id": 1}, {"items": [1]}, 45)
        assert taken == []
        client.log_model_call("rec", {"password": "x"})
        assert len(taken) == 1
    assert transport.events[1].input_data == {"password": "****"}  # type: ignore


def test_bulk_rows_of_per_call_values_take_the_row_writer() -> None:
    transport = MemoryTransport()
    client = VDTClient(transport=transport, handle_sigterm=False)
    from vdt_ai import _pipeline

    general: List[Any] = []
    original = _pipeline.Pipeline._envelope_and_payload

    def spy(self: Any, arguments: Any, error_is_truthy: bool) -> Any:
        general.append(arguments)
        return original(self, arguments, error_is_truthy)

    rows = [
        {"input_data": {"i": i}, "prediction": [i], "latency_ms": i} for i in range(5)
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pipeline.Pipeline, "_envelope_and_payload", spy)
        ids = client.log_model_calls(rows + [{"request_id": "r"}], model_name="rec")
    # Only the last row, with a field of its own beyond the three, went the
    # general way; the shared arguments were checked once, not per row.
    assert general == [{"model_name": "rec", "request_id": "r"}]
    assert [e.event_id for e in transport.events] == ids
    inputs = [getattr(e, "input_data") for e in transport.events[:5]]
    assert inputs == [{"i": i} for i in range(5)]


class _Text(str):
    """A str subclass: equal to a str, and hashed alike."""


@pytest.mark.parametrize(
    "second",
    [
        {"team": "search"},
        {"team": _Text("search")},
        {_Text("team"): "search"},
        {"team": "search", "x": "y"},
        {"team": ["search"]},
    ],
)
def test_remembered_tag_bytes_equal_the_reference(second: Dict[Any, Any]) -> None:
    # The second call's tags equal the first's (or nearly): the bytes the fast
    # path remembered must not serve tags that the reference path treats
    # otherwise.
    def call(client: VDTClient) -> Any:
        first = client.log_model_call("rec", {"a": 1}, tags={"team": "search"})
        return first, client.log_model_call("rec", {"a": 2}, tags=second)

    for settings_ in ({}, {"tags": {"env": "prod"}}):
        _compare(_run(True, call, **settings_), _run(False, call, **settings_))


@pytest.mark.parametrize(
    "common",
    [
        {"model_name": "rec"},
        {"model_name": "rec", "prediction_label": "cat"},
        {"model_name": "rec", "embedding": [0.5], "embedding_name": "e"},
    ],
)
def test_bulk_rows_with_typed_fields_of_their_own(common: Dict[str, Any]) -> None:
    # A row's own typed fields replace the shared ones (the reference path's
    # rule): the row writer takes such rows only when nothing is shared.
    rows: List[Dict[str, Any]] = [
        {"input_data": {"i": 1}, "prediction_label": "dog", "prediction_score": 1},
        {"input_data": {"i": 2}, "embedding": [1.0, 2.0]},
        {"input_data": {"i": 3}, "embedding_name": "only"},
        {"input_data": {"i": 4}},
    ]

    def call(client: VDTClient) -> Any:
        try:
            return client.log_model_calls(rows, **common)
        except Exception as exc:  # the same error on both paths
            return type(exc).__name__, str(exc)

    _compare(_run(True, call), _run(False, call))
    calls = [rows[0], rows[1], rows[3]]
    _compare(
        _run(True, lambda c: c.log_model_calls(calls, **common)),
        _run(False, lambda c: c.log_model_calls(calls, **common)),
    )
