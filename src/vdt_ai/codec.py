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
import json
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Type
from uuid import UUID

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import to_json

from .exceptions import SerializationError, ValidationError, problems_from_pydantic
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


class Encoder:
    """Encodes events for one client: topic prefix, key id and size limit bound.

    Per-type topics and the constant headers are built once, so each
    :meth:`encode` only does per-event work.
    """

    def __init__(
        self,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        api_key_id: Optional[str] = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.max_event_bytes = max_event_bytes
        self._topics = {t: topic_for(t, topic_prefix) for t in EventType}
        self._type_headers = {
            t: (HEADER_EVENT_TYPE, t.value.encode()) for t in EventType
        }
        self._tail: Headers = [
            (HEADER_SCHEMA_VERSION, _SCHEMA_VERSION_BYTES),
            (HEADER_CONTENT_TYPE, _CONTENT_TYPE_BYTES),
        ]
        if api_key_id:
            self._tail.append((HEADER_API_KEY_ID, api_key_id.encode()))

    def encode(self, event: Event) -> Record:
        """Encodes ``event`` as a Kafka record.

        Raises:
            ValidationError: the encoded event is larger than ``max_event_bytes``.
            SerializationError: the event holds text protobuf cannot carry
                (e.g. lone UTF-16 surrogates).
        """
        event_type = event.event_type
        event_id = event.event_id.bytes
        try:
            value = _envelope_bytes(event, event_id) + _PAYLOAD_WRITERS[event_type](
                event
            )
        except (ValueError, TypeError) as exc:
            raise SerializationError(
                f"cannot encode {event_type.value} event: {type(exc).__name__}: {exc}"
            ) from None
        if len(value) > self.max_event_bytes:
            raise ValidationError(
                [
                    (
                        "event",
                        f"encoded size {len(value)} bytes exceeds max_event_bytes "
                        f"({self.max_event_bytes}); send a summary instead of raw "
                        "data",
                    )
                ],
                event_type=event_type.value,
            )
        return Record(
            self._topics[event_type],
            _KEY_OF[event_type](event).encode("utf-8", "surrogatepass"),
            value,
            [self._type_headers[event_type], (HEADER_EVENT_ID, _uuid_text(event_id))]
            + self._tail,
        )


def encode(
    event: Event,
    *,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    api_key_id: Optional[str] = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Record:
    """Encodes ``event`` as a Kafka record (see :class:`Encoder`).

    Raises:
        ValidationError: the encoded event is larger than ``max_event_bytes``.
        SerializationError: the event holds text protobuf cannot carry
            (e.g. lone UTF-16 surrogates).
    """
    return Encoder(topic_prefix, api_key_id, max_event_bytes).encode(event)


def _uuid_text(raw: bytes) -> bytes:
    """The canonical 36-character form of a 16-byte UUID (faster than str())."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()


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
        (HEADER_EVENT_TYPE, event_type.value.encode()),
        (HEADER_EVENT_ID, _uuid_text(event_id.bytes)),
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
    except PydanticValidationError as exc:
        details = "; ".join(
            f"{field}: {reason}"
            for field, reason in problems_from_pydantic(exc, "event")
        )
        raise SerializationError(f"invalid {kind} event: {details}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise SerializationError(f"invalid {kind} event: {exc}") from None


# -- envelope ---------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SCHEMA_VERSION_BYTES = SCHEMA_VERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()


def _set_time(target: Timestamp, value: dt.datetime) -> None:
    delta = value - _EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def _get_time(source: Timestamp) -> dt.datetime:
    return _EPOCH + dt.timedelta(
        seconds=source.seconds, microseconds=source.nanos // 1000
    )


# The envelope is assembled from protobuf wire bytes directly: the fields are
# few and fixed, and this is the per-event hot path (about 3x faster than
# building a message object). Field order is the canonical one (by number), and
# decode() parses it with the generated code; tests check both agree.
_TAG_EVENT_ID = b"\x0a\x10"  # field 1, length-delimited, 16 bytes
_TAG_TIMESTAMP = b"\x12"  # field 2
_TAG_SOURCE = b"\x1a"  # field 3
_source_cache: Dict[int, Tuple[Source, bytes]] = {}


def _varint(value: int) -> bytes:
    # Unrolled for the sizes the hot path meets (lengths, Unix seconds, nanos).
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes it
    if value < 0x80:
        return _SMALL_VARINTS[value]
    if value < 1 << 14:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 1 << 21:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 1 << 35:
        if value < 1 << 28:
            return bytes(
                (
                    value & 0x7F | 0x80,
                    value >> 7 & 0x7F | 0x80,
                    value >> 14 & 0x7F | 0x80,
                    value >> 21,
                )
            )
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
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [bytes((n,)) for n in range(0x80)]


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


# (seconds, its encoded field), swapped as one reference so threads never
# pair one second with another's bytes.
_last_seconds: Tuple[Optional[int], bytes] = (None, b"")


def _timestamp_bytes(value: dt.datetime) -> bytes:
    delta = value - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    micros = delta.microseconds
    # Consecutive events mostly share their second: reuse its encoding.
    global _last_seconds
    cached = _last_seconds
    if cached[0] == seconds:
        out = cached[1]
    else:
        out = b"\x08" + _varint(seconds) if seconds else b""
        _last_seconds = (seconds, out)
    if micros:
        out += b"\x10" + _varint(micros * 1000)
    return out


def _source_field(source: Source) -> bytes:
    # Clients reuse one Source for all their events: encode it once.
    cached = _source_cache.get(id(source))
    if cached is not None and cached[0] is source:
        return cached[1]
    payload = pb.Source(
        service=source.service,
        environment=source.environment,
        host=source.host,
        sdk_name=source.sdk_name,
        sdk_version=source.sdk_version,
    ).SerializeToString()
    field = _length_delimited(_TAG_SOURCE, payload)
    if len(_source_cache) > 256:
        _source_cache.clear()
    _source_cache[id(source)] = (source, field)
    return field


def _envelope_bytes(event: Event, event_id: bytes) -> bytes:
    timestamp = _timestamp_bytes(event.timestamp)
    out = (
        _TAG_EVENT_ID
        + event_id
        + _TAG_TIMESTAMP
        + _SMALL_VARINTS[len(timestamp)]  # a Timestamp is at most 22 bytes
        + timestamp
        + _source_field(event.source)
    )
    if event.tags or event.trace_id is not None or event.span_id is not None:
        # Fields 4-6 are rare: let the generated code encode them.
        out += pb.Event(
            tags=event.tags, trace_id=event.trace_id, span_id=event.span_id
        ).SerializeToString()
    return out


def _payload_field(number: int, message: Any) -> bytes:
    return _length_delimited(_varint(number << 3 | 2), message.SerializeToString())


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


# Writers set fields one by one (cheaper than keyword construction); a field
# left unset is an unset proto3 ``optional``.
def _write_model_call(event: Any) -> bytes:
    out = pb.ModelCall()
    out.model_name = event.model_name
    out.status = _CALL_STATUS_TO_PB[event.status]
    if event.model_version is not None:
        out.model_version = event.model_version
    if event.input_data is not None:
        out.input_data_json = _json(event.input_data)
    if event.prediction is not None:
        out.prediction_json = _json(event.prediction)
    if event.latency_ms is not None:
        out.latency_ms = event.latency_ms
    if event.error_type is not None:
        out.error_type = event.error_type
    if event.error_message is not None:
        out.error_message = event.error_message
    if event.request_id is not None:
        out.request_id = event.request_id
    if event.prompt_tokens is not None:
        out.prompt_tokens = event.prompt_tokens
    if event.completion_tokens is not None:
        out.completion_tokens = event.completion_tokens
    if event.cost is not None:
        out.cost = event.cost
    return _payload_field(10, out)


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


def _write_data_quality(event: Any) -> bytes:
    out = pb.DataQuality()
    out.dataset_name = event.dataset_name
    out.record_count = event.record_count
    out.null_count = event.null_count
    if event.anomaly_score is not None:
        out.anomaly_score = event.anomaly_score
    for column in event.columns:
        col = out.columns.add(name=column.name)
        if column.dtype is not None:
            col.dtype = column.dtype
        if column.null_count is not None:
            col.null_count = column.null_count
        if column.distinct_count is not None:
            col.distinct_count = column.distinct_count
        if column.min is not None:
            col.min_json = _json(column.min)
        if column.max is not None:
            col.max_json = _json(column.max)
        if column.mean is not None:
            col.mean = column.mean
        if column.stddev is not None:
            col.stddev = column.stddev
    return _payload_field(11, out)


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


def _write_metric(event: Any) -> bytes:
    out = pb.Metric()
    out.name = event.name
    out.value = event.value
    if event.step is not None:
        out.step = event.step
    if event.run_id is not None:
        out.run_id = event.run_id
    return _payload_field(12, out)


def _read_metric(m: "pb.Metric") -> Dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "step": _opt(m, "step"),
        "run_id": _opt(m, "run_id"),
    }


def _write_ground_truth(event: Any) -> bytes:
    out = pb.GroundTruth()
    out.request_id = event.request_id
    if event.actual is not None:
        out.actual_json = _json(event.actual)
    if event.model_name is not None:
        out.model_name = event.model_name
    return _payload_field(13, out)


def _read_ground_truth(m: "pb.GroundTruth") -> Dict[str, Any]:
    return {
        "request_id": m.request_id,
        "actual": _opt_json(m, "actual_json"),
        "model_name": _opt(m, "model_name"),
    }


def _write_job_run(event: Any) -> bytes:
    out = pb.JobRun()
    out.job_name = event.job_name
    out.run_id = event.run_id
    out.status = _JOB_STATUS_TO_PB[event.status]
    if event.start_time is not None:
        _set_time(out.start_time, event.start_time)
    if event.end_time is not None:
        _set_time(out.end_time, event.end_time)
    if event.duration_ms is not None:
        out.duration_ms = event.duration_ms
    if event.error_type is not None:
        out.error_type = event.error_type
    if event.error_message is not None:
        out.error_message = event.error_message
    if event.metrics is not None:
        out.metrics_json = _json(event.metrics)
    return _payload_field(14, out)


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


_PAYLOAD_WRITERS: Dict[EventType, Callable[[Any], bytes]] = {
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
