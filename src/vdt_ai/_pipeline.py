"""The client's event pipeline: build -> policy -> before_send -> encode -> submit.

Two paths lead through it:

* the **reference path** (:meth:`Pipeline.emit`): the caller's arguments are
  validated into a Pydantic model (:func:`vdt_ai.models.build_event`), then
  sampled, passed through the data policy and ``before_send``, encoded, and
  handed to the transport;
* the **fast path** (:meth:`Pipeline.model_call`, and the rows of
  :meth:`Pipeline.model_calls`): for the common call (exact built-in types that
  need no conversion, no data-policy rules, no ``before_send``, nothing the
  denylist would mask) the same checks are made on the arguments themselves
  and the protobuf bytes are written directly. Anything else (a numpy value, a
  ``str`` subclass, an invalid argument, a secret-looking key...) falls back
  to the reference path, so errors and conversions are the reference path's
  own. ``tests/unit/test_pipeline_differential.py`` runs both paths on the
  same inputs (hypothesis) and compares records byte for byte, and errors.

Every event's id and timestamp come from one clock reading
(:func:`vdt_ai._uuid7.next_stamp`); bulk calls reserve a block of ids under one
lock, so ids stay in creation order across single and bulk calls.
"""

import datetime as dt
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type
from uuid import UUID

from pydantic_core import to_json

from . import _log
from ._jsonlike import valid_text
from ._typed_fast import (
    finite_number,
    plain_label,
    typed_fields_bytes,
    typed_fields_of,
)
from ._uuid7 import EventIds, as_uuid, next_stamp, reserve
from .codec import Encoder, Record, source_field
from .codec._payloads import (
    extend_model_call,
    model_call_field,
    model_call_parts,
    write_data_quality,
    write_ground_truth,
    write_job_run,
    write_metric,
    write_model_call,
)
from .codec._wire import EVENT_ID_PREFIX, stamp, tags_field, trace_fields
from .exceptions import ValidationError, VDTError
from .models import (
    EVENT_CLASSES,
    MAX_COUNT,
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAG_KEY_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TAGS,
    CallStatus,
    DataProfile,
    DataQuality,
    EmbeddingDType,
    Event,
    EventType,
    GroundTruth,
    JobRun,
    JobStatus,
    Metric,
    ModelCall,
    Source,
    build_event,
)
from .policy import DataPolicy
from .transport import (
    BEFORE_SEND_ERROR,
    BEFORE_SEND_INVALID,
    CLIENT_CLOSED,
    TRANSPORT_ERROR,
    Counters,
    Transport,
)

SAMPLE_SPACE = 1 << 62  # the random low bits of a UUIDv7
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MAX_EXACT_FLOAT_INT = 2**53
_EVENT_TYPES = frozenset(EVENT_CLASSES.values())
_MODEL_CALL = EventType.MODEL_CALL
_METRIC = EventType.METRIC
_GROUND_TRUTH = EventType.GROUND_TRUTH
_DATA_QUALITY = EventType.DATA_QUALITY
_JOB_RUN = EventType.JOB_RUN
# An event's id (a UUIDv7's int) and time (time.time_ns()), drawn together.
Stamp = Tuple[int, int]
# _send_fast()'s "not sent, too large": the reference path makes the error.
_TOO_LARGE = object()
# How many distinct tag sets _envelope() remembers (cleared when full).
_MAX_CACHED_TAGS = 256
_MAX_CACHED_ENVELOPE = 1024  # bytes; larger tag sets are written each time
# log_model_call's typed ML arguments (the fast paths check and write them in
# _typed_fast).
TYPED_FIELDS = (
    "prediction_label",
    "prediction_score",
    "class_probabilities",
    "embedding",
    "embedding_name",
    "feature_importance",
)
# The arguments of log_model_call, as the bulk rows name them.
MODEL_CALL_ARGUMENTS = (
    "model_name",
    "input_data",
    "prediction",
    "latency_ms",
    "model_version",
    "status",
    "error_type",
    "error_message",
    "request_id",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "tags",
    "timestamp",
    "trace_id",
    "span_id",
    *TYPED_FIELDS,
)
_STATUS_OF_TEXT = {status.value: status for status in CallStatus}
_JOB_STATUS_OF_TEXT = {status.value: status for status in JobStatus}


def _name(value: Any, longest: int) -> bool:
    # Name / Identifier: strict str, 1..longest characters, not blank, valid text.
    return (
        type(value) is str
        and 0 < len(value) <= longest
        and not value.isspace()
        and (value.isascii() or valid_text(value))
    )


def _optional_name(value: Any, longest: int) -> bool:
    return value is None or _name(value, longest)


def _non_negative_float(value: Any) -> Optional[float]:
    # NonNegativeFloat for the exact types that need no more than float().
    kind = type(value)
    if kind is float:
        return value if value >= 0.0 and value - value == 0.0 else None
    if kind is int and 0 <= value <= _MAX_EXACT_FLOAT_INT:
        return float(value)
    return None


def _utc_or_none(value: Any) -> bool:
    # UTCDateTime that validation keeps as it is: an exact datetime in UTC.
    return value is None or (
        type(value) is dt.datetime and value.tzinfo is dt.timezone.utc
    )


def _count(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value <= MAX_COUNT)


def datetime_of(now_ns: int) -> dt.datetime:
    """The UTC datetime (microseconds) of a ``time.time_ns()`` reading."""
    return _EPOCH + dt.timedelta(microseconds=now_ns // 1000)


class Pipeline:
    """One client's path from arguments to transport (see the module doc)."""

    def __init__(
        self,
        *,
        source: Source,
        default_tags: Dict[str, str],
        sample_rate: float,
        policy: DataPolicy,
        before_send: Optional[Callable[[Event], Optional[Event]]],
        encoder: Encoder,
        transport: Transport,
        counters: Counters,
        embedding_dtype: str = "float32",
    ) -> None:
        self.source = source
        # The embedding_dtype setting, given to model calls with an embedding.
        self.embedding_dtype = embedding_dtype
        self._embedding_dtype = EmbeddingDType(embedding_dtype)
        self.default_tags = default_tags
        self.sample_below = int(sample_rate * SAMPLE_SPACE)
        self.policy = policy
        self.before_send = before_send
        self.encoder = encoder
        self.transport = transport
        self.counters = counters
        self.closed = False
        # The fast path serves calls whose outcome needs neither rules nor a
        # hook; per-client constant bytes are made once.
        self.fast = policy.has_rules is False and before_send is None
        self._source_bytes = source_field(source)
        self._default_tags_ok = self._tags_ok(default_tags)
        self._default_tag_bytes = tags_field(default_tags)
        self._topic = encoder.topics[_MODEL_CALL]
        self._topics = encoder.topics
        # simple_model_call()'s constant parts: the envelope (no tags of the
        # call's own) and the payload's fields after the per-call ones.
        self._simple_envelope = (
            self._source_bytes + self._default_tag_bytes
            if self._default_tags_ok
            else None
        )
        self._success_tail = model_call_parts(
            "-", None, CallStatus.SUCCESS, *[None] * 6
        )[1]
        self._simple_names: Dict[str, Tuple[bytes, bytes]] = {}
        # _envelope()'s bytes of the tags calls gave (items -> bytes).
        self._tag_bytes: Dict[Tuple[Tuple[Any, Any], ...], bytes] = {}
        self._headers = encoder.headers
        self._send = transport.send
        self._accepted = counters.ticker("accepted")

    # -- the reference path ---------------------------------------------------

    def emit(
        self,
        cls: Type[Event],
        fields: Dict[str, Any],
        tags: Optional[Mapping[str, str]],
        timestamp: Optional[dt.datetime],
        trace_id: Optional[str],
        span_id: Optional[str],
    ) -> Optional[UUID]:
        """Validates, finishes and submits one event; its id, or None when not
        sent."""
        # The validation boundary: whatever the caller's data makes fail in
        # building, the policy or encoding leaves as a ValidationError.
        try:
            event = self.build(cls, fields, tags, timestamp, trace_id, span_id)
            finished = self.finish(event)
        except Exception as exc:
            raise in_item(exc, "", cls.event_type.value) from None
        if finished is None:
            return None
        event, record = finished
        return event.event_id if self.submit(record) else None

    def build(
        self,
        cls: Type[Event],
        fields: Dict[str, Any],
        tags: Optional[Mapping[str, str]],
        timestamp: Optional[dt.datetime],
        trace_id: Optional[str],
        span_id: Optional[str],
    ) -> Event:
        """``fields`` (None meaning "not given") plus the envelope, validated."""
        values = fields
        values["source"] = self.source
        if tags is not None:
            values["tags"] = self.merged_tags(tags, cls)
        elif self.default_tags:
            values["tags"] = self.default_tags
        if "event_id" not in values:
            event_id, now_ns = next_stamp()
            values["event_id"] = as_uuid(event_id)
            if timestamp is None:
                timestamp = datetime_of(now_ns)
        if timestamp is not None:
            values["timestamp"] = timestamp
        if trace_id is not None:
            values["trace_id"] = trace_id
        if span_id is not None:
            values["span_id"] = span_id
        return build_event(cls, values)

    def merged_tags(self, tags: Any, cls: Type[Event]) -> Any:
        """The event's tags over the client's default tags."""
        if type(tags) is not dict and not isinstance(tags, Mapping):
            raise ValidationError(
                [
                    (
                        "tags",
                        f"must be a mapping of text to text, not {type(tags).__name__}",
                    )
                ],
                event_type=cls.event_type.value,
            )
        if not self.default_tags:
            return tags
        return {**self.default_tags, **tags} if tags else self.default_tags

    def finish(self, event: Event) -> Optional[Tuple[Event, Record]]:
        """Sampling, data policy, before_send, encoding; None when not sent.

        Data profiles are summaries of every call: never sampled out."""
        if self.sample_below < SAMPLE_SPACE and type(event) is not DataProfile:
            if (event.event_id.int & (SAMPLE_SPACE - 1)) >= self.sample_below:
                self.counters.add("sampled_out")
                return None
        event = self.policy.apply(event)
        if self.before_send is not None:
            kept = self._run_before_send(event)
            if kept is None:
                return None
            if kept is not event:
                # An edited copy is the hook's work, not the caller's: when it
                # cannot be sent, it is dropped and counted like a failing hook.
                try:
                    return kept, self.encoder.encode(kept)
                except Exception as exc:
                    self._before_send_failed("before-send-encode", exc)
                    return None
        return event, self.encoder.encode(event)

    def _before_send_failed(self, what: str, exc: Exception) -> None:
        self.counters.add("failed", reason=BEFORE_SEND_INVALID)
        fields = (
            ", ".join(field for field, _ in exc.errors)
            if isinstance(exc, ValidationError)
            else ""
        )
        _log.log_once(
            what,
            "ERROR",
            "before_send returned an event that cannot be sent; it was dropped",
            error=type(exc).__name__,
            fields=fields,
        )

    def _run_before_send(self, event: Event) -> Optional[Event]:
        assert self.before_send is not None
        try:
            result = self.before_send(event)
        except Exception as exc:
            # A failing scrubber must not let unscrubbed data out: drop.
            self.counters.add("failed", reason=BEFORE_SEND_ERROR)
            _log.log_once(
                "before-send-raised",
                "ERROR",
                "before_send raised; the event was dropped",
                error=type(exc).__name__,
            )
            return None
        if result is None:
            self.counters.add("filtered")
            return None
        if not isinstance(result, Event) or type(result) not in _EVENT_TYPES:
            self.counters.add("failed", reason=BEFORE_SEND_INVALID)
            _log.log_once(
                "before-send-type",
                "ERROR",
                "before_send returned neither an event nor None; dropped",
                returned=type(result).__name__,
            )
            return None
        if result is event:
            return result
        # model_copy(update=...) does not validate: validate the copy, so that
        # what is sent always decodes.
        try:
            cls = type(result)
            return build_event(
                cls, {name: getattr(result, name) for name in cls.model_fields}
            )
        except Exception as exc:
            self._before_send_failed("before-send-invalid", exc)
            return None

    def submit(self, record: Record) -> bool:
        """Hands ``record`` to the transport; False when it was dropped."""
        if self.closed:
            self.counters.add("dropped", reason=CLIENT_CLOSED)
            _log.log_once(
                f"closed:{id(self)}", "WARNING", "log call on a closed client dropped"
            )
            return False
        self._accepted()
        try:
            if self._send(record, self.counters) is False:
                # Raced close(): the transport refused it before its final
                # flush, so it is counted dropped and no id is returned.
                self.counters.add("dropped", reason=CLIENT_CLOSED)
                return False
        except Exception as exc:
            self.counters.add("failed", reason=TRANSPORT_ERROR)
            _log.log_once(
                f"send-error:{type(exc).__name__}",
                "ERROR",
                "transport failed to take an event",
                error=repr(exc),
            )
        return True

    # -- the fast path ----------------------------------------------------------

    def _tags_ok(self, tags: Any) -> bool:
        # Tags the models accept as they are and the denylist leaves alone.
        if type(tags) is not dict or len(tags) > MAX_TAGS:
            return False
        policy = self.policy
        for name, value in tags.items():
            if not (
                type(name) is str
                and type(value) is str
                and 0 < len(name) <= MAX_TAG_KEY_LENGTH
                and len(value) <= MAX_TAG_VALUE_LENGTH
                and policy.leaves_alone(value)
                and policy.leaves_alone({name: None})
            ):
                return False
        return True

    def _envelope_and_payload(
        self, a: Mapping[str, Any], error_is_truthy: bool
    ) -> Optional[Tuple[bytes, bytes]]:
        """(the value after id and timestamp, the key) of a model call whose
        arguments ``a`` the fast path can take; None sends it the reference
        way. ``error_is_truthy``: the bulk rule for the default status (an
        error field that is set and not empty), else "given" (not None)."""
        checked = self._checked(a, error_is_truthy)
        if checked is None:
            return None
        envelope, name, version, status, tail, typed = checked
        input_data, prediction = a.get("input_data"), a.get("prediction")
        latency = a.get("latency_ms")
        if latency is not None:
            latency = _non_negative_float(latency)
            if latency is None:
                return None
        leaves_alone = self.policy.leaves_alone
        if not (leaves_alone(input_data) and leaves_alone(prediction)):
            return None
        payload = write_model_call(
            name,
            version,
            None if input_data is None else to_json(input_data),
            None if prediction is None else to_json(prediction),
            latency,
            status,
            *tail,
        )
        if typed:
            payload = extend_model_call(payload, typed)
        return envelope + payload, name.encode()

    def _checked(
        self, a: Mapping[str, Any], error_is_truthy: bool
    ) -> Optional[Tuple[bytes, str, Optional[str], CallStatus, Tuple[Any, ...], bytes]]:
        """The fast path's checks of a model call's arguments ``a`` but for
        its three per-call values (``input_data``, ``prediction``,
        ``latency_ms``): (envelope bytes after id and timestamp, model name,
        version, status, the payload's later fields, the typed ML fields'
        bytes), or None."""
        get = a.get
        model_name: Any = get("model_name")
        if not _name(model_name, MAX_NAME_LENGTH) or get("timestamp") is not None:
            return None
        typed = typed_fields_of(get, self._embedding_dtype)
        if typed is None:
            return None
        envelope = self._envelope(get("tags"))
        if envelope is None:
            return None
        trace_id, span_id = get("trace_id"), get("span_id")
        model_version, request_id = get("model_version"), get("request_id")
        error_type, error_message = get("error_type"), get("error_message")
        prompt_tokens, completion_tokens = get("prompt_tokens"), get(
            "completion_tokens"
        )
        if not (
            _optional_name(trace_id, MAX_ID_LENGTH)
            and _optional_name(span_id, MAX_ID_LENGTH)
            and _optional_name(model_version, MAX_ID_LENGTH)
            and _optional_name(request_id, MAX_ID_LENGTH)
            and _optional_name(error_type, MAX_ID_LENGTH)
            and _count(prompt_tokens)
            and _count(completion_tokens)
        ):
            return None
        if error_message is not None and not (
            type(error_message) is str
            and len(error_message) <= MAX_ERROR_MESSAGE_LENGTH
            and self.policy.leaves_alone(error_message)
        ):
            return None
        status = get("status")
        if status is None:
            failed = (
                (error_type or error_message)
                if error_is_truthy
                else (error_type is not None or error_message is not None)
            )
            status = CallStatus.ERROR if failed else CallStatus.SUCCESS
        elif type(status) is str:
            status = _STATUS_OF_TEXT.get(status)
            if status is None:
                return None
        elif type(status) is not CallStatus:
            return None
        cost = get("cost")
        if cost is not None:
            cost = _non_negative_float(cost)
            if cost is None:
                return None
        if trace_id is not None or span_id is not None:
            envelope += trace_fields(trace_id, span_id)
        tail = (
            error_type,
            error_message,
            request_id,
            prompt_tokens,
            completion_tokens,
            cost,
        )
        return envelope, model_name, model_version, status, tail, typed

    def _sampled_out(self, event_id: int) -> bool:
        if (event_id & (SAMPLE_SPACE - 1)) >= self.sample_below:
            self.counters.add("sampled_out")
            return True
        return False

    def model_call(
        self, arguments: Dict[str, Any], drawn: Optional[Stamp] = None
    ) -> Optional[UUID]:
        """One model call (``arguments`` as log_model_call's, None = not given);
        ``drawn``: its id and time, drawn earlier by :meth:`draw`."""
        prepared = self._envelope_and_payload(arguments, False) if self.fast else None
        if prepared is not None:
            sent = self._send_fast(_MODEL_CALL, prepared[0], prepared[1], drawn)
            if sent is not _TOO_LARGE:
                return sent  # type: ignore[no-any-return]
        return self._model_call_reference(arguments, drawn)

    def draw(self) -> Optional[Stamp]:
        """An event's id and time (as :func:`next_stamp`), drawn before the
        caller does the work of the event; None when sampling drops it
        (counted). Sending it later with these does not sample again:
        the same id gives the same answer."""
        drawn = next_stamp()
        if self.sample_below < SAMPLE_SPACE and self._sampled_out(drawn[0]):
            return None
        return drawn

    def model_call_writer(
        self, common: Dict[str, Any]
    ) -> Callable[..., Optional[UUID]]:
        """A sender of model calls that share ``common`` (``model_name``,
        ``model_version``, ``tags``): their checks and bytes are made once,
        each call then costs its own ``input_data``, ``prediction`` and
        ``latency_ms`` only (as a bulk row's do). The integrations' hooks use
        it; anything the fast path does not take goes the reference way.
        ``trusted=True`` says that ``input_data`` and ``prediction`` are
        plain JSON the SDK built (finite numbers, ASCII text, no user keys):
        the denylist's walk over them is skipped."""
        write = self._row_writer(common) if common.keys() <= _SHARED_KEYS else None
        send = self._send_fast

        def send_call(
            drawn: Optional[Stamp],
            input_data: Any,
            prediction: Any,
            latency_ms: Any,
            trusted: bool = False,
        ) -> Optional[UUID]:
            row = {
                "input_data": input_data,
                "prediction": prediction,
                "latency_ms": latency_ms,
            }
            written = write(row, trusted) if write is not None else None
            if written is not None:
                sent = send(_MODEL_CALL, written[0], written[1], drawn)
                if sent is not _TOO_LARGE:
                    return sent  # type: ignore[no-any-return]
            return self.model_call({**_NO_ARGUMENTS, **common, **row}, drawn)

        return send_call

    def simple_model_call(
        self,
        model_name: Any,
        input_data: Any,
        prediction: Any,
        latency_ms: Any,
        trace_id: Any = None,
        span_id: Any = None,
        typed: Optional[Tuple[Any, Any, Any, Any, Any, Any]] = None,
    ) -> Optional[UUID]:
        """A model call with no more than these four arguments (the common
        call), and perhaps the current span's ids and ``typed``, its typed ML
        fields in :data:`TYPED_FIELDS` order: the name's bytes come from a
        per-client cache, the rest of the payload is the same for every such
        call but for the typed fields."""
        envelope = self._simple_envelope
        tail = self._success_tail
        if typed is not None and self.fast and envelope is not None:
            typed_bytes = typed_fields_bytes(*typed, self._embedding_dtype)
            if typed_bytes is None:
                envelope = None  # the reference path
            else:
                tail += typed_bytes
        if self.fast and envelope is not None:
            if trace_id is not None or span_id is not None:
                envelope = (
                    envelope + trace_fields(trace_id, span_id)
                    if _optional_name(trace_id, MAX_ID_LENGTH)
                    and _optional_name(span_id, MAX_ID_LENGTH)
                    else None
                )
            name_bytes = (
                self._simple_names.get(model_name) if type(model_name) is str else None
            )
            if name_bytes is None:
                name_bytes = self._simple_name(model_name)
            latency = latency_ms
            if latency is not None:
                latency = _non_negative_float(latency)
            leaves_alone = self.policy.leaves_alone
            if (
                name_bytes is not None
                and envelope is not None
                and (latency is not None or latency_ms is None)
                and leaves_alone(input_data)
                and leaves_alone(prediction)
            ):
                head, key = name_bytes
                rest = envelope + model_call_field(
                    head,
                    None if input_data is None else to_json(input_data),
                    None if prediction is None else to_json(prediction),
                    latency,
                    tail,
                )
                sent = self._send_fast(_MODEL_CALL, rest, key)
                if sent is not _TOO_LARGE:
                    return sent  # type: ignore[no-any-return]
        arguments = dict.fromkeys(MODEL_CALL_ARGUMENTS)
        arguments["model_name"] = model_name
        arguments["input_data"] = input_data
        arguments["prediction"] = prediction
        arguments["latency_ms"] = latency_ms
        arguments["trace_id"] = trace_id
        arguments["span_id"] = span_id
        if typed is not None:
            arguments.update(zip(TYPED_FIELDS, typed))
        return self._model_call_reference(arguments)

    def _simple_name(self, model_name: Any) -> Optional[Tuple[bytes, bytes]]:
        # (the payload's name field, the record key) of a valid model name,
        # remembered (bounded: names are few in practice).
        if not _name(model_name, MAX_NAME_LENGTH):
            return None
        head, _ = model_call_parts(model_name, None, CallStatus.SUCCESS, *[None] * 6)
        entry = head, model_name.encode()
        if len(self._simple_names) < 1024:
            self._simple_names[model_name] = entry
        return entry

    def _send_fast(
        self,
        event_type: EventType,
        rest: bytes,
        key: bytes,
        drawn: Optional[Stamp] = None,
    ) -> Any:
        """Stamps ``rest`` (an event's bytes after id and timestamp) with a
        new id and the time (or those ``drawn`` earlier), and submits it: the id, None
        when sampled out or dropped, or ``_TOO_LARGE`` (nothing sent: the
        reference path then makes the exact error)."""
        event_id, now_ns = next_stamp() if drawn is None else drawn
        if self.sample_below < SAMPLE_SPACE and self._sampled_out(event_id):
            return None
        raw_id = event_id.to_bytes(16, "big")
        seconds, nanos = divmod(now_ns // 1000, 1_000_000)
        value = stamp(raw_id, seconds, nanos * 1000) + rest
        if len(value) > self.encoder.max_event_bytes:
            return _TOO_LARGE
        record = _new_record(
            Record,
            (self._topics[event_type], key, value, self._headers(event_type, raw_id)),
        )
        return as_uuid(event_id) if self.submit(record) else None

    def _envelope(self, tags: Any) -> Optional[bytes]:
        """The envelope's source and tags bytes for an event with ``tags``
        (None: the client's), or None when the tags need the reference path."""
        if tags is None or (type(tags) is dict and not tags):
            return (
                self._source_bytes + self._default_tag_bytes
                if (self._default_tags_ok)
                else None
            )
        if type(tags) is not dict:
            return None
        # Calls often repeat the same tags (an integration's, a service's):
        # their bytes are remembered, keyed by the items, whose exact types
        # are checked on each hit (a str subclass compares equal to a str).
        items = tuple(tags.items())
        try:
            cached = self._tag_bytes.get(items)
        except TypeError:  # an unhashable value: not cacheable, and invalid
            return None
        if cached is not None:
            for name, value in items:
                if type(name) is not str or type(value) is not str:
                    return None
            return cached
        if self.default_tags:
            tags = {**self.default_tags, **tags}
        if not self._tags_ok(tags):
            return None
        envelope = self._source_bytes + tags_field(tags)
        if len(envelope) <= _MAX_CACHED_ENVELOPE:  # the cache's memory: < 1 MiB
            if len(self._tag_bytes) >= _MAX_CACHED_TAGS:
                self._tag_bytes.clear()
            self._tag_bytes[items] = envelope
        return envelope

    def metric(
        self,
        name: Any,
        value: Any,
        step: Any,
        run_id: Any,
        tags: Any,
        timestamp: Optional[dt.datetime],
    ) -> Optional[UUID]:
        """One metric (log_metric's arguments)."""
        if self.fast and timestamp is None:
            prepared = self._metric_bytes(name, value, step, run_id, tags)
            if prepared is not None:
                sent = self._send_fast(_METRIC, *prepared)
                if sent is not _TOO_LARGE:
                    return sent  # type: ignore[no-any-return]
        fields = {"name": name, "value": value, "step": step, "run_id": run_id}
        return self.emit(Metric, fields, tags, timestamp, None, None)

    def metrics(
        self,
        metrics: Mapping[Any, Any],
        step: Any,
        run_id: Any,
        tags: Any,
        timestamp: Optional[dt.datetime],
    ) -> List[UUID]:
        """Metrics measured together (log_metrics' arguments): one time for
        all, every one validated and encoded before the first is sent."""
        when_ns = None if timestamp is not None else next_stamp()[1]
        if self.fast and when_ns is not None and type(metrics) is dict:
            sent = self._metrics_fast(metrics, step, run_id, tags, when_ns)
            if sent is not None:
                return sent
        when = timestamp if when_ns is None else datetime_of(when_ns)
        try:
            built = [
                self.build(
                    Metric,
                    {"name": name, "value": value, "step": step, "run_id": run_id},
                    tags,
                    when,
                    None,
                    None,
                )
                for name, value in metrics.items()
            ]
            finished = [f for f in map(self.finish, built) if f is not None]
        except Exception as exc:
            raise in_item(exc, "", "metric") from None
        return [event.event_id for event, record in finished if self.submit(record)]

    def _metrics_fast(
        self,
        metrics: Dict[Any, Any],
        step: Any,
        run_id: Any,
        tags: Any,
        when_ns: int,
    ) -> Optional[List[UUID]]:
        # None: one of them needs the reference path (which then handles all).
        prepared = []
        for name, value in metrics.items():
            written = self._metric_bytes(name, value, step, run_id, tags)
            if written is None:
                return None
            prepared.append(written)
        seconds, micros = divmod(when_ns // 1000, 1_000_000)
        head = stamp(bytes(16), seconds, micros * 1000)
        if any(
            len(head) + len(rest) > self.encoder.max_event_bytes for rest, _ in prepared
        ):
            return None
        time_tail = head[len(EVENT_ID_PREFIX) + 16 :]
        event_ids, _ = reserve(len(prepared))
        sent: List[UUID] = []
        topic, headers = self._topics[_METRIC], self._headers
        sampling = self.sample_below < SAMPLE_SPACE
        for event_id, (rest, key) in zip(event_ids, prepared):
            if sampling and self._sampled_out(event_id):
                continue
            raw_id = event_id.to_bytes(16, "big")
            value = EVENT_ID_PREFIX + raw_id + time_tail + rest
            if self.submit(
                _new_record(Record, (topic, key, value, headers(_METRIC, raw_id)))
            ):
                sent.append(as_uuid(event_id))
        return sent

    def _metric_bytes(
        self, name: Any, value: Any, step: Any, run_id: Any, tags: Any
    ) -> Optional[Tuple[bytes, bytes]]:
        # Metric: Name, FiniteFloat (exact float, or an int float() keeps
        # exactly), optional NonNegativeInt and Identifier.
        kind = type(value)
        if kind is int and -_MAX_EXACT_FLOAT_INT <= value <= _MAX_EXACT_FLOAT_INT:
            value = float(value)
        elif kind is not float or value - value != 0.0:
            return None
        if not (
            _name(name, MAX_NAME_LENGTH)
            and _count(step)
            and _optional_name(run_id, MAX_ID_LENGTH)
        ):
            return None
        envelope = self._envelope(tags)
        if envelope is None:
            return None
        key = (run_id or name).encode()
        return envelope + write_metric(name, value, step, run_id), key

    def ground_truth(
        self,
        request_id: Any,
        actual: Any,
        model_name: Any,
        tags: Any,
        timestamp: Optional[dt.datetime],
        actual_label: Any = None,
        actual_score: Any = None,
    ) -> Optional[UUID]:
        """One ground truth (log_ground_truth's arguments)."""
        score = None if actual_score is None else finite_number(actual_score)
        if (
            self.fast
            and timestamp is None
            and (actual_label is None or plain_label(actual_label))
            and (actual_score is None or score is not None)
        ):
            envelope = (
                self._envelope(tags)
                if _name(request_id, MAX_ID_LENGTH)
                and _optional_name(model_name, MAX_NAME_LENGTH)
                and self.policy.leaves_alone(actual)
                else None
            )
            if envelope is not None:
                rest = envelope + write_ground_truth(
                    request_id,
                    None if actual is None else to_json(actual),
                    model_name,
                    actual_label,
                    score,
                )
                key = (model_name or request_id).encode()
                sent = self._send_fast(_GROUND_TRUTH, rest, key)
                if sent is not _TOO_LARGE:
                    return sent  # type: ignore[no-any-return]
        fields = {"request_id": request_id, "actual": actual, "model_name": model_name}
        if actual_label is not None:
            fields["actual_label"] = actual_label
        if actual_score is not None:
            fields["actual_score"] = actual_score
        return self.emit(GroundTruth, fields, tags, timestamp, None, None)

    def data_quality(
        self,
        dataset_name: Any,
        record_count: Any,
        null_count: Any,
        anomaly_score: Any,
        columns: Any,
        tags: Any,
        timestamp: Optional[dt.datetime],
        trace_id: Any,
        span_id: Any,
    ) -> Optional[UUID]:
        """One data-quality profile (log_data_quality's arguments); the fast
        path takes it when it has no column profiles."""
        if (
            self.fast
            and timestamp is None
            and (columns is None or (type(columns) is list and not columns))
            and _name(dataset_name, MAX_NAME_LENGTH)
            and type(record_count) is int
            and 0 <= record_count <= MAX_COUNT
            and type(null_count) is int
            and 0 <= null_count <= record_count
            and (
                anomaly_score is None
                or (type(anomaly_score) is float and 0.0 <= anomaly_score <= 1.0)
            )
            and _optional_name(trace_id, MAX_ID_LENGTH)
            and _optional_name(span_id, MAX_ID_LENGTH)
        ):
            envelope = self._envelope(tags)
            if envelope is not None:
                if trace_id is not None or span_id is not None:
                    envelope += trace_fields(trace_id, span_id)
                rest = envelope + write_data_quality(
                    dataset_name, record_count, null_count, anomaly_score
                )
                sent = self._send_fast(_DATA_QUALITY, rest, dataset_name.encode())
                if sent is not _TOO_LARGE:
                    return sent  # type: ignore[no-any-return]
        fields = {
            "dataset_name": dataset_name,
            "record_count": record_count,
            "null_count": null_count,
            "anomaly_score": anomaly_score,
        }
        if columns is not None:
            fields["columns"] = columns
        return self.emit(DataQuality, fields, tags, timestamp, trace_id, span_id)

    def job_run(
        self,
        job_name: Any,
        status: Any,
        run_id: Any,
        start_time: Any,
        end_time: Any,
        duration_ms: Any,
        error_type: Any,
        error_message: Any,
        metrics: Any,
        tags: Any,
        timestamp: Optional[dt.datetime],
    ) -> Optional[UUID]:
        """One job-run state (log_job_run's arguments); the fast path takes it
        when it names its run and gives its times, if any, in UTC."""
        if self.fast and timestamp is None:
            rest = self._job_run_bytes(
                job_name,
                status,
                run_id,
                start_time,
                end_time,
                duration_ms,
                error_type,
                error_message,
                metrics,
                tags,
            )
            if rest is not None:
                sent = self._send_fast(_JOB_RUN, rest, run_id.encode())
                if sent is not _TOO_LARGE:
                    return sent  # type: ignore[no-any-return]
        fields = {
            "job_name": job_name,
            "status": status,
            "start_time": start_time,
            "end_time": end_time,
            "duration_ms": duration_ms,
            "error_type": error_type,
            "error_message": error_message,
            "metrics": metrics,
        }
        if run_id is not None:
            fields["run_id"] = run_id
        return self.emit(JobRun, fields, tags, timestamp, None, None)

    def _job_run_bytes(
        self,
        job_name: Any,
        status: Any,
        run_id: Any,
        start_time: Any,
        end_time: Any,
        duration_ms: Any,
        error_type: Any,
        error_message: Any,
        metrics: Any,
        tags: Any,
    ) -> Optional[bytes]:
        # JobRun: Name, Identifier (given: the default is a new id), JobStatus
        # (member or its value), UTC datetimes as they are, NonNegativeFloat,
        # Identifier, a message short enough not to be cut, plain metrics.
        if type(status) is str:
            status = _JOB_STATUS_OF_TEXT.get(status)
        elif type(status) is not JobStatus:
            return None
        if status is None or not (
            _name(job_name, MAX_NAME_LENGTH)
            and _name(run_id, MAX_ID_LENGTH)
            and _optional_name(error_type, MAX_ID_LENGTH)
            and _utc_or_none(start_time)
            and _utc_or_none(end_time)
        ):
            return None
        if duration_ms is not None:
            duration_ms = _non_negative_float(duration_ms)
            if duration_ms is None:
                return None
        if start_time is not None and end_time is not None:
            if end_time < start_time:
                return None
            if duration_ms is None:  # as JobRun computes it
                duration_ms = (end_time - start_time).total_seconds() * 1000.0
        leaves_alone = self.policy.leaves_alone
        if error_message is not None and not (
            type(error_message) is str
            and len(error_message) <= MAX_ERROR_MESSAGE_LENGTH
            and leaves_alone(error_message)
        ):
            return None
        if not leaves_alone(metrics):
            return None
        envelope = self._envelope(tags)
        if envelope is None:
            return None
        return envelope + write_job_run(
            job_name,
            run_id,
            status,
            start_time,
            end_time,
            duration_ms,
            error_type,
            error_message,
            None if metrics is None else to_json(metrics),
        )

    def _model_call_reference(
        self, arguments: Dict[str, Any], drawn: Optional[Stamp] = None
    ) -> Optional[UUID]:
        fields = dict(arguments)
        tags = fields.pop("tags", None)
        timestamp = fields.pop("timestamp", None)
        trace_id = fields.pop("trace_id", None)
        span_id = fields.pop("span_id", None)
        # Only the arguments given: each None the model validates costs time.
        fields = {k: v for k, v in fields.items() if v is not None}
        if "embedding" in fields:
            fields["embedding_dtype"] = self.embedding_dtype
        if "status" not in fields:
            failed = "error_type" in fields or "error_message" in fields
            fields["status"] = CallStatus.ERROR if failed else CallStatus.SUCCESS
            if failed:
                fields.setdefault("error_type", None)
                fields.setdefault("error_message", None)
        if drawn is not None:
            fields["event_id"] = as_uuid(drawn[0])
            if timestamp is None:
                timestamp = datetime_of(drawn[1])
        return self.emit(ModelCall, fields, tags, timestamp, trace_id, span_id)

    # -- the bulk path -------------------------------------------------------------

    def model_calls(self, items: List[Any], common: Mapping[str, Any]) -> EventIds:
        """Many model calls: all validated and encoded before the first is sent.

        Two passes keep memory flat: the first validates each row and writes
        its bytes (everything but id and timestamp), the second reserves a
        block of ids under one lock, stamps them and sends. One timestamp,
        taken as the block is reserved, serves every row that has none of its
        own. Only bytes are held between the passes (no per-row objects the
        garbage collector tracks), except for rows the fast path cannot take,
        which are held as validated models.
        """
        prepared: List[Any] = []
        keys: List[bytes] = []
        all_bytes = True  # every row written by a fast path (none held as a model)
        row_writer = self._row_writer(common)
        for index, call in enumerate(items):
            if row_writer is not None and type(call) is dict:
                written = row_writer(call)
                if written is not None:
                    prepared.append(written[0])
                    keys.append(written[1])
                    continue
            try:
                if type(call) is not dict and not isinstance(call, Mapping):
                    raise ValidationError(
                        [
                            (
                                "",
                                "must be a mapping of log_model_call arguments, "
                                f"not {type(call).__name__}",
                            )
                        ]
                    )
                arguments = {**common, **call} if common else call
                fast = (
                    self._envelope_and_payload(arguments, True)
                    if self.fast
                    and type(arguments) is dict
                    and arguments.keys() <= _ARGUMENT_SET
                    else None
                )
                if fast is not None and self._fits(len(fast[0])):
                    prepared.append(fast[0])
                    keys.append(fast[1])
                else:
                    prepared.append(self._bulk_model(arguments))
                    keys.append(b"")
                    all_bytes = False
            except Exception as exc:
                raise in_item(exc, f"calls.{index}", "model_call") from None
        event_ids, now_ns = reserve(len(prepared))
        seconds, micros = divmod(now_ns // 1000, 1_000_000)
        nanos = micros * 1000
        # Every row's id and timestamp fields, but for the id's 16 bytes.
        time_tail = stamp(bytes(16), seconds, nanos)[len(EVENT_ID_PREFIX) + 16 :]
        sampling = self.sample_below < SAMPLE_SPACE
        topic, headers, submit = self._topic, self.encoder.headers, self.submit
        # The ids sent, 16 bytes each: no object per row (see EventIds).
        sent = bytearray()
        if all_bytes:
            # Nothing left that can fail: stamp and send in one pass.
            for index, event_id in enumerate(event_ids):
                if sampling and self._sampled_out(event_id):
                    continue
                raw_id = event_id.to_bytes(16, "big")
                value = EVENT_ID_PREFIX + raw_id + time_tail + prepared[index]
                prepared[index] = None  # hand it over, hold nothing per row
                record = _new_record(
                    Record, (topic, keys[index], value, headers(_MODEL_CALL, raw_id))
                )
                if submit(record):
                    sent += raw_id
            return EventIds(sent)
        batch_time = datetime_of(now_ns)
        for index, event_id in enumerate(event_ids):
            if sampling and self._sampled_out(event_id):
                prepared[index] = None
                continue
            part = prepared[index]
            if type(part) is bytes:
                prepared[index] = (
                    EVENT_ID_PREFIX + event_id.to_bytes(16, "big") + time_tail + part
                )
                continue
            event, own_time = part
            update: Dict[str, Any] = {"event_id": as_uuid(event_id)}
            if not own_time:
                update["timestamp"] = batch_time
            try:
                finished = self.finish(event.model_copy(update=update))
            except Exception as exc:
                raise in_item(exc, f"calls.{index}", "model_call") from None
            if finished is None:
                prepared[index] = None
            else:
                prepared[index] = finished[1].value
                keys[index] = finished[1].key
        for index, event_id in enumerate(event_ids):
            value = prepared[index]
            if value is None:
                continue
            prepared[index] = None  # hand it over, hold nothing per row
            raw_id = event_id.to_bytes(16, "big")
            record = _new_record(
                Record, (topic, keys[index], value, headers(_MODEL_CALL, raw_id))
            )
            if submit(record):
                sent += raw_id
        return EventIds(sent)

    def _row_writer(
        self, common: Mapping[str, Any]
    ) -> Optional[Callable[..., Optional[Tuple[bytes, bytes]]]]:
        """A writer for the common bulk row: a dict holding no more than
        ``input_data``, ``prediction`` and ``latency_ms`` (and typed ML
        fields, when ``common`` has none), over arguments ``common`` that all
        rows share (``model_name``, ``tags``...).

        ``common`` goes through the fast path's checks once; each row then
        costs only its own values. The writer returns a row's bytes
        (all but id and timestamp) and key, or None for a row it does not
        take (the general path takes it). None when ``common`` itself needs
        the general path.
        """
        if (
            not self.fast
            or type(common) is not dict
            or not common.keys() <= _COMMON_ARGUMENTS
        ):
            return None
        checked = self._checked(common, True)
        if checked is None:
            return None
        envelope, name, version, status, tail, typed = checked
        head, rest = model_call_parts(name, version, status, *tail)
        # A row may give typed fields of its own when the shared arguments
        # give none (else a row's would replace some: the general path).
        row_fields = _ROW_FIELDS if typed else _ROW_AND_TYPED_FIELDS
        rest += typed  # the typed fields are numbered after the tail's
        key = name.encode()
        leaves_alone = self.policy.leaves_alone
        limit = self.encoder.max_event_bytes - 37  # as _fits()
        dtype = self._embedding_dtype

        def write(
            row: Dict[str, Any], trusted: bool = False
        ) -> Optional[Tuple[bytes, bytes]]:
            # trusted: input_data and prediction are plain JSON built by the
            # SDK itself (an integration's summaries), so not walked again.
            keys = row.keys()
            if not keys <= row_fields:
                return None
            get = row.get
            row_tail = rest
            if not keys <= _ROW_FIELDS:
                row_typed = typed_fields_of(get, dtype)
                if row_typed is None:
                    return None
                row_tail = rest + row_typed
            input_data, prediction = get("input_data"), get("prediction")
            latency = get("latency_ms")
            if latency is not None:
                latency = _non_negative_float(latency)
                if latency is None:
                    return None
            if not trusted and not (
                leaves_alone(input_data) and leaves_alone(prediction)
            ):
                return None
            value = envelope + model_call_field(
                head,
                None if input_data is None else to_json(input_data),
                None if prediction is None else to_json(prediction),
                latency,
                row_tail,
            )
            return (value, key) if len(value) <= limit else None

        return write

    def _fits(self, rest_size: int) -> bool:
        # The id and timestamp add at most 18 + 19 bytes: a row this close to
        # the limit takes the reference path, which measures it exactly.
        return rest_size + 37 <= self.encoder.max_event_bytes

    def _bulk_model(self, arguments: Mapping[str, Any]) -> Tuple[Event, bool]:
        # Validated now; its id (and timestamp, unless given) are set with
        # the block's, so it takes none of its own.
        fields = dict(arguments)
        tags = fields.pop("tags", None)
        timestamp = fields.pop("timestamp", None)
        trace_id = fields.pop("trace_id", None)
        span_id = fields.pop("span_id", None)
        fields = {k: v for k, v in fields.items() if v is not None}
        if "embedding" in fields:
            fields["embedding_dtype"] = self.embedding_dtype
        if "status" not in fields:
            failed = fields.get("error_type") or fields.get("error_message")
            fields["status"] = CallStatus.ERROR if failed else CallStatus.SUCCESS
        fields["event_id"] = _PLACEHOLDER_ID
        own_time = timestamp is not None
        if not own_time:
            timestamp = _PLACEHOLDER_TIME
        event = self.build(ModelCall, fields, tags, timestamp, trace_id, span_id)
        return event, own_time


_ARGUMENT_SET = frozenset(MODEL_CALL_ARGUMENTS)
_NO_ARGUMENTS = dict.fromkeys(MODEL_CALL_ARGUMENTS)
# What model_call_writer()'s calls may share.
_SHARED_KEYS = frozenset(("model_name", "model_version", "tags"))
# Record's fields as one tuple, without the NamedTuple's Python-level __new__
# (0.25 us less per event).
_new_record = tuple.__new__
# What a bulk row's writer takes from each row, and what from the arguments
# all rows share (not a shared timestamp: rows without one get the batch's).
_ROW_FIELDS = frozenset(("input_data", "prediction", "latency_ms"))
_ROW_AND_TYPED_FIELDS = _ROW_FIELDS | frozenset(TYPED_FIELDS)
_COMMON_ARGUMENTS = _ARGUMENT_SET - _ROW_FIELDS - {"timestamp"}
_PLACEHOLDER_ID = UUID(int=0)
_PLACEHOLDER_TIME = _EPOCH


def in_item(exc: Exception, where: str, event_type: str) -> ValidationError:
    """``exc``, raised while an item of the caller's data was being processed,
    as a ValidationError whose field paths start with ``where``.

    Nothing but ValidationError leaves a ``log_*`` call for bad input. An
    exception that is not ours (the caller's object raised, or a limit was
    hit) is named by its type only: its text may echo the value.
    """
    if isinstance(exc, ValidationError):
        errors = exc.errors
        kind = exc.event_type or event_type
    elif isinstance(exc, VDTError):
        errors, kind = [("event", exc.message)], event_type
    elif isinstance(exc, RecursionError):
        errors = [("event", "nested too deeply (does a value refer to itself?)")]
        kind = event_type
    else:
        reason = f"could not be processed: {type(exc).__name__} raised on its data"
        errors, kind = [("event", reason)], event_type
    if not where:
        if isinstance(exc, ValidationError):
            return exc
        return ValidationError(errors, event_type=kind)
    return ValidationError(
        [(f"{where}.{field}" if field else where, reason) for field, reason in errors],
        event_type=kind,
    )
