"""Event models to Kafka records (topic, key, value, headers) and back.

The value is a protobuf ``vdt.ai.v1.Event`` (``proto/vdt/ai/v1/events.proto``);
free-form fields are UTF-8 JSON bytes inside it. :func:`decode` turns a value
back into the model that was encoded: ``decode(encode(e).value) == e``.

Topics: ``<topic_prefix>.model_calls``, ``.data_quality``, ``.metrics``,
``.ground_truth``, ``.job_runs``, ``.data_profiles``, ``.sdk_reports``.
Keys keep per-entity order in Kafka: the model name, the dataset name (data
quality and profiles), the metric's run id (else its name), the ground
truth's model name (else its request id), the job's run id, the reporting
client's instance id.

Layout: :mod:`._wire` writes protobuf wire bytes (varints, the envelope),
:mod:`._payloads` writes and reads each event type's payload, :mod:`._schema`
names the field numbers; the generated protobuf code is imported only by
:func:`decode` and :func:`headers_for_value`, on first use.
:mod:`._reference` encodes with the generated code: the tests compare both.
:class:`Record` lives in :mod:`vdt_ai._record`, which the transports import
without the models.
"""

from binascii import hexlify as _hexlify
from typing import Any, Dict, Optional, Tuple
from uuid import UUID

from .._record import Headers as Headers
from .._record import Record as Record
from ..exceptions import SerializationError, ValidationError, problems_from_pydantic
from ..models import EVENT_CLASSES, Event, EventType, Source
from . import _wire
from ._payloads import KEY_OF, WRITERS, split_time

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
    EventType.DATA_PROFILE: "data_profiles",
    EventType.SDK_REPORT: "sdk_reports",
}

# The suffixes of the topics that log_* calls write to: all but the SDK's own
# reports (``.sdk_reports``), which readers of monitoring events skip.
LOGGED_SUFFIXES: Tuple[str, ...] = tuple(
    suffix
    for kind, suffix in TOPIC_SUFFIXES.items()
    if kind is not EventType.SDK_REPORT
)

_SCHEMA_VERSION_BYTES = SCHEMA_VERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()


def topic_for(event_type: EventType, topic_prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The topic that events of ``event_type`` go to."""
    return f"{topic_prefix}.{TOPIC_SUFFIXES[event_type]}"


_join_dashed = b"-".join


def uuid_text(raw: bytes) -> bytes:
    """The canonical 36-character form of a 16-byte UUID (faster than str())."""
    # Hex bytes joined as bytes, in one join: no str made and encoded, no
    # intermediate concatenations (0.75 -> 0.54 us).
    h = _hexlify(raw)
    return _join_dashed((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


_source_cache: Dict[int, Tuple[Source, bytes]] = {}


def source_field(source: Source) -> bytes:
    """The envelope's ``source`` field (cached: a client reuses one Source)."""
    cached = _source_cache.get(id(source))
    if cached is not None and cached[0] is source:
        return cached[1]
    field = _wire.source_field(
        (name, getattr(source, name))
        for name in ("service", "environment", "host", "sdk_name", "sdk_version")
    )
    if len(_source_cache) > 256:
        _source_cache.clear()
    _source_cache[id(source)] = (source, field)
    return field


def envelope_rest(event: Event) -> bytes:
    """The envelope after id and timestamp: source, tags, trace ids."""
    out = source_field(event.source)
    if event.tags:
        out += _wire.tags_field(event.tags)
    if event.trace_id is not None or event.span_id is not None:
        out += _wire.trace_fields(event.trace_id, event.span_id)
    return out


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
        self.topics = {t: topic_for(t, topic_prefix) for t in EventType}
        self.type_headers = {
            t: (HEADER_EVENT_TYPE, t.value.encode()) for t in EventType
        }
        self.tail: Headers = [
            (HEADER_SCHEMA_VERSION, _SCHEMA_VERSION_BYTES),
            (HEADER_CONTENT_TYPE, _CONTENT_TYPE_BYTES),
        ]
        if api_key_id:
            self.tail.append((HEADER_API_KEY_ID, api_key_id.encode()))
        self._tail = tuple(self.tail)

    def headers(self, event_type: EventType, event_id: bytes) -> Headers:
        """The headers of an event of ``event_type`` with the 16-byte ``event_id``."""
        # One list display, no concatenation (runs once per event).
        return [
            self.type_headers[event_type],
            (HEADER_EVENT_ID, uuid_text(event_id)),
            *self._tail,
        ]

    def too_large(self, size: int, event_type: EventType) -> ValidationError:
        """The error for an encoded event of ``size`` bytes over the limit."""
        return ValidationError(
            [
                (
                    "event",
                    f"encoded size {size} bytes exceeds max_event_bytes "
                    f"({self.max_event_bytes}); send a summary instead of raw data",
                )
            ],
            event_type=event_type.value,
        )

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
            value = (
                _wire.stamp(event_id, *split_time(event.timestamp))
                + envelope_rest(event)
                + WRITERS[event_type](event)
            )
        except (ValueError, TypeError) as exc:
            raise SerializationError(
                f"cannot encode {event_type.value} event: {type(exc).__name__}: {exc}"
            ) from None
        if len(value) > self.max_event_bytes:
            raise self.too_large(len(value), event_type)
        return Record(
            self.topics[event_type],
            KEY_OF[event_type](event).encode("utf-8", "surrogatepass"),
            value,
            self.headers(event_type, event_id),
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


def _parse(value: bytes) -> Any:
    # The generated code loads here, on first use: import vdt_ai stays light.
    from google.protobuf.message import DecodeError

    from ..proto import events_pb2 as pb

    message = pb.Event()
    try:
        message.ParseFromString(value)
    except (DecodeError, TypeError, ValueError) as exc:
        raise SerializationError(f"not a vdt.ai.v1.Event: {exc}") from None
    return message


def headers_for_value(value: bytes, api_key_id: Optional[str] = None) -> Headers:
    """The headers :func:`encode` gives the event in ``value``.

    librdkafka does not return headers in delivery reports; a record that must
    be spooled after a failed delivery gets them back from its value.

    Raises:
        SerializationError: ``value`` is not a valid ``vdt.ai.v1.Event``.
    """
    message = _parse(value)
    try:
        event_type = EventType(message.WhichOneof("payload"))
        event_id = UUID(bytes=message.event_id)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"not a vdt.ai.v1.Event: {exc}") from None
    headers: Headers = [
        (HEADER_EVENT_TYPE, event_type.value.encode()),
        (HEADER_EVENT_ID, uuid_text(event_id.bytes)),
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
    from pydantic import ValidationError as PydanticValidationError

    from ._payloads import READERS, read_envelope

    message = _parse(value)
    kind = message.WhichOneof("payload")
    if kind is None:
        raise SerializationError("event has no payload (unknown or newer type?)")
    try:
        fields = read_envelope(message)
        fields.update(READERS[kind](getattr(message, kind)))
        return EVENT_CLASSES[EventType(kind)](**fields)
    except PydanticValidationError as exc:
        details = "; ".join(
            f"{field}: {reason}"
            for field, reason in problems_from_pydantic(exc, "event")
        )
        raise SerializationError(f"invalid {kind} event: {details}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise SerializationError(f"invalid {kind} event: {exc}") from None
