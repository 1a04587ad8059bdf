from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CALL_STATUS_ERROR: CallStatus
CALL_STATUS_SUCCESS: CallStatus
CALL_STATUS_UNSPECIFIED: CallStatus
COLUMN_KIND_BOOLEAN: ColumnKind
COLUMN_KIND_DATETIME: ColumnKind
COLUMN_KIND_NUMBER: ColumnKind
COLUMN_KIND_OTHER: ColumnKind
COLUMN_KIND_STRING: ColumnKind
COLUMN_KIND_UNSPECIFIED: ColumnKind
DESCRIPTOR: _descriptor.FileDescriptor
EMBEDDING_DTYPE_FLOAT16: EmbeddingDType
EMBEDDING_DTYPE_FLOAT32: EmbeddingDType
EMBEDDING_DTYPE_UNSPECIFIED: EmbeddingDType
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_STARTED: JobStatus
JOB_STATUS_SUCCEEDED: JobStatus
JOB_STATUS_UNSPECIFIED: JobStatus

class ColumnProfile(_message.Message):
    __slots__ = ["distinct_count", "dtype", "max_json", "mean", "min_json", "name", "null_count", "stddev"]
    DISTINCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_JSON_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MIN_JSON_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NULL_COUNT_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    distinct_count: int
    dtype: str
    max_json: bytes
    mean: float
    min_json: bytes
    name: str
    null_count: int
    stddev: float
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., null_count: _Optional[int] = ..., distinct_count: _Optional[int] = ..., min_json: _Optional[bytes] = ..., max_json: _Optional[bytes] = ..., mean: _Optional[float] = ..., stddev: _Optional[float] = ...) -> None: ...

class ColumnSketches(_message.Message):
    __slots__ = ["count", "distinct", "frequent", "kind", "max", "mean", "min", "name", "null_count", "quantiles", "stddev"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    FREQUENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NULL_COUNT_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    count: int
    distinct: bytes
    frequent: bytes
    kind: ColumnKind
    max: float
    mean: float
    min: float
    name: str
    null_count: int
    quantiles: bytes
    stddev: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ColumnKind, str]] = ..., count: _Optional[int] = ..., null_count: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., mean: _Optional[float] = ..., stddev: _Optional[float] = ..., quantiles: _Optional[bytes] = ..., distinct: _Optional[bytes] = ..., frequent: _Optional[bytes] = ...) -> None: ...

class DataProfile(_message.Message):
    __slots__ = ["columns", "dataset_name", "frequent_lg_max_k", "hll_lg_k", "kll_k", "row_count", "window_end", "window_start"]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    FREQUENT_LG_MAX_K_FIELD_NUMBER: _ClassVar[int]
    HLL_LG_K_FIELD_NUMBER: _ClassVar[int]
    KLL_K_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[ColumnSketches]
    dataset_name: str
    frequent_lg_max_k: int
    hll_lg_k: int
    kll_k: int
    row_count: int
    window_end: _timestamp_pb2.Timestamp
    window_start: _timestamp_pb2.Timestamp
    def __init__(self, dataset_name: _Optional[str] = ..., row_count: _Optional[int] = ..., window_start: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnSketches, _Mapping]]] = ..., kll_k: _Optional[int] = ..., hll_lg_k: _Optional[int] = ..., frequent_lg_max_k: _Optional[int] = ...) -> None: ...

class DataQuality(_message.Message):
    __slots__ = ["anomaly_score", "columns", "dataset_name", "null_count", "record_count"]
    ANOMALY_SCORE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    NULL_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    anomaly_score: float
    columns: _containers.RepeatedCompositeFieldContainer[ColumnProfile]
    dataset_name: str
    null_count: int
    record_count: int
    def __init__(self, dataset_name: _Optional[str] = ..., record_count: _Optional[int] = ..., null_count: _Optional[int] = ..., anomaly_score: _Optional[float] = ..., columns: _Optional[_Iterable[_Union[ColumnProfile, _Mapping]]] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ["dtype", "name", "vector"]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    dtype: EmbeddingDType
    name: str
    vector: bytes
    def __init__(self, vector: _Optional[bytes] = ..., dtype: _Optional[_Union[EmbeddingDType, str]] = ..., name: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ["data_profile", "data_quality", "event_id", "ground_truth", "job_run", "metric", "model_call", "sdk_report", "source", "span_id", "tags", "timestamp", "trace_id"]
    class TagsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_PROFILE_FIELD_NUMBER: _ClassVar[int]
    DATA_QUALITY_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    JOB_RUN_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MODEL_CALL_FIELD_NUMBER: _ClassVar[int]
    SDK_REPORT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    data_profile: DataProfile
    data_quality: DataQuality
    event_id: bytes
    ground_truth: GroundTruth
    job_run: JobRun
    metric: Metric
    model_call: ModelCall
    sdk_report: SdkReport
    source: Source
    span_id: str
    tags: _containers.ScalarMap[str, str]
    timestamp: _timestamp_pb2.Timestamp
    trace_id: str
    def __init__(self, event_id: _Optional[bytes] = ..., timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[_Union[Source, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., model_call: _Optional[_Union[ModelCall, _Mapping]] = ..., data_quality: _Optional[_Union[DataQuality, _Mapping]] = ..., metric: _Optional[_Union[Metric, _Mapping]] = ..., ground_truth: _Optional[_Union[GroundTruth, _Mapping]] = ..., job_run: _Optional[_Union[JobRun, _Mapping]] = ..., data_profile: _Optional[_Union[DataProfile, _Mapping]] = ..., sdk_report: _Optional[_Union[SdkReport, _Mapping]] = ...) -> None: ...

class GroundTruth(_message.Message):
    __slots__ = ["actual_json", "actual_label", "actual_score", "model_name", "request_id"]
    ACTUAL_JSON_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_LABEL_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    actual_json: bytes
    actual_label: str
    actual_score: float
    model_name: str
    request_id: str
    def __init__(self, request_id: _Optional[str] = ..., actual_json: _Optional[bytes] = ..., model_name: _Optional[str] = ..., actual_label: _Optional[str] = ..., actual_score: _Optional[float] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ["key", "value"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class JobRun(_message.Message):
    __slots__ = ["duration_ms", "end_time", "error_message", "error_type", "job_name", "metrics_json", "run_id", "start_time", "status"]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    METRICS_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    duration_ms: float
    end_time: _timestamp_pb2.Timestamp
    error_message: str
    error_type: str
    job_name: str
    metrics_json: bytes
    run_id: str
    start_time: _timestamp_pb2.Timestamp
    status: JobStatus
    def __init__(self, job_name: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[float] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., metrics_json: _Optional[bytes] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ["name", "run_id", "step", "value"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    run_id: str
    step: int
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., step: _Optional[int] = ..., run_id: _Optional[str] = ...) -> None: ...

class ModelCall(_message.Message):
    __slots__ = ["class_probabilities", "completion_tokens", "cost", "embedding", "error_message", "error_type", "feature_importance", "input_data_json", "latency_ms", "model_name", "model_version", "prediction_json", "prediction_label", "prediction_score", "prompt_tokens", "request_id", "status"]
    class ClassProbabilitiesEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class FeatureImportanceEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CLASS_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_JSON_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_LABEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    class_probabilities: _containers.ScalarMap[str, float]
    completion_tokens: int
    cost: float
    embedding: Embedding
    error_message: str
    error_type: str
    feature_importance: _containers.ScalarMap[str, float]
    input_data_json: bytes
    latency_ms: float
    model_name: str
    model_version: str
    prediction_json: bytes
    prediction_label: str
    prediction_score: float
    prompt_tokens: int
    request_id: str
    status: CallStatus
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., input_data_json: _Optional[bytes] = ..., prediction_json: _Optional[bytes] = ..., latency_ms: _Optional[float] = ..., status: _Optional[_Union[CallStatus, str]] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., request_id: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., prediction_label: _Optional[str] = ..., prediction_score: _Optional[float] = ..., class_probabilities: _Optional[_Mapping[str, float]] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ..., feature_importance: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SdkReport(_message.Message):
    __slots__ = ["accepted", "delivered", "dropped", "dropped_by_reason", "failed", "failed_by_reason", "filtered", "final", "instance_id", "integration_errors", "pid", "quarantined", "replayed", "sampled_out", "sequence", "spool_bytes", "spooled", "window_end", "window_start"]
    class DroppedByReasonEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class FailedByReasonEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FILTERED_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ERRORS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SAMPLED_OUT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SPOOLED_FIELD_NUMBER: _ClassVar[int]
    SPOOL_BYTES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    delivered: int
    dropped: int
    dropped_by_reason: _containers.ScalarMap[str, int]
    failed: int
    failed_by_reason: _containers.ScalarMap[str, int]
    filtered: int
    final: bool
    instance_id: str
    integration_errors: int
    pid: int
    quarantined: int
    replayed: int
    sampled_out: int
    sequence: int
    spool_bytes: int
    spooled: int
    window_end: _timestamp_pb2.Timestamp
    window_start: _timestamp_pb2.Timestamp
    def __init__(self, instance_id: _Optional[str] = ..., pid: _Optional[int] = ..., sequence: _Optional[int] = ..., window_start: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., final: bool = ..., accepted: _Optional[int] = ..., delivered: _Optional[int] = ..., spooled: _Optional[int] = ..., replayed: _Optional[int] = ..., dropped: _Optional[int] = ..., failed: _Optional[int] = ..., filtered: _Optional[int] = ..., sampled_out: _Optional[int] = ..., integration_errors: _Optional[int] = ..., quarantined: _Optional[int] = ..., spool_bytes: _Optional[int] = ..., dropped_by_reason: _Optional[_Mapping[str, int]] = ..., failed_by_reason: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ["environment", "host", "sdk_name", "sdk_version", "service"]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SDK_NAME_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    environment: str
    host: str
    sdk_name: str
    sdk_version: str
    service: str
    def __init__(self, service: _Optional[str] = ..., environment: _Optional[str] = ..., host: _Optional[str] = ..., sdk_name: _Optional[str] = ..., sdk_version: _Optional[str] = ...) -> None: ...

class SpoolRecord(_message.Message):
    __slots__ = ["headers", "key", "topic", "value"]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    key: bytes
    topic: str
    value: bytes
    def __init__(self, topic: _Optional[str] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ...) -> None: ...

class CallStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class EmbeddingDType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ColumnKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
