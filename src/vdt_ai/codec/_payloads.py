"""Per-event payloads: writers (model -> wire bytes) and readers (protobuf
message -> model fields).

Writers produce the Event's payload field (``model_call = 10`` and so on) as
the official encoder would: fields in number order, proto3 implicit-presence
fields left out when they hold their zero value, ``optional`` fields written
whenever set. Free-form values are JSON bytes (``pydantic_core.to_json``).
``write_model_call`` also serves the client's fast path, which has the
validated values at hand without a model.

Readers take the generated classes' messages (``decode()`` is not on the hot
path); the generated code is imported by :mod:`vdt_ai.codec` on first decode.
"""

import datetime as dt
import json
from typing import Any, Callable, Dict, Optional, Tuple
from uuid import UUID

from pydantic_core import to_json

from ..models import (
    LEDGER_COUNTS,
    CallStatus,
    ColumnKind,
    ColumnProfile,
    ColumnSketches,
    EmbeddingDType,
    EventType,
    JobStatus,
    Source,
    pack_vector,
    unpack_vector,
)
from . import _wire
from ._schema import ENUMS
from ._wire import I64, LEN, VARINT, double, integer, keys, length_delimited, text

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

CALL_STATUS_NUMBER = {
    CallStatus.SUCCESS: ENUMS["CallStatus"]["CALL_STATUS_SUCCESS"],
    CallStatus.ERROR: ENUMS["CallStatus"]["CALL_STATUS_ERROR"],
}
_CALL_STATUS_OF_NUMBER = {v: k for k, v in CALL_STATUS_NUMBER.items()}
_JOB_STATUS_NUMBER = {
    JobStatus.STARTED: ENUMS["JobStatus"]["JOB_STATUS_STARTED"],
    JobStatus.SUCCEEDED: ENUMS["JobStatus"]["JOB_STATUS_SUCCEEDED"],
    JobStatus.FAILED: ENUMS["JobStatus"]["JOB_STATUS_FAILED"],
}
_JOB_STATUS_OF_NUMBER = {v: k for k, v in _JOB_STATUS_NUMBER.items()}

PAYLOAD_KEYS = {t: _wire.payload_key(t.value) for t in EventType}


def split_time(value: dt.datetime) -> Tuple[int, int]:
    """(seconds, nanos) since the Unix epoch of an aware datetime."""
    delta = value - _EPOCH
    return delta.days * 86_400 + delta.seconds, delta.microseconds * 1000


def time_field(field_key: bytes, value: dt.datetime) -> bytes:
    """A Timestamp message field."""
    return length_delimited(field_key, _wire.timestamp(*split_time(value)))


# -- ModelCall ----------------------------------------------------------------------

_MC = keys(
    "ModelCall",
    {
        "model_name": LEN,
        "model_version": LEN,
        "input_data_json": LEN,
        "prediction_json": LEN,
        "latency_ms": I64,
        "status": VARINT,
        "error_type": LEN,
        "error_message": LEN,
        "request_id": LEN,
        "prompt_tokens": VARINT,
        "completion_tokens": VARINT,
        "cost": I64,
        "prediction_label": LEN,
        "prediction_score": I64,
        "class_probabilities": LEN,
        "embedding": LEN,
        "feature_importance": LEN,
    },
)
_ENTRY = keys("DoubleEntry", {"key": LEN, "value": I64})
_EMB = keys("Embedding", {"vector": LEN, "dtype": VARINT, "name": LEN})
EMBEDDING_DTYPE_NUMBER = {
    EmbeddingDType.FLOAT32: ENUMS["EmbeddingDType"]["EMBEDDING_DTYPE_FLOAT32"],
    EmbeddingDType.FLOAT16: ENUMS["EmbeddingDType"]["EMBEDDING_DTYPE_FLOAT16"],
}
_EMBEDDING_DTYPE_OF_NUMBER = {v: k for k, v in EMBEDDING_DTYPE_NUMBER.items()}
_MC_KEY = PAYLOAD_KEYS[EventType.MODEL_CALL]
_MC_STATUS = {
    status: integer(_MC["status"], number)
    for status, number in CALL_STATUS_NUMBER.items()
}


_MC_NAME = _MC["model_name"]
_MC_VERSION = _MC["model_version"]
_MC_INPUT = _MC["input_data_json"]
_MC_PREDICTION = _MC["prediction_json"]
_MC_LATENCY = _MC["latency_ms"]
_pack_double = _wire.pack_double
_varint = _wire.varint
_SMALL = _wire.SMALL_VARINTS


def _delimited(field_key: bytes, payload: bytes) -> bytes:
    # length_delimited for payloads under 128 bytes (most names and small
    # JSON values) without the varint call.
    size = len(payload)
    if size < 0x80:
        return field_key + _SMALL[size] + payload
    return field_key + _varint(size) + payload


def write_model_call(
    model_name: str,
    model_version: Optional[str],
    input_json: Optional[bytes],
    prediction_json: Optional[bytes],
    latency_ms: Optional[float],
    status: CallStatus,
    error_type: Optional[str],
    error_message: Optional[str],
    request_id: Optional[str],
    prompt_tokens: Optional[int],
    completion_tokens: Optional[int],
    cost: Optional[float],
) -> bytes:
    """The ``model_call`` payload field from validated values."""
    # Written out (no text()/double() calls): this runs once per fast-path
    # call and once per bulk row.
    out = _delimited(_MC_NAME, model_name.encode())
    if model_version is not None:
        out += _delimited(_MC_VERSION, model_version.encode())
    if input_json is not None:
        out += _delimited(_MC_INPUT, input_json)
    if prediction_json is not None:
        out += _delimited(_MC_PREDICTION, prediction_json)
    if latency_ms is not None:
        out += _MC_LATENCY + _pack_double(latency_ms)
    out += _MC_STATUS[status]
    if error_type is not None:
        out += text(_MC["error_type"], error_type)
    if error_message is not None:
        out += text(_MC["error_message"], error_message)
    if request_id is not None:
        out += text(_MC["request_id"], request_id)
    if prompt_tokens is not None:
        out += integer(_MC["prompt_tokens"], prompt_tokens)
    if completion_tokens is not None:
        out += integer(_MC["completion_tokens"], completion_tokens)
    if cost is not None:
        out += double(_MC["cost"], cost)
    return _delimited(_MC_KEY, out)


def model_call_parts(
    model_name: str,
    model_version: Optional[str],
    status: CallStatus,
    error_type: Optional[str],
    error_message: Optional[str],
    request_id: Optional[str],
    prompt_tokens: Optional[int],
    completion_tokens: Optional[int],
    cost: Optional[float],
) -> Tuple[bytes, bytes]:
    """The ``model_call`` body's fields before and after the per-call ones
    (``input_data_json``, ``prediction_json``, ``latency_ms``), for bulk rows
    that share all the others: see :func:`model_call_field`."""
    body = write_model_call(
        model_name,
        model_version,
        None,
        None,
        None,
        status,
        error_type,
        error_message,
        request_id,
        prompt_tokens,
        completion_tokens,
        cost,
    )
    # Past the field's key and its length (a varint: bytes up to the first
    # one under 0x80).
    end = len(_MC_KEY)
    while body[end] & 0x80:
        end += 1
    body = body[end + 1 :]
    head = _delimited(_MC_NAME, model_name.encode())
    if model_version is not None:
        head += _delimited(_MC_VERSION, model_version.encode())
    return head, body[len(head) :]


def model_call_field(
    head: bytes,
    input_json: Optional[bytes],
    prediction_json: Optional[bytes],
    latency_ms: Optional[float],
    tail: bytes,
) -> bytes:
    """The ``model_call`` payload field from :func:`model_call_parts`'s
    ``head`` and ``tail`` and one call's own values; equal to
    :func:`write_model_call`'s bytes."""
    out = head
    if input_json is not None:
        out += _delimited(_MC_INPUT, input_json)
    if prediction_json is not None:
        out += _delimited(_MC_PREDICTION, prediction_json)
    if latency_ms is not None:
        out += _MC_LATENCY + _pack_double(latency_ms)
    return _delimited(_MC_KEY, out + tail)


def double_map(field_key: bytes, values: Dict[str, float]) -> bytes:
    """A ``map<string, double>`` field, one entry per item in dict order."""
    entry_key, entry_value = _ENTRY["key"], _ENTRY["value"]
    out = []
    for name, value in values.items():
        raw = name.encode()
        size = len(raw)
        # An entry is key, length, name, value key, 8 bytes: its own length
        # fits one byte for names up to 116 bytes (nearly all).
        if size <= 116:
            out.append(
                field_key
                + _SMALL[size + 11]
                + entry_key
                + _SMALL[size]
                + raw
                + entry_value
                + _pack_double(value)
            )
        else:
            out.append(
                _delimited(
                    field_key,
                    _delimited(entry_key, raw) + entry_value + _pack_double(value),
                )
            )
    return b"".join(out)


def write_typed_fields(
    prediction_label: Optional[str],
    prediction_score: Optional[float],
    class_probabilities: Optional[Dict[str, float]],
    embedding: Optional[bytes],
    embedding_dtype: Optional[EmbeddingDType],
    embedding_name: Optional[str],
    feature_importance: Optional[Dict[str, float]],
) -> bytes:
    """The ``model_call`` body's typed ML fields (numbers 13 and up), from
    validated values; ``embedding`` already packed (:func:`pack_vector`)."""
    out = b""
    if prediction_label is not None:
        out += text(_MC["prediction_label"], prediction_label)
    if prediction_score is not None:
        out += double(_MC["prediction_score"], prediction_score)
    if class_probabilities:
        out += double_map(_MC["class_probabilities"], class_probabilities)
    if embedding is not None:
        body = _delimited(_EMB["vector"], embedding)
        body += integer(
            _EMB["dtype"],
            EMBEDDING_DTYPE_NUMBER[embedding_dtype or EmbeddingDType.FLOAT32],
        )
        if embedding_name is not None:
            body += text(_EMB["name"], embedding_name)
        out += _delimited(_MC["embedding"], body)
    if feature_importance:
        out += double_map(_MC["feature_importance"], feature_importance)
    return out


def _typed_fields_of(event: Any) -> bytes:
    vector = event.embedding
    dtype = event.embedding_dtype
    return write_typed_fields(
        event.prediction_label,
        event.prediction_score,
        event.class_probabilities,
        None if vector is None else pack_vector(vector, dtype),
        dtype,
        event.embedding_name,
        event.feature_importance,
    )


def _model_call_of(event: Any) -> bytes:
    base = write_model_call(
        event.model_name,
        event.model_version,
        None if event.input_data is None else to_json(event.input_data),
        None if event.prediction is None else to_json(event.prediction),
        event.latency_ms,
        event.status,
        event.error_type,
        event.error_message,
        event.request_id,
        event.prompt_tokens,
        event.completion_tokens,
        event.cost,
    )
    return extend_model_call(base, _typed_fields_of(event))


def extend_model_call(field: bytes, later: bytes) -> bytes:
    """:func:`write_model_call`'s payload field with ``later`` (fields
    numbered after ``cost``, e.g. :func:`write_typed_fields`) appended."""
    if not later:
        return field
    # Past the payload field's key and length: the body, then the later fields.
    end = len(_MC_KEY)
    while field[end] & 0x80:
        end += 1
    return _delimited(_MC_KEY, field[end + 1 :] + later)


# -- DataQuality ----------------------------------------------------------------------

_DQ = keys(
    "DataQuality",
    {
        "dataset_name": LEN,
        "record_count": VARINT,
        "null_count": VARINT,
        "anomaly_score": I64,
        "columns": LEN,
    },
)
_COL = keys(
    "ColumnProfile",
    {
        "name": LEN,
        "dtype": LEN,
        "null_count": VARINT,
        "distinct_count": VARINT,
        "min_json": LEN,
        "max_json": LEN,
        "mean": I64,
        "stddev": I64,
    },
)


def _column(column: Any) -> bytes:
    out = text(_COL["name"], column.name)
    if column.dtype is not None:
        out += text(_COL["dtype"], column.dtype)
    if column.null_count is not None:
        out += integer(_COL["null_count"], column.null_count)
    if column.distinct_count is not None:
        out += integer(_COL["distinct_count"], column.distinct_count)
    if column.min is not None:
        out += length_delimited(_COL["min_json"], to_json(column.min))
    if column.max is not None:
        out += length_delimited(_COL["max_json"], to_json(column.max))
    if column.mean is not None:
        out += double(_COL["mean"], column.mean)
    if column.stddev is not None:
        out += double(_COL["stddev"], column.stddev)
    return length_delimited(_DQ["columns"], out)


def write_data_quality(
    dataset_name: str,
    record_count: int,
    null_count: int,
    anomaly_score: Optional[float],
    columns: bytes = b"",
) -> bytes:
    """The ``data_quality`` payload field from validated values (``columns``:
    the column profiles' fields, already written)."""
    out = text(_DQ["dataset_name"], dataset_name)
    if record_count:
        out += integer(_DQ["record_count"], record_count)
    if null_count:
        out += integer(_DQ["null_count"], null_count)
    if anomaly_score is not None:
        out += double(_DQ["anomaly_score"], anomaly_score)
    return length_delimited(PAYLOAD_KEYS[EventType.DATA_QUALITY], out + columns)


def _data_quality_of(event: Any) -> bytes:
    return write_data_quality(
        event.dataset_name,
        event.record_count,
        event.null_count,
        event.anomaly_score,
        b"".join(_column(column) for column in event.columns),
    )


# -- Metric ---------------------------------------------------------------------------

_MT = keys("Metric", {"name": LEN, "value": I64, "step": VARINT, "run_id": LEN})
_MT_KEY = PAYLOAD_KEYS[EventType.METRIC]
_POSITIVE_ZERO = double(b"", 0.0)


def write_metric(
    name: str, value: float, step: Optional[int], run_id: Optional[str]
) -> bytes:
    """The ``metric`` payload field from validated values."""
    out = text(_MT["name"], name)
    packed = double(_MT["value"], value)
    if packed[-8:] != _POSITIVE_ZERO:  # implicit presence: +0.0 is left out
        out += packed
    if step is not None:
        out += integer(_MT["step"], step)
    if run_id is not None:
        out += text(_MT["run_id"], run_id)
    return length_delimited(_MT_KEY, out)


def _metric_of(event: Any) -> bytes:
    return write_metric(event.name, event.value, event.step, event.run_id)


# -- GroundTruth ----------------------------------------------------------------------

_GT = keys(
    "GroundTruth",
    {
        "request_id": LEN,
        "actual_json": LEN,
        "model_name": LEN,
        "actual_label": LEN,
        "actual_score": I64,
    },
)


def write_ground_truth(
    request_id: str,
    actual_json: Optional[bytes],
    model_name: Optional[str],
    actual_label: Optional[str] = None,
    actual_score: Optional[float] = None,
) -> bytes:
    """The ``ground_truth`` payload field from validated values."""
    out = text(_GT["request_id"], request_id)
    if actual_json is not None:
        out += length_delimited(_GT["actual_json"], actual_json)
    if model_name is not None:
        out += text(_GT["model_name"], model_name)
    if actual_label is not None:
        out += text(_GT["actual_label"], actual_label)
    if actual_score is not None:
        out += double(_GT["actual_score"], actual_score)
    return length_delimited(PAYLOAD_KEYS[EventType.GROUND_TRUTH], out)


def _ground_truth_of(event: Any) -> bytes:
    return write_ground_truth(
        event.request_id,
        None if event.actual is None else to_json(event.actual),
        event.model_name,
        event.actual_label,
        event.actual_score,
    )


# -- JobRun ---------------------------------------------------------------------------

_JR = keys(
    "JobRun",
    {
        "job_name": LEN,
        "run_id": LEN,
        "status": VARINT,
        "start_time": LEN,
        "end_time": LEN,
        "duration_ms": I64,
        "error_type": LEN,
        "error_message": LEN,
        "metrics_json": LEN,
    },
)


def write_job_run(
    job_name: str,
    run_id: str,
    status: JobStatus,
    start_time: Optional[dt.datetime],
    end_time: Optional[dt.datetime],
    duration_ms: Optional[float],
    error_type: Optional[str],
    error_message: Optional[str],
    metrics_json: Optional[bytes],
) -> bytes:
    """The ``job_run`` payload field from validated values."""
    out = text(_JR["job_name"], job_name) + text(_JR["run_id"], run_id)
    out += integer(_JR["status"], _JOB_STATUS_NUMBER[status])
    if start_time is not None:
        out += time_field(_JR["start_time"], start_time)
    if end_time is not None:
        out += time_field(_JR["end_time"], end_time)
    if duration_ms is not None:
        out += double(_JR["duration_ms"], duration_ms)
    if error_type is not None:
        out += text(_JR["error_type"], error_type)
    if error_message is not None:
        out += text(_JR["error_message"], error_message)
    if metrics_json is not None:
        out += length_delimited(_JR["metrics_json"], metrics_json)
    return length_delimited(PAYLOAD_KEYS[EventType.JOB_RUN], out)


def _job_run_of(event: Any) -> bytes:
    return write_job_run(
        event.job_name,
        event.run_id,
        event.status,
        event.start_time,
        event.end_time,
        event.duration_ms,
        event.error_type,
        event.error_message,
        None if event.metrics is None else to_json(event.metrics),
    )


# -- DataProfile ----------------------------------------------------------------------

_DP = keys(
    "DataProfile",
    {
        "dataset_name": LEN,
        "row_count": VARINT,
        "window_start": LEN,
        "window_end": LEN,
        "columns": LEN,
        "kll_k": VARINT,
        "hll_lg_k": VARINT,
        "frequent_lg_max_k": VARINT,
    },
)
_CS = keys(
    "ColumnSketches",
    {
        "name": LEN,
        "kind": VARINT,
        "count": VARINT,
        "null_count": VARINT,
        "min": I64,
        "max": I64,
        "mean": I64,
        "stddev": I64,
        "quantiles": LEN,
        "distinct": LEN,
        "frequent": LEN,
    },
)
COLUMN_KIND_NUMBER = {
    kind: ENUMS["ColumnKind"][f"COLUMN_KIND_{kind.name}"] for kind in ColumnKind
}
_COLUMN_KIND_OF_NUMBER = {v: k for k, v in COLUMN_KIND_NUMBER.items()}


def _column_sketches(name: str, column: Any) -> bytes:
    out = text(_CS["name"], name)
    out += integer(_CS["kind"], COLUMN_KIND_NUMBER[column.kind])
    if column.count:
        out += integer(_CS["count"], column.count)
    if column.null_count:
        out += integer(_CS["null_count"], column.null_count)
    for field in ("min", "max", "mean", "stddev"):
        value = getattr(column, field)
        if value is not None:
            out += double(_CS[field], value)
    for field in ("quantiles", "distinct", "frequent"):
        value = getattr(column, field)
        if value is not None:
            out += length_delimited(_CS[field], value)
    return length_delimited(_DP["columns"], out)


def _data_profile_of(event: Any) -> bytes:
    out = text(_DP["dataset_name"], event.dataset_name)
    if event.row_count:
        out += integer(_DP["row_count"], event.row_count)
    if event.window_start is not None:
        out += time_field(_DP["window_start"], event.window_start)
    if event.window_end is not None:
        out += time_field(_DP["window_end"], event.window_end)
    for name, column in event.columns.items():
        out += _column_sketches(name, column)
    for field in ("kll_k", "hll_lg_k", "frequent_lg_max_k"):
        out += integer(_DP[field], getattr(event, field))
    return length_delimited(PAYLOAD_KEYS[EventType.DATA_PROFILE], out)


# -- SdkReport ------------------------------------------------------------------------

_SR_COUNTS = ("pid", "sequence")
_SR_LATER = LEDGER_COUNTS + ("spool_bytes",)
_SR_MAPS = ("dropped_by_reason", "failed_by_reason")
_SR = keys(
    "SdkReport",
    {
        "instance_id": LEN,
        "window_start": LEN,
        "window_end": LEN,
        "final": VARINT,
        **dict.fromkeys(_SR_COUNTS + _SR_LATER, VARINT),
        **dict.fromkeys(_SR_MAPS, LEN),
    },
)
_INT_ENTRY = keys("Int64Entry", {"key": LEN, "value": VARINT})


def _int_map(field_key: bytes, values: Dict[str, int]) -> bytes:
    # A map<string, int64> field; an entry always holds both key and value,
    # as protobuf writes them.
    entry_key, entry_value = _INT_ENTRY["key"], _INT_ENTRY["value"]
    return b"".join(
        length_delimited(field_key, text(entry_key, name) + integer(entry_value, count))
        for name, count in values.items()
    )


def _sdk_report_of(event: Any) -> bytes:
    out = text(_SR["instance_id"], event.instance_id)
    for field in _SR_COUNTS:
        if getattr(event, field):
            out += integer(_SR[field], getattr(event, field))
    if event.window_start is not None:
        out += time_field(_SR["window_start"], event.window_start)
    if event.window_end is not None:
        out += time_field(_SR["window_end"], event.window_end)
    if event.final:
        out += integer(_SR["final"], 1)
    for field in _SR_LATER:
        if getattr(event, field):
            out += integer(_SR[field], getattr(event, field))
    for field in _SR_MAPS:
        out += _int_map(_SR[field], getattr(event, field))
    return length_delimited(PAYLOAD_KEYS[EventType.SDK_REPORT], out)


WRITERS: Dict[EventType, Callable[[Any], bytes]] = {
    EventType.MODEL_CALL: _model_call_of,
    EventType.DATA_QUALITY: _data_quality_of,
    EventType.METRIC: _metric_of,
    EventType.GROUND_TRUTH: _ground_truth_of,
    EventType.JOB_RUN: _job_run_of,
    EventType.DATA_PROFILE: _data_profile_of,
    EventType.SDK_REPORT: _sdk_report_of,
}

KEY_OF: Dict[EventType, Callable[[Any], str]] = {
    EventType.MODEL_CALL: lambda e: e.model_name,
    EventType.DATA_QUALITY: lambda e: e.dataset_name,
    EventType.METRIC: lambda e: e.run_id or e.name,
    EventType.GROUND_TRUTH: lambda e: e.model_name or e.request_id,
    EventType.JOB_RUN: lambda e: e.run_id,
    EventType.DATA_PROFILE: lambda e: e.dataset_name,
    EventType.SDK_REPORT: lambda e: e.instance_id,
}


# -- readers (decode) -------------------------------------------------------------


def _get_time(source: Any) -> dt.datetime:
    return _EPOCH + dt.timedelta(
        seconds=source.seconds, microseconds=source.nanos // 1000
    )


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _opt_json(message: Any, name: str) -> Any:
    return json.loads(getattr(message, name)) if message.HasField(name) else None


def read_envelope(message: Any) -> Dict[str, Any]:
    """The envelope fields of a parsed ``vdt.ai.v1.Event``."""
    src = message.source
    return {
        "event_id": UUID(bytes=message.event_id),
        "timestamp": _get_time(message.timestamp),
        "source": Source(
            service=src.service,
            environment=src.environment,
            host=src.host,
            sdk_name=src.sdk_name,
            sdk_version=src.sdk_version,
        ),
        "tags": dict(message.tags),
        "trace_id": message.trace_id if message.HasField("trace_id") else None,
        "span_id": message.span_id if message.HasField("span_id") else None,
    }


def _read_model_call(m: Any) -> Dict[str, Any]:
    return {
        "model_name": m.model_name,
        "status": _CALL_STATUS_OF_NUMBER.get(m.status, CallStatus.SUCCESS),
        "model_version": _opt(m, "model_version"),
        "input_data": _opt_json(m, "input_data_json"),
        "prediction": _opt_json(m, "prediction_json"),
        "latency_ms": _opt(m, "latency_ms"),
        "error_type": _opt(m, "error_type"),
        "error_message": _opt(m, "error_message"),
        "request_id": _opt(m, "request_id"),
        "prompt_tokens": _opt(m, "prompt_tokens"),
        "completion_tokens": _opt(m, "completion_tokens"),
        "cost": _opt(m, "cost"),
        "prediction_label": _opt(m, "prediction_label"),
        "prediction_score": _opt(m, "prediction_score"),
        "class_probabilities": dict(m.class_probabilities) or None,
        "feature_importance": dict(m.feature_importance) or None,
        **_read_embedding(m),
    }


def _read_embedding(m: Any) -> Dict[str, Any]:
    if not m.HasField("embedding"):
        return {}
    e = m.embedding
    dtype = _EMBEDDING_DTYPE_OF_NUMBER.get(e.dtype)
    if dtype is None:
        raise ValueError(f"unknown embedding dtype {e.dtype}")
    return {
        "embedding": unpack_vector(e.vector, dtype),
        "embedding_dtype": dtype,
        "embedding_name": _opt(e, "name"),
    }


def _read_data_quality(m: Any) -> Dict[str, Any]:
    return {
        "dataset_name": m.dataset_name,
        "record_count": m.record_count,
        "null_count": m.null_count,
        "anomaly_score": _opt(m, "anomaly_score"),
        "columns": [
            ColumnProfile(
                name=c.name,
                dtype=_opt(c, "dtype"),
                null_count=_opt(c, "null_count"),
                distinct_count=_opt(c, "distinct_count"),
                min=_opt_json(c, "min_json"),
                max=_opt_json(c, "max_json"),
                mean=_opt(c, "mean"),
                stddev=_opt(c, "stddev"),
            )
            for c in m.columns
        ],
    }


def _read_metric(m: Any) -> Dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "step": _opt(m, "step"),
        "run_id": _opt(m, "run_id"),
    }


def _read_ground_truth(m: Any) -> Dict[str, Any]:
    return {
        "request_id": m.request_id,
        "actual": _opt_json(m, "actual_json"),
        "model_name": _opt(m, "model_name"),
        "actual_label": _opt(m, "actual_label"),
        "actual_score": _opt(m, "actual_score"),
    }


def _read_job_run(m: Any) -> Dict[str, Any]:
    status = _JOB_STATUS_OF_NUMBER.get(m.status)
    if status is None:
        raise ValueError(f"unknown job status {m.status}")
    return {
        "job_name": m.job_name,
        "run_id": m.run_id,
        "status": status,
        "start_time": _get_time(m.start_time) if m.HasField("start_time") else None,
        "end_time": _get_time(m.end_time) if m.HasField("end_time") else None,
        "duration_ms": _opt(m, "duration_ms"),
        "error_type": _opt(m, "error_type"),
        "error_message": _opt(m, "error_message"),
        "metrics": _opt_json(m, "metrics_json"),
    }


def _read_column_sketches(c: Any) -> ColumnSketches:
    kind = _COLUMN_KIND_OF_NUMBER.get(c.kind)
    if kind is None:
        raise ValueError(f"unknown column kind {c.kind}")
    return ColumnSketches(
        kind=kind,
        count=c.count,
        null_count=c.null_count,
        **{
            field: _opt(c, field)
            for field in (
                "min",
                "max",
                "mean",
                "stddev",
                "quantiles",
                "distinct",
                "frequent",
            )
        },
    )


def _read_data_profile(m: Any) -> Dict[str, Any]:
    return {
        "dataset_name": m.dataset_name,
        "row_count": m.row_count,
        "window_start": (
            _get_time(m.window_start) if m.HasField("window_start") else None
        ),
        "window_end": _get_time(m.window_end) if m.HasField("window_end") else None,
        "columns": {c.name: _read_column_sketches(c) for c in m.columns},
        "kll_k": m.kll_k,
        "hll_lg_k": m.hll_lg_k,
        "frequent_lg_max_k": m.frequent_lg_max_k,
    }


def _read_sdk_report(m: Any) -> Dict[str, Any]:
    fields = {
        name: getattr(m, name)
        for name in ("instance_id", "final") + _SR_COUNTS + _SR_LATER
    }
    for name in ("window_start", "window_end"):
        fields[name] = _get_time(getattr(m, name)) if m.HasField(name) else None
    for name in _SR_MAPS:
        fields[name] = dict(getattr(m, name))
    return fields


READERS: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "model_call": _read_model_call,
    "data_quality": _read_data_quality,
    "metric": _read_metric,
    "ground_truth": _read_ground_truth,
    "job_run": _read_job_run,
    "data_profile": _read_data_profile,
    "sdk_report": _read_sdk_report,
}
