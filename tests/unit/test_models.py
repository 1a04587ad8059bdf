"""Event models: what is accepted, what is converted, what is refused and why."""

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, Dict

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from vdt_ai import (
    CallStatus,
    DataQuality,
    GroundTruth,
    JobRun,
    JobStatus,
    Metric,
    ModelCall,
    ValidationError,
    VDTError,
)
from vdt_ai.models import (
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAGS,
    TRUNCATION_MARK,
    build_event,
)

UTC = dt.timezone.utc


def call(**fields: Any) -> ModelCall:
    fields.setdefault("model_name", "m")
    return build_event(ModelCall, fields)


def reasons(exc: ValidationError) -> Dict[str, str]:
    return dict(exc.errors)


def test_envelope_defaults_are_filled() -> None:
    event = call()
    assert event.event_id.version == 7
    assert event.timestamp.tzinfo is UTC
    assert abs(event.timestamp - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)
    assert event.source.sdk_name == "vdt-ai"
    assert event.tags == {}
    assert event.status is CallStatus.SUCCESS


def test_event_ids_are_time_ordered_and_unique() -> None:
    ids = [call().event_id for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_aware_timestamps_are_converted_to_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    event = call(timestamp=dt.datetime(2024, 5, 1, 12, 0, tzinfo=plus_two))
    assert event.timestamp == dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert event.timestamp.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "field,value",
    [
        ("timestamp", dt.datetime(2024, 1, 1)),
        ("timestamp", pd.Timestamp("2024-01-01")),
    ],
)
def test_naive_timestamps_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        call(**{field: value})
    assert "timezone-aware" in reasons(info.value)[field]


def test_naive_job_times_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        build_event(
            JobRun,
            {
                "job_name": "j",
                "status": "started",
                "start_time": dt.datetime(2024, 1, 1),
            },
        )
    assert "start_time" in reasons(info.value)


@pytest.mark.parametrize(
    "fields,field,reason",
    [
        ({"model_name": ""}, "model_name", "at least 1 character"),
        ({"model_name": "   "}, "model_name", "blank"),
        ({"model_name": "x" * (MAX_NAME_LENGTH + 1)}, "model_name", "at most 256"),
        ({"model_name": 42}, "model_name", "valid string"),
        ({"latency_ms": -1}, "latency_ms", "greater than or equal to 0"),
        ({"latency_ms": float("nan")}, "latency_ms", "finite"),
        ({"latency_ms": float("inf")}, "latency_ms", "finite"),
        ({"latency_ms": "45"}, "latency_ms", "not str"),
        ({"latency_ms": True}, "latency_ms", "not bool"),
        ({"cost": -0.5}, "cost", "greater than or equal to 0"),
        ({"prompt_tokens": -1}, "prompt_tokens", "greater than or equal to 0"),
        ({"prompt_tokens": 1.5}, "prompt_tokens", "integer"),
        ({"status": "maybe"}, "status", "'success' or 'error'"),
        ({"input_data": {"a": object()}}, "input_data", "not JSON-like"),
        ({"input_data": {"a": [1, float("nan")]}}, "input_data", "['a'][1]"),
        ({"prediction": {(1, 2): "x"}}, "prediction", "key tuple"),
        ({"tags": {"k": 1}}, "tags.k", "valid string"),
        ({"tags": {"": "v"}}, "tags.[key]", "at least 1 character"),
        ({"tags": {"k": "v" * 300}}, "tags.k", "at most 256"),
        ({"unknown": 1}, "unknown", "unknown field"),
        ({"trace_id": ""}, "trace_id", "at least 1 character"),
    ],
)
def test_bad_model_call_input_names_field_and_reason(
    fields: Dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as info:
        call(**fields)
    problems = reasons(info.value)
    assert field in problems, problems
    assert reason in problems[field]
    assert isinstance(info.value, VDTError) and isinstance(info.value, ValueError)
    assert info.value.event_type == "model_call"
    assert field in str(info.value)


def test_too_many_tags_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        call(tags={f"k{i}": "v" for i in range(MAX_TAGS + 1)})
    assert "tags" in reasons(info.value)


def test_errors_do_not_echo_input_values() -> None:
    with pytest.raises(ValidationError) as info:
        call(model_name="x" * 300 + "PRIVATE-VALUE")
    assert "PRIVATE-VALUE" not in str(info.value)


def test_status_follows_error_fields_unless_given() -> None:
    assert call(error_type="KeyError").status is CallStatus.ERROR
    assert call(error_message="boom").status is CallStatus.ERROR
    assert call(error_type="KeyError", status="success").status is CallStatus.SUCCESS
    assert call(status=None).status is CallStatus.SUCCESS


def test_long_error_messages_are_truncated_and_marked() -> None:
    event = call(error_message="e" * (MAX_ERROR_MESSAGE_LENGTH * 2))
    assert event.error_message is not None
    assert len(event.error_message) == MAX_ERROR_MESSAGE_LENGTH
    assert event.error_message.endswith(TRUNCATION_MARK)
    short = call(error_message="short")
    assert short.error_message == "short"


class Color(enum.Enum):
    RED = "red"


class Point(BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    w: int


def test_free_form_values_become_plain_json() -> None:
    ts = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    event = call(
        input_data={
            "np_int": np.int64(7),
            "np_float": np.float32(0.5),
            "np_bool": np.bool_(True),
            "array": np.array([[1, 2], [3, 4]]),
            "pd_ts": pd.Timestamp("2024-01-02T03:04:05Z"),
            "nat": pd.NaT,
            "dt": ts,
            "date": dt.date(2024, 1, 2),
            "time": dt.time(3, 4),
            "decimal": Decimal("12.30"),
            "uuid": ident,
            "bytes": b"\x00\xff",
            "enum": Color.RED,
            "tuple": (1, "a"),
            "set": {3, 1, 2},
            "model": Point(x=1, y=2),
            "dataclass": Box(w=3),
            5: "int key",
            "nested": {"deep": [{"x": None}]},
        }
    )
    data = event.input_data
    assert data["np_int"] == 7 and type(data["np_int"]) is int
    assert data["np_float"] == 0.5 and type(data["np_float"]) is float
    assert data["np_bool"] is True
    assert data["array"] == [[1, 2], [3, 4]]
    assert data["pd_ts"] == "2024-01-02T03:04:05+00:00"
    assert data["nat"] is None
    assert data["dt"] == "2024-01-02T03:04:05+00:00"
    assert data["date"] == "2024-01-02"
    assert data["time"] == "03:04:00"
    assert data["decimal"] == "12.30"
    assert data["uuid"] == str(ident)
    assert data["bytes"] == "AP8="
    assert data["enum"] == "red"
    assert data["tuple"] == [1, "a"]
    assert data["set"] == [1, 2, 3]
    assert data["model"] == {"x": 1, "y": 2}
    assert data["dataclass"] == {"w": 3}
    assert data["5"] == "int key"
    assert data["nested"] == {"deep": [{"x": None}]}


@pytest.mark.parametrize(
    "value,reason",
    [
        (Decimal("NaN"), "not a finite number"),
        (np.float64("inf"), "not a finite number"),
        (np.array([1.0, np.nan]), "not a finite number"),
        (pd.DataFrame({"a": [1]}), "not JSON-like"),
        (object(), "not JSON-like"),
        (lambda: 1, "not JSON-like"),
    ],
)
def test_non_json_values_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        call(prediction=value)
    assert reason in reasons(info.value)["prediction"]


def test_deep_nesting_is_refused() -> None:
    value: Any = 1
    for _ in range(100):
        value = [value]
    with pytest.raises(ValidationError) as info:
        call(prediction=value)
    assert "nested deeper" in reasons(info.value)["prediction"]


def test_unsortable_sets_keep_their_items() -> None:
    event = call(prediction={1, "a"})
    assert sorted(map(str, event.prediction)) == ["1", "a"]


def test_data_quality_counts_must_fit() -> None:
    ok = build_event(
        DataQuality, {"dataset_name": "d", "record_count": 10, "null_count": 10}
    )
    assert ok.null_count == 10
    with pytest.raises(ValidationError) as info:
        build_event(
            DataQuality, {"dataset_name": "d", "record_count": 10, "null_count": 11}
        )
    assert "must not exceed record_count" in reasons(info.value)["null_count"]
    with pytest.raises(ValidationError) as info:
        build_event(
            DataQuality,
            {
                "dataset_name": "d",
                "record_count": 1,
                "columns": [{"name": "c", "null_count": 2}],
            },
        )
    assert "column 'c'" in str(info.value)
    assert "columns.0.null_count" in reasons(info.value)


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"record_count": -1}, "record_count"),
        ({"record_count": 1, "null_count": -1}, "null_count"),
        ({"record_count": 1, "anomaly_score": 1.5}, "anomaly_score"),
        ({"record_count": 1, "anomaly_score": -0.1}, "anomaly_score"),
        ({"record_count": 1, "anomaly_score": float("nan")}, "anomaly_score"),
        ({"record_count": "10"}, "record_count"),
        ({"record_count": 1, "columns": [{"name": ""}]}, "columns.0.name"),
        (
            {"record_count": 1, "columns": [{"name": "c", "stddev": -1}]},
            "columns.0.stddev",
        ),
        (
            {"record_count": 1, "columns": [{"name": "c", "mean": float("inf")}]},
            "columns.0.mean",
        ),
    ],
)
def test_bad_data_quality_input(fields: Dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build_event(DataQuality, {"dataset_name": "d", **fields})
    assert field in reasons(info.value)


def test_data_quality_accepts_numpy_counts() -> None:
    event = build_event(
        DataQuality,
        {"dataset_name": "d", "record_count": np.int64(5), "null_count": np.int32(1)},
    )
    assert event.record_count == 5 and type(event.record_count) is int


def test_metric_value_must_be_finite_number() -> None:
    assert build_event(Metric, {"name": "loss", "value": np.float64(0.5)}).value == 0.5
    for bad in (float("nan"), float("-inf"), "1.0", None):
        with pytest.raises(ValidationError) as info:
            build_event(Metric, {"name": "loss", "value": bad})
        assert "value" in reasons(info.value)
    with pytest.raises(ValidationError):
        build_event(Metric, {"name": "loss", "value": 1.0, "step": -1})


def test_ground_truth_needs_request_id() -> None:
    event = build_event(GroundTruth, {"request_id": "r1", "actual": {"label": 1}})
    assert event.actual == {"label": 1}
    with pytest.raises(ValidationError) as info:
        build_event(GroundTruth, {"actual": 1})
    assert "request_id" in reasons(info.value)


def test_job_run_duration_and_order() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    event = build_event(
        JobRun,
        {
            "job_name": "etl",
            "status": "succeeded",
            "start_time": start,
            "end_time": start + dt.timedelta(seconds=90),
        },
    )
    assert event.duration_ms == 90_000
    assert event.status is JobStatus.SUCCEEDED
    assert event.run_id  # generated
    given = build_event(
        JobRun,
        {
            "job_name": "etl",
            "status": "succeeded",
            "start_time": start,
            "end_time": start,
            "duration_ms": 5,
        },
    )
    assert given.duration_ms == 5
    with pytest.raises(ValidationError) as info:
        build_event(
            JobRun,
            {
                "job_name": "etl",
                "status": "failed",
                "start_time": start,
                "end_time": start - dt.timedelta(seconds=1),
            },
        )
    assert "must not be before start_time" in reasons(info.value)["end_time"]
    with pytest.raises(ValidationError) as info:
        build_event(JobRun, {"job_name": "etl", "status": "done"})
    assert "status" in reasons(info.value)


def test_models_are_immutable() -> None:
    event = call()
    with pytest.raises(Exception):
        event.model_name = "other"  # type: ignore[misc]
    assert event.model_copy(update={"model_name": "other"}).model_name == "other"


def test_build_event_reports_bad_keywords() -> None:
    with pytest.raises(ValidationError) as info:
        build_event(Metric, {"name": "x", "value": 1, "bogus": 2})
    assert reasons(info.value)["bogus"] == "unknown field"
