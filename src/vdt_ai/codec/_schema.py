"""Field numbers of ``proto/vdt/ai/v1/events.proto``, by name.

The wire writers (:mod:`._wire`, :mod:`._payloads`) write protobuf bytes
without the generated code, so they need the numbers; this is the one place
that spells them. ``tests/unit/test_codec_wire.py`` checks every entry against
the generated descriptors, so a schema change that is not mirrored here fails
the tests instead of writing wrong bytes.
"""

from typing import Dict

# message name -> {field name -> number}
FIELDS: Dict[str, Dict[str, int]] = {
    "Timestamp": {"seconds": 1, "nanos": 2},
    "Source": {
        "service": 1,
        "environment": 2,
        "host": 3,
        "sdk_name": 4,
        "sdk_version": 5,
    },
    "Event": {
        "event_id": 1,
        "timestamp": 2,
        "source": 3,
        "tags": 4,
        "trace_id": 5,
        "span_id": 6,
        "model_call": 10,
        "data_quality": 11,
        "metric": 12,
        "ground_truth": 13,
        "job_run": 14,
        "data_profile": 15,
        "sdk_report": 16,
    },
    # A map<string, string> entry.
    "TagsEntry": {"key": 1, "value": 2},
    "ModelCall": {
        "model_name": 1,
        "model_version": 2,
        "input_data_json": 3,
        "prediction_json": 4,
        "latency_ms": 5,
        "status": 6,
        "error_type": 7,
        "error_message": 8,
        "request_id": 9,
        "prompt_tokens": 10,
        "completion_tokens": 11,
        "cost": 12,
        "prediction_label": 13,
        "prediction_score": 14,
        "class_probabilities": 15,
        "embedding": 16,
        "feature_importance": 17,
    },
    # An entry of ModelCall's map<string, double> fields (class_probabilities,
    # feature_importance).
    "DoubleEntry": {"key": 1, "value": 2},
    "Embedding": {"vector": 1, "dtype": 2, "name": 3},
    "ColumnProfile": {
        "name": 1,
        "dtype": 2,
        "null_count": 3,
        "distinct_count": 4,
        "min_json": 5,
        "max_json": 6,
        "mean": 7,
        "stddev": 8,
    },
    "DataQuality": {
        "dataset_name": 1,
        "record_count": 2,
        "null_count": 3,
        "anomaly_score": 4,
        "columns": 5,
    },
    "ColumnSketches": {
        "name": 1,
        "kind": 2,
        "count": 3,
        "null_count": 4,
        "min": 5,
        "max": 6,
        "mean": 7,
        "stddev": 8,
        "quantiles": 9,
        "distinct": 10,
        "frequent": 11,
    },
    "DataProfile": {
        "dataset_name": 1,
        "row_count": 2,
        "window_start": 3,
        "window_end": 4,
        "columns": 5,
        "kll_k": 6,
        "hll_lg_k": 7,
        "frequent_lg_max_k": 8,
    },
    "SdkReport": {
        "instance_id": 1,
        "pid": 2,
        "sequence": 3,
        "window_start": 4,
        "window_end": 5,
        "final": 6,
        "accepted": 7,
        "delivered": 8,
        "spooled": 9,
        "replayed": 10,
        "dropped": 11,
        "failed": 12,
        "filtered": 13,
        "sampled_out": 14,
        "integration_errors": 15,
        "quarantined": 16,
        "spool_bytes": 17,
        "dropped_by_reason": 18,
        "failed_by_reason": 19,
    },
    # An entry of SdkReport's map<string, int64> fields (*_by_reason).
    "Int64Entry": {"key": 1, "value": 2},
    "Metric": {"name": 1, "value": 2, "step": 3, "run_id": 4},
    "GroundTruth": {
        "request_id": 1,
        "actual_json": 2,
        "model_name": 3,
        "actual_label": 4,
        "actual_score": 5,
    },
    "JobRun": {
        "job_name": 1,
        "run_id": 2,
        "status": 3,
        "start_time": 4,
        "end_time": 5,
        "duration_ms": 6,
        "error_type": 7,
        "error_message": 8,
        "metrics_json": 9,
    },
    "SpoolRecord": {"topic": 1, "key": 2, "value": 3, "headers": 4},
    "Header": {"key": 1, "value": 2},
}

# enum name -> {value name -> number}
ENUMS: Dict[str, Dict[str, int]] = {
    "CallStatus": {"CALL_STATUS_SUCCESS": 1, "CALL_STATUS_ERROR": 2},
    "JobStatus": {
        "JOB_STATUS_STARTED": 1,
        "JOB_STATUS_SUCCEEDED": 2,
        "JOB_STATUS_FAILED": 3,
    },
    "EmbeddingDType": {"EMBEDDING_DTYPE_FLOAT32": 1, "EMBEDDING_DTYPE_FLOAT16": 2},
    "ColumnKind": {
        "COLUMN_KIND_NUMBER": 1,
        "COLUMN_KIND_STRING": 2,
        "COLUMN_KIND_BOOLEAN": 3,
        "COLUMN_KIND_DATETIME": 4,
        "COLUMN_KIND_OTHER": 5,
    },
}
