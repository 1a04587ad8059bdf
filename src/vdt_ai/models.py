"""Event models: what one ``log_*`` call becomes.

Every event shares an envelope (:class:`Event`): a time-ordered ``event_id``
(UUIDv7), a UTC ``timestamp``, the ``source`` it came from, ``tags`` and
optional trace ids. Each event type adds its payload fields.

Rules that hold for every model:

* **Timestamps** must be timezone-aware; they are converted to UTC. A naive
  ``datetime`` is rejected, because guessing its zone would silently shift data.
* **Numbers** must be finite (no NaN or infinity); strings and booleans are not
  accepted where a number is expected. numpy numbers are accepted. Counts
  (``record_count``, ``step``, tokens...) are 0 to ``2**63 - 1`` (int64).
* **Text** must be ``str`` (``bytes`` are refused, not decoded) and valid
  Unicode: a lone UTF-16 surrogate such as ``"\\ud800"`` cannot be sent as
  UTF-8 and is refused, in every field, tag and free-form value.
* **Names** (``model_name``, ``dataset_name``, metric and job names) are 1 to
  :data:`MAX_NAME_LENGTH` characters and not blank.
* **Free-form values** (``input_data``, ``prediction``, ``actual``, column
  ``min``/``max``, job ``metrics``) are converted to plain JSON values; see
  :mod:`vdt_ai._jsonlike` for what is converted and what is rejected.
* **Typed ML fields** of :class:`ModelCall` (``prediction_label``,
  ``prediction_score``, ``class_probabilities``, ``embedding``,
  ``embedding_name``, ``feature_importance``) and of :class:`GroundTruth`
  (``actual_label``, ``actual_score``): labels are text up to
  :data:`MAX_LABEL_LENGTH` characters, scores and importances finite numbers,
  probabilities 0.0 to 1.0 (at most :data:`MAX_CLASSES` classes; they need not
  sum to 1, for multi-label models), at most :data:`MAX_FEATURES` features. An
  empty mapping is the same as none (``None``). An ``embedding`` is a
  one-dimensional vector of 1 to :data:`MAX_EMBEDDING_DIMENSION` finite
  numbers (list, tuple, numpy array, CPU torch/TensorFlow tensor, anything
  with ``tolist()``); it is stored as packed float32 (or float16, see
  ``embedding_dtype``) and its values are rounded to that precision when the
  event is built, so what is decoded equals what was built.
* ``error_message`` longer than :data:`MAX_ERROR_MESSAGE_LENGTH` is cut and
  marked ``…[truncated]``: a long stack trace must not cost the event.

Invalid input raises :class:`vdt_ai.ValidationError` naming each field and
reason. Models are immutable; use ``event.model_copy(update=...)`` to change one.
"""

import datetime as dt
import math
import numbers
import struct
import sys
from enum import Enum
from typing import (
    Any,
    ClassVar,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
)
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from ._jsonlike import JSONLikeError, to_json_value, valid_text
from ._uuid7 import uuid7
from ._version import __version__
from .exceptions import ValidationError, problems_from_pydantic

if sys.version_info >= (3, 9):
    from typing import Annotated
else:  # pragma: no cover - exercised on 3.8 only
    from typing_extensions import Annotated

MAX_NAME_LENGTH = 256
MAX_ID_LENGTH = 128
MAX_TAGS = 64
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256
MAX_COLUMNS = 10_000
MAX_ERROR_MESSAGE_LENGTH = 16_384
MAX_COUNT = 2**63 - 1  # protobuf int64
MAX_LABEL_LENGTH = 1024
MAX_CLASSES = 1_000
MAX_FEATURES = 10_000
MAX_EMBEDDING_DIMENSION = 8192
MAX_PROFILE_COLUMNS = 1_000
MAX_SKETCH_BYTES = 65_536
TRUNCATION_MARK = "…[truncated]"

SDK_NAME = "vdt-ai"


def utc_now() -> dt.datetime:
    """The current time as a timezone-aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _plain_number(value: Any) -> Any:
    # Pydantic's lax mode would turn "45" into 45.0 and True into 1; for
    # monitoring data that hides bugs in the caller, so refuse both. NaN and
    # infinity are refused here too, with a message that says so.
    if isinstance(value, (str, bytes, bool)):
        raise PydanticCustomError(
            "number_type",
            "must be a number, not {kind}",
            {"kind": type(value).__name__},
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError(
            "finite_number", "must be a finite number, not {value}", {"value": value}
        )
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    try:
        offset = None if value.tzinfo is None else value.utcoffset()
    except Exception as exc:  # a tzinfo of the caller's that fails
        raise PydanticCustomError(
            "bad_tzinfo",
            "its tzinfo raised {error} in utcoffset()",
            {"error": type(exc).__name__},
        )
    if offset is None:
        raise PydanticCustomError(
            "naive_datetime",
            "must be timezone-aware (a naive datetime has no zone to convert "
            "from); use datetime.now(timezone.utc)",
        )
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range",
            "is outside the years 1-9999 once converted to UTC",
        )
    except Exception as exc:
        raise PydanticCustomError(
            "bad_tzinfo",
            "its tzinfo raised {error} while converting to UTC",
            {"error": type(exc).__name__},
        )


def _json_like(value: Any) -> Any:
    try:
        return to_json_value(value)
    except JSONLikeError as exc:
        raise PydanticCustomError("json_like", "{reason}", {"reason": str(exc)})


def _truncate_message(value: Optional[str]) -> Optional[str]:
    if value is not None and not valid_text(value):
        raise PydanticCustomError(
            "string_unicode",
            "holds a lone UTF-16 surrogate (not valid Unicode, cannot be sent as "
            "UTF-8)",
        )
    if value is not None and len(value) > MAX_ERROR_MESSAGE_LENGTH:
        keep = MAX_ERROR_MESSAGE_LENGTH - len(TRUNCATION_MARK)
        return value[:keep] + TRUNCATION_MARK
    return value


def _none_if_empty(value: Optional[Dict[str, float]]) -> Optional[Dict[str, float]]:
    # An empty map is not sent (protobuf cannot tell it from none).
    return value if value else None


def _vector_error(reason: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError("embedding", reason, context)


def _as_list(value: Any) -> Any:
    # numpy arrays, torch tensors (CPU), anything with tolist(); TensorFlow
    # tensors through numpy(). Nothing is imported here.
    if type(value) in (list, tuple):
        return value
    if isinstance(value, (str, bytes, bytearray, Mapping)) or isinstance(
        value, numbers.Number
    ):
        raise _vector_error(
            "must be a one-dimensional sequence of numbers, not {kind}",
            kind=type(value).__name__,
        )
    try:
        if hasattr(value, "tolist"):
            return value.tolist()
        if hasattr(value, "numpy"):
            return value.numpy().tolist()
        if hasattr(value, "__array__"):
            import numpy

            return numpy.asarray(value).tolist()
        return list(value)
    except Exception as exc:
        raise _vector_error(
            "could not be read as a vector ({error})", error=type(exc).__name__
        )


def _vector(value: Any) -> Optional[Tuple[float, ...]]:
    """An embedding as a tuple of finite floats (rounded later, to its dtype)."""
    if value is None:
        return None
    items = _as_list(value)
    if type(items) not in (list, tuple):
        raise _vector_error(
            "must be a one-dimensional sequence of numbers, not {kind}",
            kind=type(items).__name__,
        )
    size = len(items)
    if not 0 < size <= MAX_EMBEDDING_DIMENSION:
        raise _vector_error(
            "must have 1 to {limit} dimensions, not {size}",
            limit=MAX_EMBEDDING_DIMENSION,
            size=size,
        )
    try:
        floats = [x if type(x) is float else _vector_item(x) for x in items]
    except _BadItem as bad:
        raise _vector_error(
            "must hold numbers only, not {kind} (one-dimensional)", kind=str(bad)
        )
    if not all(map(math.isfinite, floats)):
        raise _vector_error("must hold finite numbers only (no NaN or infinity)")
    return tuple(floats)


class _BadItem(Exception):
    pass


def _vector_item(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _BadItem(type(value).__name__)
    return float(value)


# strict: bytes are not decoded into text. A length constraint makes
# pydantic-core read the text as UTF-8, which refuses lone surrogates.
Name = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_not_blank),
]
Identifier = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(_not_blank),
]
FiniteFloat = Annotated[
    float, BeforeValidator(_plain_number), Field(allow_inf_nan=False)
]
NonNegativeFloat = Annotated[
    float, BeforeValidator(_plain_number), Field(ge=0, allow_inf_nan=False)
]
NonNegativeInt = Annotated[
    int, BeforeValidator(_plain_number), Field(ge=0, le=MAX_COUNT)
]
UTCDateTime = Annotated[dt.datetime, AfterValidator(_utc)]
JSONLike = Annotated[Any, BeforeValidator(_json_like)]
ErrorMessage = Annotated[
    Optional[str], Field(strict=True), AfterValidator(_truncate_message)
]
TagKey = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=MAX_TAG_KEY_LENGTH),
]
TagValue = Annotated[
    str, Field(strict=True), StringConstraints(max_length=MAX_TAG_VALUE_LENGTH)
]
Label = Annotated[
    str, Field(strict=True), StringConstraints(max_length=MAX_LABEL_LENGTH)
]
ClassName = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=MAX_LABEL_LENGTH),
]
FeatureName = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH),
]
Probability = Annotated[
    float, BeforeValidator(_plain_number), Field(ge=0.0, le=1.0, allow_inf_nan=False)
]
ClassProbabilities = Annotated[
    Optional[Dict[ClassName, Probability]],
    Field(max_length=MAX_CLASSES),
    AfterValidator(_none_if_empty),
]
FeatureImportance = Annotated[
    Optional[Dict[FeatureName, FiniteFloat]],
    Field(max_length=MAX_FEATURES),
    AfterValidator(_none_if_empty),
]
Vector = Annotated[Optional[Tuple[float, ...]], PlainValidator(_vector)]
SourceText = Annotated[
    str, Field(strict=True), StringConstraints(max_length=MAX_NAME_LENGTH)
]


class EventType(str, Enum):
    """The kinds of event; each has its own Kafka topic."""

    MODEL_CALL = "model_call"
    DATA_QUALITY = "data_quality"
    METRIC = "metric"
    GROUND_TRUTH = "ground_truth"
    JOB_RUN = "job_run"
    DATA_PROFILE = "data_profile"
    SDK_REPORT = "sdk_report"


class CallStatus(str, Enum):
    """Outcome of a model call."""

    SUCCESS = "success"
    ERROR = "error"


class EmbeddingDType(str, Enum):
    """How an embedding's values are stored: 4 or 2 bytes each."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"


_PACK_FORMAT = {EmbeddingDType.FLOAT32: "f", EmbeddingDType.FLOAT16: "e"}


def pack_vector(vector: Tuple[float, ...], dtype: "EmbeddingDType") -> bytes:
    """``vector`` as packed little-endian values of ``dtype`` (the wire form).

    Raises:
        OverflowError: a value is beyond the dtype's range.
    """
    return struct.pack(f"<{len(vector)}{_PACK_FORMAT[dtype]}", *vector)


def unpack_vector(packed: bytes, dtype: "EmbeddingDType") -> Tuple[float, ...]:
    """The values of :func:`pack_vector`'s bytes."""
    size = 4 if dtype is EmbeddingDType.FLOAT32 else 2
    if len(packed) % size:
        raise ValueError(f"embedding of {len(packed)} bytes is not {dtype.value}")
    return struct.unpack(f"<{len(packed) // size}{_PACK_FORMAT[dtype]}", packed)


class ColumnKind(str, Enum):
    """What a profiled column holds (see :class:`ColumnSketches`)."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    OTHER = "other"


class JobStatus(str, Enum):
    """State of a job run."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=False,
        validate_default=False,
        hide_input_in_errors=True,
        # model_name/model_version are ours; older Pydantic warns about "model_".
        protected_namespaces=(),
        # Validators are built on first use, not at import: the client's fast
        # path sends the common calls without them (import vdt_ai -40%).
        defer_build=True,
    )


class Source(_Model):
    """Where events come from. The client fills it from its settings."""

    service: SourceText = ""
    environment: SourceText = ""
    host: SourceText = ""
    sdk_name: SourceText = SDK_NAME
    sdk_version: SourceText = __version__


class Event(_Model):
    """The envelope every event type shares.

    Attributes:
        event_id: unique id, a time-ordered UUIDv7 unless given.
        timestamp: when the event happened, timezone-aware UTC; defaults to now.
        source: service, environment, host and SDK version that sent it.
        tags: up to 64 string tags (keys 1-128 chars, values up to 256).
        trace_id: optional distributed-tracing trace id.
        span_id: optional distributed-tracing span id.
    """

    event_type: ClassVar[EventType]

    event_id: UUID = Field(default_factory=uuid7)
    timestamp: UTCDateTime = Field(default_factory=utc_now)
    source: Source = Field(default_factory=Source)
    tags: Dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS)
    trace_id: Optional[Identifier] = None
    span_id: Optional[Identifier] = None


class ModelCall(Event):
    """One call of a model: its input, output, latency and outcome.

    ``status`` defaults to ``error`` when ``error_type`` or ``error_message`` is
    given, else to ``success``.

    Attributes:
        prediction_label: the predicted class or label (text).
        prediction_score: the prediction's score (finite; a probability, a
            regression value, a ranking score...).
        class_probabilities: class -> probability (0.0 to 1.0), at most
            :data:`MAX_CLASSES` classes.
        embedding: a vector of 1 to :data:`MAX_EMBEDDING_DIMENSION` finite
            numbers, held as a tuple of floats rounded to ``embedding_dtype``.
        embedding_name: which embedding it is (``"text"``, ``"image"``...).
        embedding_dtype: ``float32`` (default when an embedding is given) or
            ``float16``; ``None`` without an embedding.
        feature_importance: feature -> importance for this prediction (e.g.
            SHAP values), at most :data:`MAX_FEATURES` features.
    """

    event_type: ClassVar[EventType] = EventType.MODEL_CALL

    model_name: Name
    model_version: Optional[Identifier] = None
    input_data: JSONLike = None
    prediction: JSONLike = None
    latency_ms: Optional[NonNegativeFloat] = None
    status: CallStatus = CallStatus.SUCCESS
    error_type: Optional[Identifier] = None
    error_message: ErrorMessage = None
    request_id: Optional[Identifier] = None
    prompt_tokens: Optional[NonNegativeInt] = None
    completion_tokens: Optional[NonNegativeInt] = None
    cost: Optional[NonNegativeFloat] = None
    prediction_label: Optional[Label] = None
    prediction_score: Optional[FiniteFloat] = None
    class_probabilities: ClassProbabilities = None
    embedding: Vector = None
    embedding_name: Optional[Name] = None
    embedding_dtype: Optional[EmbeddingDType] = None
    feature_importance: FeatureImportance = None

    @model_validator(mode="after")
    def _embedding_fits(self) -> "ModelCall":
        vector = self.embedding
        if vector is None:
            for name in ("embedding_name", "embedding_dtype"):
                if getattr(self, name) is not None:
                    raise PydanticCustomError(
                        "embedding_missing",
                        "{field} is given without an embedding",
                        {"field": name},
                    )
            return self
        dtype = self.embedding_dtype
        if dtype is None:
            dtype = EmbeddingDType.FLOAT32
            object.__setattr__(self, "embedding_dtype", dtype)
        try:
            rounded = unpack_vector(pack_vector(vector, dtype), dtype)
        except (OverflowError, struct.error):
            raise PydanticCustomError(
                "embedding_range",
                "holds a value beyond the {dtype} range",
                {"field": "embedding", "dtype": dtype.value},
            )
        if rounded != vector:
            object.__setattr__(self, "embedding", rounded)
        return self

    @model_validator(mode="before")
    @classmethod
    def _status_from_error(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("status") is None:
            failed = data.get("error_type") or data.get("error_message")
            return {
                **data,
                "status": CallStatus.ERROR if failed else CallStatus.SUCCESS,
            }
        return data


class ColumnProfile(_Model):
    """Statistics of one column of a dataset."""

    name: Name
    dtype: Optional[Identifier] = None
    null_count: Optional[NonNegativeInt] = None
    distinct_count: Optional[NonNegativeInt] = None
    min: JSONLike = None
    max: JSONLike = None
    mean: Optional[FiniteFloat] = None
    stddev: Optional[NonNegativeFloat] = None


class DataQuality(Event):
    """A data-quality profile of a dataset or batch.

    Attributes:
        record_count: number of records profiled (>= 0).
        null_count: number of records holding at least one null (0 to
            ``record_count``).
        anomaly_score: 0.0 (looks normal) to 1.0 (certainly anomalous), as
            judged by the caller's own detector; ``None`` when not scored.
        columns: optional per-column profiles; each column's ``null_count`` is
            at most ``record_count``.
    """

    event_type: ClassVar[EventType] = EventType.DATA_QUALITY

    dataset_name: Name
    record_count: NonNegativeInt
    null_count: NonNegativeInt = 0
    anomaly_score: Optional[
        Annotated[float, BeforeValidator(_plain_number), Field(ge=0.0, le=1.0)]
    ] = None
    columns: List[ColumnProfile] = Field(default_factory=list, max_length=MAX_COLUMNS)

    @model_validator(mode="after")
    def _counts_fit(self) -> "DataQuality":
        if self.null_count > self.record_count:
            raise PydanticCustomError(
                "null_count_too_large",
                "null_count ({nulls}) must not exceed record_count ({records})",
                {
                    "field": "null_count",
                    "nulls": self.null_count,
                    "records": self.record_count,
                },
            )
        for index, column in enumerate(self.columns):
            if column.null_count is not None and column.null_count > self.record_count:
                raise PydanticCustomError(
                    "null_count_too_large",
                    "column '{name}': null_count ({nulls}) must not exceed "
                    "record_count ({records})",
                    {
                        "field": f"columns.{index}.null_count",
                        "name": column.name,
                        "nulls": column.null_count,
                        "records": self.record_count,
                    },
                )
        return self


SketchBytes = Annotated[
    Optional[bytes], Field(strict=True, max_length=MAX_SKETCH_BYTES)
]


class ColumnSketches(_Model):
    """Mergeable sketches of one column of a :class:`DataProfile`.

    The sketches are Apache DataSketches' serialized binary forms, which its
    Python (``datasketches``), Java and C++ libraries read and merge.

    Attributes:
        kind: what the column holds (inferred from its type and values).
        count: non-null values.
        null_count: nulls (``None``, NaN, NaT; infinities count as nulls too).
        min: smallest value (numbers; datetimes as Unix seconds).
        max: largest value (numbers; datetimes as Unix seconds).
        mean: mean of the numbers.
        stddev: population standard deviation of the numbers.
        quantiles: a KLL doubles sketch (``kll_doubles_sketch``) of the
            numbers; ``None`` for other kinds.
        distinct: an HLL sketch (``hll_sketch``, HLL_4, compact) of the
            distinct values, every kind (numbers hashed as doubles, strings as
            UTF-8, booleans as ``"true"``/``"false"``).
        frequent: a frequent strings sketch (``frequent_strings_sketch``) of
            strings and booleans; ``None`` for other kinds.

    In JSON (``model_dump(mode="json")``, ``vdt-ai tail --json``) the sketches
    are base64 text.
    """

    model_config = ConfigDict(ser_json_bytes="base64")

    kind: ColumnKind
    count: NonNegativeInt = 0
    null_count: NonNegativeInt = 0
    min: Optional[FiniteFloat] = None
    max: Optional[FiniteFloat] = None
    mean: Optional[FiniteFloat] = None
    stddev: Optional[NonNegativeFloat] = None
    quantiles: SketchBytes = None
    distinct: SketchBytes = None
    frequent: SketchBytes = None

    @model_validator(mode="after")
    def _sketches_fit_kind(self) -> "ColumnSketches":
        if self.quantiles is not None and self.kind is not ColumnKind.NUMBER:
            raise PydanticCustomError(
                "sketch_kind",
                "quantiles are kept for numbers only, not {kind} columns",
                {"field": "quantiles", "kind": self.kind.value},
            )
        if self.frequent is not None and self.kind not in (
            ColumnKind.STRING,
            ColumnKind.BOOLEAN,
        ):
            raise PydanticCustomError(
                "sketch_kind",
                "frequent items are kept for strings and booleans only, not "
                "{kind} columns",
                {"field": "frequent", "kind": self.kind.value},
            )
        return self


ColumnName = Annotated[
    str,
    Field(strict=True),
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH),
]


class DataProfile(Event):
    """A mergeable profile of a dataset, a batch or a window of traffic.

    Built by :func:`vdt_ai.profiles.profile`; two profiles of the same
    dataset merge with :meth:`merge` (``profile(concat(a, b))`` and
    ``profile(a).merge(profile(b))`` agree: counts exactly, quantiles and
    distinct counts within the sketches' error bounds). Sent with
    :meth:`vdt_ai.VDTClient.log_data_profile` (topic
    ``<prefix>.data_profiles``, key the dataset name).

    Attributes:
        dataset_name: the dataset's name.
        row_count: rows profiled.
        columns: column name -> :class:`ColumnSketches`, at most
            :data:`MAX_PROFILE_COLUMNS`; for each, ``count + null_count ==
            row_count``.
        window_start: when the profiled data or window begins (UTC).
        window_end: when it ends (UTC), not before ``window_start``.
        kll_k: the KLL sketches' ``k`` (rank error about 1.3% at 200).
        hll_lg_k: the HLL sketches' log2(k) (relative error about 1.6% at 12).
        frequent_lg_max_k: the frequent items sketches' log2(max map size).
    """

    event_type: ClassVar[EventType] = EventType.DATA_PROFILE

    dataset_name: Name
    row_count: NonNegativeInt = 0
    columns: Dict[ColumnName, ColumnSketches] = Field(
        default_factory=dict, max_length=MAX_PROFILE_COLUMNS
    )
    window_start: Optional[UTCDateTime] = None
    window_end: Optional[UTCDateTime] = None
    kll_k: Annotated[int, BeforeValidator(_plain_number), Field(ge=8, le=65535)] = 200
    hll_lg_k: Annotated[int, BeforeValidator(_plain_number), Field(ge=4, le=21)] = 12
    frequent_lg_max_k: Annotated[
        int, BeforeValidator(_plain_number), Field(ge=3, le=20)
    ] = 7

    @model_validator(mode="after")
    def _counts_fit(self) -> "DataProfile":
        for name, column in self.columns.items():
            if column.count + column.null_count != self.row_count:
                raise PydanticCustomError(
                    "column_counts",
                    "column '{name}': count + null_count ({total}) must equal "
                    "row_count ({rows})",
                    {
                        "field": f"columns.{name}",
                        "name": name,
                        "total": column.count + column.null_count,
                        "rows": self.row_count,
                    },
                )
        start, end = self.window_start, self.window_end
        if start is not None and end is not None and end < start:
            raise PydanticCustomError(
                "end_before_start",
                "window_end must not be before window_start",
                {"field": "window_end"},
            )
        return self

    def merge(self, other: "DataProfile") -> "DataProfile":
        """This profile and ``other`` as one (needs ``vdt-ai[profiles]``).

        The result keeps this profile's name, envelope and sketch parameters;
        a column that only one side has counts the other side's rows as nulls.

        Raises:
            ImportError: ``datasketches`` or ``numpy`` is not installed.
            ValidationError: ``other`` is not a DataProfile, the sketch
                parameters differ, or a sketch cannot be read (it is a
                ValueError too).
        """
        from .profiles import merge_profiles

        return merge_profiles(self, other)


LEDGER_COUNTS = (
    "accepted",
    "delivered",
    "spooled",
    "replayed",
    "dropped",
    "failed",
    "filtered",
    "sampled_out",
    "integration_errors",
    "quarantined",
)


class SdkReport(Event):
    """The delivery ledger: what one client did since its previous report.

    Sent every ``ledger_interval_s`` and by ``close()`` to
    ``<prefix>.sdk_reports`` (key: ``instance_id``) when the client delivers
    to Kafka; the SDK version and host are in ``source``. Reports are never
    counted in the counts they carry, never sampled, never spooled (a lost
    one shows as a gap in ``sequence``).

    Attributes:
        instance_id: one client object in one process (random hex).
        pid: the process id.
        sequence: 1, 2, 3... per instance.
        window_start: the previous report's ``window_end`` (or when the
            client started).
        window_end: when these counts were read.
        final: ``True`` for the report ``close()`` sends.
        accepted: events accepted in the window, and likewise ``delivered``,
            ``spooled``, ``replayed``, ``dropped``, ``failed``, ``filtered``,
            ``sampled_out``, ``integration_errors`` and ``quarantined``
            (spool segments), as in :class:`vdt_ai.Stats`.
        spool_bytes: bytes the spool folder holds now.
        dropped_by_reason: ``dropped`` split by reason (reason -> count;
            its values sum to ``dropped``): ``"spool_full"`` (the spool
            reached ``spool_max_bytes``), ``"client_closed"`` (logged on, or
            racing, a closed client), ``"other"``.
        failed_by_reason: ``failed`` split by reason (values sum to
            ``failed``): ``"refused:<kafka error>"`` (Kafka refused the
            event for good, e.g. ``"refused:msg_size_too_large"``),
            ``"spool_write_error"``, ``"transport_error"`` (the transport
            raised), ``"before_send_error"`` (the hook raised),
            ``"before_send_invalid"`` (it returned what cannot be sent),
            ``"other"``.
    """

    event_type: ClassVar[EventType] = EventType.SDK_REPORT

    instance_id: Identifier
    pid: NonNegativeInt = 0
    sequence: NonNegativeInt = 0
    window_start: Optional[UTCDateTime] = None
    window_end: Optional[UTCDateTime] = None
    final: bool = False
    accepted: NonNegativeInt = 0
    delivered: NonNegativeInt = 0
    spooled: NonNegativeInt = 0
    replayed: NonNegativeInt = 0
    dropped: NonNegativeInt = 0
    failed: NonNegativeInt = 0
    filtered: NonNegativeInt = 0
    sampled_out: NonNegativeInt = 0
    integration_errors: NonNegativeInt = 0
    quarantined: NonNegativeInt = 0
    spool_bytes: NonNegativeInt = 0
    dropped_by_reason: Dict[Identifier, NonNegativeInt] = Field(default_factory=dict)
    failed_by_reason: Dict[Identifier, NonNegativeInt] = Field(default_factory=dict)


class Metric(Event):
    """One numeric measurement, e.g. a loss at a training step."""

    event_type: ClassVar[EventType] = EventType.METRIC

    name: Name
    value: FiniteFloat
    step: Optional[NonNegativeInt] = None
    run_id: Optional[Identifier] = None


class GroundTruth(Event):
    """The true outcome for an earlier prediction, joined by ``request_id``.

    Attributes:
        actual: the true value, free-form JSON.
        actual_label: the true class or label (text), typed.
        actual_score: the true numeric value (finite), typed.
    """

    event_type: ClassVar[EventType] = EventType.GROUND_TRUTH

    request_id: Identifier
    actual: JSONLike = None
    model_name: Optional[Name] = None
    actual_label: Optional[Label] = None
    actual_score: Optional[FiniteFloat] = None


class JobRun(Event):
    """A state change of a batch or training job.

    ``duration_ms`` is computed from ``start_time`` and ``end_time`` when both
    are given and it is not.
    """

    event_type: ClassVar[EventType] = EventType.JOB_RUN

    job_name: Name
    run_id: Identifier = Field(default_factory=lambda: str(uuid7()))
    status: JobStatus
    start_time: Optional[UTCDateTime] = None
    end_time: Optional[UTCDateTime] = None
    duration_ms: Optional[NonNegativeFloat] = None
    error_type: Optional[Identifier] = None
    error_message: ErrorMessage = None
    metrics: JSONLike = None

    @model_validator(mode="after")
    def _times_fit(self) -> "JobRun":
        if self.start_time is not None and self.end_time is not None:
            if self.end_time < self.start_time:
                raise PydanticCustomError(
                    "end_before_start",
                    "end_time must not be before start_time",
                    {"field": "end_time"},
                )
            if self.duration_ms is None:
                elapsed = (self.end_time - self.start_time).total_seconds() * 1000.0
                object.__setattr__(self, "duration_ms", elapsed)
        return self


EVENT_CLASSES: Dict[EventType, Type[Event]] = {
    cls.event_type: cls
    for cls in (
        ModelCall,
        DataQuality,
        Metric,
        GroundTruth,
        JobRun,
        DataProfile,
        SdkReport,
    )
}

E = TypeVar("E", bound=Event)


def build_event(cls: Type[E], fields: Dict[str, Any]) -> E:
    """Validates ``fields`` into a ``cls`` event.

    Raises:
        ValidationError: naming each bad field and why; no input is echoed.
    """
    try:
        return cls(**fields)
    except PydanticValidationError as exc:
        raise to_validation_error(exc, cls.event_type.value) from None
    except TypeError as exc:  # e.g. a keyword the model does not have
        raise ValidationError([("arguments", str(exc))], event_type=None) from None


def to_validation_error(
    exc: PydanticValidationError, event_type: Union[str, None]
) -> ValidationError:
    """Translates Pydantic's error into ours, without echoing input values."""
    return ValidationError(problems_from_pydantic(exc, "event"), event_type=event_type)
