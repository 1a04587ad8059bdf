"""The reference encoder: an event model through the official protobuf
encoder (generated classes, ``SerializeToString``).

Test-only (it imports numpy, a development dependency). Not used to send
events: :class:`vdt_ai.codec.Encoder` and the client's fast
path write wire bytes directly, and the tests compare their output with this
one's, byte for byte (tags, a map whose entry order the official encoder does
not fix, are compared parsed).
"""

from typing import Any

import numpy
from pydantic_core import to_json

from ..models import (
    CallStatus,
    ColumnKind,
    EmbeddingDType,
    Event,
    EventType,
    JobStatus,
)
from ..proto import events_pb2 as pb
from ._payloads import split_time

_CALL_STATUS = {
    CallStatus.SUCCESS: pb.CALL_STATUS_SUCCESS,
    CallStatus.ERROR: pb.CALL_STATUS_ERROR,
}
_JOB_STATUS = {
    JobStatus.STARTED: pb.JOB_STATUS_STARTED,
    JobStatus.SUCCEEDED: pb.JOB_STATUS_SUCCEEDED,
    JobStatus.FAILED: pb.JOB_STATUS_FAILED,
}
_COLUMN_KIND = {
    ColumnKind.NUMBER: pb.COLUMN_KIND_NUMBER,
    ColumnKind.STRING: pb.COLUMN_KIND_STRING,
    ColumnKind.BOOLEAN: pb.COLUMN_KIND_BOOLEAN,
    ColumnKind.DATETIME: pb.COLUMN_KIND_DATETIME,
    ColumnKind.OTHER: pb.COLUMN_KIND_OTHER,
}
_EMBEDDING_DTYPE = {
    EmbeddingDType.FLOAT32: (pb.EMBEDDING_DTYPE_FLOAT32, "<f4"),
    EmbeddingDType.FLOAT16: (pb.EMBEDDING_DTYPE_FLOAT16, "<f2"),
}


def _set(message: Any, name: str, value: Any) -> None:
    if value is not None:
        setattr(message, name, value)


def _set_json(message: Any, name: str, value: Any) -> None:
    if value is not None:
        setattr(message, name, to_json(value))


def _set_time(message: Any, value: Any) -> None:
    message.seconds, message.nanos = split_time(value)


# The envelope's fields (not the payload's).
message_fields = frozenset(Event.model_fields)


def message_of(event: Event) -> "pb.Event":
    """``event`` as a generated ``vdt.ai.v1.Event`` message."""
    out = pb.Event(event_id=event.event_id.bytes, tags=event.tags)
    _set_time(out.timestamp, event.timestamp)
    for name in ("service", "environment", "host", "sdk_name", "sdk_version"):
        setattr(out.source, name, getattr(event.source, name))
    _set(out, "trace_id", event.trace_id)
    _set(out, "span_id", event.span_id)
    e: Any = event
    kind = event.event_type
    if kind is EventType.MODEL_CALL:
        mc = out.model_call
        mc.model_name = e.model_name
        mc.status = _CALL_STATUS[e.status]
        for name in ("model_version", "latency_ms", "error_type", "error_message"):
            _set(mc, name, getattr(e, name))
        for name in ("request_id", "prompt_tokens", "completion_tokens", "cost"):
            _set(mc, name, getattr(e, name))
        _set_json(mc, "input_data_json", e.input_data)
        _set_json(mc, "prediction_json", e.prediction)
        _set(mc, "prediction_label", e.prediction_label)
        _set(mc, "prediction_score", e.prediction_score)
        mc.class_probabilities.update(e.class_probabilities or {})
        mc.feature_importance.update(e.feature_importance or {})
        if e.embedding is not None:
            # numpy's own packing, independent of the SDK's struct formats.
            number, numpy_dtype = _EMBEDDING_DTYPE[e.embedding_dtype]
            mc.embedding.vector = numpy.asarray(
                e.embedding, dtype=numpy_dtype
            ).tobytes()
            mc.embedding.dtype = number
            _set(mc.embedding, "name", e.embedding_name)
    elif kind is EventType.DATA_QUALITY:
        d = out.data_quality
        d.dataset_name = e.dataset_name
        d.record_count = e.record_count
        d.null_count = e.null_count
        _set(d, "anomaly_score", e.anomaly_score)
        for column in e.columns:
            c = d.columns.add(name=column.name)
            for name in ("dtype", "null_count", "distinct_count", "mean", "stddev"):
                _set(c, name, getattr(column, name))
            _set_json(c, "min_json", column.min)
            _set_json(c, "max_json", column.max)
    elif kind is EventType.DATA_PROFILE:
        p = out.data_profile
        p.dataset_name = e.dataset_name
        p.row_count = e.row_count
        if e.window_start is not None:
            _set_time(p.window_start, e.window_start)
        if e.window_end is not None:
            _set_time(p.window_end, e.window_end)
        for name, sketches in e.columns.items():
            s = p.columns.add(name=name, kind=_COLUMN_KIND[sketches.kind])
            s.count = sketches.count
            s.null_count = sketches.null_count
            for field in ("min", "max", "mean", "stddev"):
                _set(s, field, getattr(sketches, field))
            for field in ("quantiles", "distinct", "frequent"):
                _set(s, field, getattr(sketches, field))
        p.kll_k = e.kll_k
        p.hll_lg_k = e.hll_lg_k
        p.frequent_lg_max_k = e.frequent_lg_max_k
    elif kind is EventType.SDK_REPORT:
        r = out.sdk_report
        for name in type(e).model_fields:
            if name in ("window_start", "window_end"):
                if getattr(e, name) is not None:
                    _set_time(getattr(r, name), getattr(e, name))
            elif name.endswith("_by_reason"):
                getattr(r, name).update(getattr(e, name))
            elif name not in message_fields:
                setattr(r, name, getattr(e, name))
    elif kind is EventType.METRIC:
        m = out.metric
        m.name = e.name
        m.value = e.value
        _set(m, "step", e.step)
        _set(m, "run_id", e.run_id)
    elif kind is EventType.GROUND_TRUTH:
        g = out.ground_truth
        g.request_id = e.request_id
        _set_json(g, "actual_json", e.actual)
        _set(g, "model_name", e.model_name)
        _set(g, "actual_label", e.actual_label)
        _set(g, "actual_score", e.actual_score)
    else:
        j = out.job_run
        j.job_name = e.job_name
        j.run_id = e.run_id
        j.status = _JOB_STATUS[e.status]
        if e.start_time is not None:
            _set_time(j.start_time, e.start_time)
        if e.end_time is not None:
            _set_time(j.end_time, e.end_time)
        for name in ("duration_ms", "error_type", "error_message"):
            _set(j, name, getattr(e, name))
        _set_json(j, "metrics_json", e.metrics)
    return out


def reference_value(event: Event) -> bytes:
    """``event`` encoded by the official protobuf encoder."""
    return message_of(event).SerializeToString()
