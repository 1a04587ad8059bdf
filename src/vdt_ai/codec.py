"""Event models to Kafka records (topic, key, value, headers) and back.

The value is a protobuf ``vdt.ai.v1.Event`` (``proto/vdt/ai/v1/events.proto``);
free-form fields are UTF-8 JSON bytes inside it. :func:`decode` turns a value
back into the model that was encoded: ``decode(encode(e).value) == e``.

Topics: ``<topic_prefix>.model_calls``, ``.data_quality``, ``.metrics``,
``.ground_truth``, ``.job_runs``. Keys keep per-entity order in Kafka: the
model name, the dataset name, the metric's run id (else its name), the ground
truth's model name (else its request id), the job's run id.
"""

import datetime as dt
import functools
import json
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Type
from uuid import UUID

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import to_json

from .exceptions import SerializationError, ValidationError
from .models import (
    CallStatus,
    ColumnProfile,
    DataQuality,
    Event,
    EventType,
    GroundTruth,
    JobRun,
    JobStatus,
    Metric,
    ModelCall,
    Source,
)
from .proto import events_pb2 as pb

SCHEMA_VERSION = "1"
CONTENT_TYPE = "application/x-protobuf; messageType=vdt.ai.v1.Event"
DEFAULT_TOPIC_PREFIX = "vdt"
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024

HEADER_EVENT_TYPE = "vdt-event-type"
HEADER_EVENT_ID = "vdt-event-id"
HEADER_SCHEMA_VERSION = "vdt-schema-version"
HEADER_CONTENT_TYPE = "content-type"
HEADER_API_KEY_ID = "vdt-api-key-id"

TOPIC_SUFFIXES: Dict[EventType, str] = {
    EventType.MODEL_CALL: "model_calls",
    EventType.DATA_QUALITY: "data_quality",
    EventType.METRIC: "metrics",
    EventType.GROUND_TRUTH: "ground_truth",
    EventType.JOB_RUN: "job_runs",
}

Headers = List[Tuple[str, bytes]]


class Record(NamedTuple):
    """One Kafka record, ready to produce.

    Attributes:
        topic: destination topic, e.g. ``vdt.model_calls``.
        key: partitioning key (UTF-8), keeps one entity's events in order.
        value: the protobuf-encoded event.
        headers: ``(name, bytes)`` pairs: event type, event id, schema
            version, content type and, when a key is configured, the API key id.
    """

    topic: str
    key: bytes
    value: bytes
    headers: Headers


def topic_for(event_type: EventType, topic_prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The topic that events of ``event_type`` go to."""
    return f"{topic_prefix}.{TOPIC_SUFFIXES[event_type]}"


def encode(
    event: Event,
    *,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    api_key_id: Optional[str] = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Record:
    """Encodes ``event`` as a Kafka record.

    Raises:
        ValidationError: the encoded event is larger than ``max_event_bytes``.
        SerializationError: the event holds text protobuf cannot carry
            (e.g. lone UTF-16 surrogates).
    """
    event_type = event.event_type
    try:
        message = _envelope(event)
        _PAYLOAD_WRITERS[event_type](message, event)
        value = message.SerializeToString()
    except (ValueError, TypeError) as exc:
        raise SerializationError(
            f"cannot encode {event_type.value} event: {type(exc).__name__}: {exc}"
        ) from None
    if len(value) > max_event_bytes:
        raise ValidationError(
            [
                (
                    "event",
                    f"encoded size {len(value)} bytes exceeds max_event_bytes "
                    f"({max_event_bytes}); send a summary instead of raw data",
                )
            ],
            event_type=event_type.value,
        )
    return Record(
        topic=topic_for(event_type, topic_prefix),
        key=_KEY_OF[event_type](event).encode("utf-8", "surrogatepass"),
        value=value,
        headers=_headers(event_type, event.event_id, api_key_id),
    )


def headers_for_value(value: bytes, api_key_id: Optional[str] = None) -> Headers:
    """The headers :func:`encode` gives the event in ``value``.

    librdkafka does not return headers in delivery reports; a record that must
    be spooled after a failed delivery gets them back from its value.

    Raises:
        SerializationError: ``value`` is not a valid ``vdt.ai.v1.Event``.
    """
    message = pb.Event()
    try:
        message.ParseFromString(value)
        event_type = EventType(message.WhichOneof("payload"))
        event_id = UUID(bytes=message.event_id)
    except (DecodeError, TypeError, ValueError) as exc:
        raise SerializationError(f"not a vdt.ai.v1.Event: {exc}") from None
    return _headers(event_type, event_id, api_key_id)


def _headers(
    event_type: EventType, event_id: UUID, api_key_id: Optional[str]
) -> Headers:
    headers: Headers = [
        (HEADER_EVENT_TYPE, _TYPE_HEADER_VALUES[event_type]),
        (HEADER_EVENT_ID, str(event_id).encode()),
        (HEADER_SCHEMA_VERSION, _SCHEMA_VERSION_BYTES),
        (HEADER_CONTENT_TYPE, _CONTENT_TYPE_BYTES),
    ]
    if api_key_id:
        headers.append((HEADER_API_KEY_ID, api_key_id.encode()))
    return headers


def decode(value: bytes) -> Event:
    """Decodes a record value made by :func:`encode` into its event model.

    Raises:
        SerializationError: ``value`` is not a valid ``vdt.ai.v1.Event``.
    """
    message = pb.Event()
    try:
        message.ParseFromString(value)
    except (DecodeError, TypeError, ValueError) as exc:
        raise SerializationError(f"not a vdt.ai.v1.Event: {exc}") from None
    kind = message.WhichOneof("payload")
    if kind is None:
        raise SerializationError("event has no payload (unknown or newer type?)")
    cls, reader = _PAYLOAD_READERS[kind]
    try:
        fields = _read_envelope(message)
        fields.update(reader(getattr(message, kind)))
        return cls(**fields)
    except (PydanticValidationError, ValueError, TypeError) as exc:
        raise SerializationError(f"invalid {kind} event: {exc}") from None


# -- envelope ---------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SCHEMA_VERSION_BYTES = SCHEMA_VERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()
_TYPE_HEADER_VALUES = {t: t.value.encode() for t in EventType}


def _set_time(target: Timestamp, value: dt.datetime) -> None:
    delta = value - _EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def _get_time(source: Timestamp) -> dt.datetime:
    return _EPOCH + dt.timedelta(
        seconds=source.seconds, microseconds=source.nanos // 1000
    )


@functools.lru_cache(maxsize=64)
def _source_bytes(source: Source) -> bytes:
    # Clients reuse one Source for all their events: encode it once.
    return pb.Source(
        service=source.service,
        environment=source.environment,
        host=source.host,
        sdk_name=source.sdk_name,
        sdk_version=source.sdk_version,
    ).SerializeToString()


def _envelope(event: Event) -> "pb.Event":
    message = pb.Event(event_id=event.event_id.bytes)
    _set_time(message.timestamp, event.timestamp)
    message.source.MergeFromString(_source_bytes(event.source))
    if event.tags:
        message.tags.update(event.tags)
    if event.trace_id is not None:
        message.trace_id = event.trace_id
    if event.span_id is not None:
        message.span_id = event.span_id
    return message


def _read_envelope(message: "pb.Event") -> Dict[str, Any]:
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


# -- helpers for optional and JSON fields -------------------------------------


def _json(value: Any) -> bytes:
    return to_json(value)


def _unjson(data: bytes) -> Any:
    return json.loads(data)


def _opt(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _opt_json(message: Any, name: str) -> Any:
    return _unjson(getattr(message, name)) if message.HasField(name) else None


def _set_opt(message: Any, name: str, value: Any) -> None:
    if value is not None:
        setattr(message, name, value)


def _set_opt_json(message: Any, name: str, value: Any) -> None:
    if value is not None:
        setattr(message, name, _json(value))


_CALL_STATUS_TO_PB = {
    CallStatus.SUCCESS: pb.CALL_STATUS_SUCCESS,
    CallStatus.ERROR: pb.CALL_STATUS_ERROR,
}
_CALL_STATUS_FROM_PB = {v: k for k, v in _CALL_STATUS_TO_PB.items()}
_JOB_STATUS_TO_PB = {
    JobStatus.STARTED: pb.JOB_STATUS_STARTED,
    JobStatus.SUCCEEDED: pb.JOB_STATUS_SUCCEEDED,
    JobStatus.FAILED: pb.JOB_STATUS_FAILED,
}
_JOB_STATUS_FROM_PB = {v: k for k, v in _JOB_STATUS_TO_PB.items()}


# -- payloads -------------------------------------------------------------------


def _write_model_call(message: "pb.Event", event: Any) -> None:
    out = message.model_call
    out.model_name = event.model_name
    out.status = _CALL_STATUS_TO_PB[event.status]
    _set_opt(out, "model_version", event.model_version)
    _set_opt_json(out, "input_data_json", event.input_data)
    _set_opt_json(out, "prediction_json", event.prediction)
    _set_opt(out, "latency_ms", event.latency_ms)
    _set_opt(out, "error_type", event.error_type)
    _set_opt(out, "error_message", event.error_message)
    _set_opt(out, "request_id", event.request_id)
    _set_opt(out, "prompt_tokens", event.prompt_tokens)
    _set_opt(out, "completion_tokens", event.completion_tokens)
    _set_opt(out, "cost", event.cost)


def _read_model_call(m: "pb.ModelCall") -> Dict[str, Any]:
    return {
        "model_name": m.model_name,
        "status": _CALL_STATUS_FROM_PB.get(m.status, CallStatus.SUCCESS),
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
    }


def _write_data_quality(message: "pb.Event", event: Any) -> None:
    out = message.data_quality
    out.dataset_name = event.dataset_name
    out.record_count = event.record_count
    out.null_count = event.null_count
    _set_opt(out, "anomaly_score", event.anomaly_score)
    for column in event.columns:
        col = out.columns.add(name=column.name)
        _set_opt(col, "dtype", column.dtype)
        _set_opt(col, "null_count", column.null_count)
        _set_opt(col, "distinct_count", column.distinct_count)
        _set_opt_json(col, "min_json", column.min)
        _set_opt_json(col, "max_json", column.max)
        _set_opt(col, "mean", column.mean)
        _set_opt(col, "stddev", column.stddev)


def _read_data_quality(m: "pb.DataQuality") -> Dict[str, Any]:
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


def _write_metric(message: "pb.Event", event: Any) -> None:
    out = message.metric
    out.name = event.name
    out.value = event.value
    _set_opt(out, "step", event.step)
    _set_opt(out, "run_id", event.run_id)


def _read_metric(m: "pb.Metric") -> Dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "step": _opt(m, "step"),
        "run_id": _opt(m, "run_id"),
    }


def _write_ground_truth(message: "pb.Event", event: Any) -> None:
    out = message.ground_truth
    out.request_id = event.request_id
    _set_opt_json(out, "actual_json", event.actual)
    _set_opt(out, "model_name", event.model_name)


def _read_ground_truth(m: "pb.GroundTruth") -> Dict[str, Any]:
    return {
        "request_id": m.request_id,
        "actual": _opt_json(m, "actual_json"),
        "model_name": _opt(m, "model_name"),
    }


def _write_job_run(message: "pb.Event", event: Any) -> None:
    out = message.job_run
    out.job_name = event.job_name
    out.run_id = event.run_id
    out.status = _JOB_STATUS_TO_PB[event.status]
    if event.start_time is not None:
        _set_time(out.start_time, event.start_time)
    if event.end_time is not None:
        _set_time(out.end_time, event.end_time)
    _set_opt(out, "duration_ms", event.duration_ms)
    _set_opt(out, "error_type", event.error_type)
    _set_opt(out, "error_message", event.error_message)
    _set_opt_json(out, "metrics_json", event.metrics)


def _read_job_run(m: "pb.JobRun") -> Dict[str, Any]:
    status = _JOB_STATUS_FROM_PB.get(m.status)
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


_PAYLOAD_WRITERS: Dict[EventType, Callable[["pb.Event", Any], None]] = {
    EventType.MODEL_CALL: _write_model_call,
    EventType.DATA_QUALITY: _write_data_quality,
    EventType.METRIC: _write_metric,
    EventType.GROUND_TRUTH: _write_ground_truth,
    EventType.JOB_RUN: _write_job_run,
}

_PAYLOAD_READERS: Dict[str, Tuple[Type[Event], Callable[[Any], Dict[str, Any]]]] = {
    "model_call": (ModelCall, _read_model_call),
    "data_quality": (DataQuality, _read_data_quality),
    "metric": (Metric, _read_metric),
    "ground_truth": (GroundTruth, _read_ground_truth),
    "job_run": (JobRun, _read_job_run),
}

_KEY_OF: Dict[EventType, Callable[[Any], str]] = {
    EventType.MODEL_CALL: lambda e: e.model_name,
    EventType.DATA_QUALITY: lambda e: e.dataset_name,
    EventType.METRIC: lambda e: e.run_id or e.name,
    EventType.GROUND_TRUTH: lambda e: e.model_name or e.request_id,
    EventType.JOB_RUN: lambda e: e.run_id,
}
