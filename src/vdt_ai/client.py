"""VDTClient: the public entry point.

A ``log_*`` call validates its arguments into an event model, encodes it and
hands the record to the transport. Only bad input raises (a
:class:`vdt_ai.ValidationError`, with nothing recorded); a transport problem is
counted in :meth:`VDTClient.stats` and never reaches the caller.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time
import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Union,
)
from uuid import UUID

from . import _lifecycle, _log
from ._otel import OTEL_TRACE as _OTEL_TRACE
from ._otel import current_span_ids
from ._otel import modules as _modules
from ._redact import mask_api_key
from .exceptions import ValidationError, VDTError
from .transport import Counters, Stats, Transport

# Settings (pydantic), the event models, the codec and the pipeline load when
# the first client is made, not with ``from vdt_ai import VDTClient``: a
# program that imports the SDK at the top and logs later pays for them then.
if TYPE_CHECKING:
    from ._uuid7 import EventIds
    from .config import Settings
    from .models import CallStatus, ColumnProfile, DataProfile, Event, JobStatus


class OfflineModeWarning(UserWarning):
    """No Kafka brokers are configured: events are kept in the local spool."""


_offline_noticed: Set[str] = set()


class VDTClient:
    """Logs monitoring events to the VDT AI platform.

    Args:
        api_key: ``vdt_<key id>_<secret>``; default from the environment
            (``VDT_AI_API_KEY``) or the config file.
        transport: where records go; default Kafka when ``bootstrap_servers``
            is set, else the local spool (offline mode). Tests pass
            :class:`vdt_ai.testing.MemoryTransport`.
        on_error: called from a background thread with a
            :class:`vdt_ai.VDTError` (``AuthenticationError``,
            ``AuthorizationError``, ``TransportError``) for each kind of
            delivery problem. It must return quickly; what it raises is ignored.
        before_send: called with each event after sampling and the data policy,
            before it is encoded: return the event (or an edited copy,
            ``event.model_copy(update=...)``) to send it, ``None`` to drop it
            (counted ``filtered``). If it raises, or returns an edited copy
            that fails validation or encoding, the event is dropped and
            counted ``failed`` (never raised to the caller).
        **settings: any :class:`vdt_ai.config.Settings` field, plus
            ``config_file`` and ``profile`` to choose the config file and
            profile. Keyword arguments win over environment and file.

    Raises:
        ConfigError: a setting is unknown or invalid (the key is never shown).

    Example::

        client = VDTClient(api_key="vdt_...")
        client.log_model_call(model_name="recommendation_model",
                              input_data={"user_id": 123},
                              prediction={"items": [1, 2, 3]}, latency_ms=45)
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        transport: Optional[Transport] = None,
        on_error: Optional[Callable[[VDTError], None]] = None,
        before_send: Optional[Callable[[Event], Optional[Event]]] = None,
        **settings: Any,
    ) -> None:
        if api_key is not None:
            settings["api_key"] = api_key
        from ._ledger import Ledger
        from ._pipeline import Pipeline
        from .codec import Encoder
        from .config import load_settings
        from .models import Source
        from .policy import DataPolicy

        config_file = settings.pop("config_file", None)
        profile = settings.pop("profile", None)
        self._settings: Settings = load_settings(
            config_file=config_file, profile=profile, **settings
        )
        s = self._settings
        _log.configure(s.log_level)
        self._counters = Counters()
        self._closed = False
        self._close_lock = threading.RLock()  # re-entrant: see _lifecycle
        self._enabled = s.enabled
        import socket  # here: ~15 ms of import vdt_ai otherwise

        self._transport = (
            transport
            if transport is not None
            else _default_transport(s, self._counters, on_error)
        )
        self._pipeline = Pipeline(
            source=Source(
                service=s.service,
                environment=s.environment,
                host=socket.gethostname(),
            ),
            default_tags=dict(s.tags),
            sample_rate=s.sample_rate,
            policy=DataPolicy(
                s.data_policy,
                s.hash_salt.get_secret_value() if s.hash_salt is not None else None,
            ),
            before_send=before_send,
            encoder=Encoder(s.topic_prefix, s.api_key_id, s.max_event_bytes),
            transport=self._transport,
            counters=self._counters,
            embedding_dtype=s.embedding_dtype,
        )
        # Rolling profiles of model calls (profile_model), by model name.
        self._profilers: Dict[str, Any] = {}
        # The delivery ledger: SdkReport events, over Kafka only.
        self._ledger: Optional[Ledger] = None
        if (
            s.ledger_interval_s > 0
            and self._enabled
            and Ledger.supported(self._transport)
        ):
            self._ledger = Ledger(
                self._counters,
                self._transport,
                self._pipeline.encoder,
                self._pipeline.source,
                s.ledger_interval_s,
            )
            self._ledger.start()
        # The pipeline's steps, as the log_* methods use them.
        self._emit = self._pipeline.emit
        self._build = self._pipeline.build
        self._finish = self._pipeline.finish
        self._submit = self._pipeline.submit
        _lifecycle.register(self)
        _log.debug(
            "client started",
            transport=type(self._transport).__name__,
            enabled=self._enabled,
        )

    # -- public calls --------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The resolved settings (the API key masked in its repr)."""
        return self._settings

    @property
    def shutdown_timeout(self) -> float:
        """Seconds ``flush()``/``close()`` wait by default, and exit waits."""
        return self._settings.shutdown_timeout

    @property
    def transport(self) -> Transport:
        """The transport records are handed to."""
        return self._transport

    def log_model_call(
        self,
        model_name: str,
        input_data: Any = None,
        prediction: Any = None,
        latency_ms: Optional[float] = None,
        *,
        model_version: Optional[str] = None,
        status: Union[CallStatus, str, None] = None,
        error_type: Optional[str] = None,
        error_message: Optional[str] = None,
        request_id: Optional[str] = None,
        prompt_tokens: Optional[int] = None,
        completion_tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
        trace_id: Optional[str] = None,
        span_id: Optional[str] = None,
        prediction_label: Optional[str] = None,
        prediction_score: Optional[float] = None,
        class_probabilities: Optional[Mapping[str, float]] = None,
        embedding: Any = None,
        embedding_name: Optional[str] = None,
        feature_importance: Optional[Mapping[str, float]] = None,
    ) -> Optional[UUID]:
        """Logs one call of a model.

        Args:
            model_name: the model's name (1-256 characters).
            input_data: the input, JSON-like (numpy, pandas timestamps,
                datetime, Decimal, UUID and bytes are converted).
            prediction: the output, JSON-like.
            latency_ms: how long the call took, finite and >= 0.
            model_version: the model's version.
            status: ``"success"`` or ``"error"``; default ``"error"`` when
                ``error_type`` or ``error_message`` is given.
            error_type: the exception class name of a failed call.
            error_message: the error text (cut at 16 KiB).
            request_id: joins later :meth:`log_ground_truth` calls.
            prompt_tokens: LLM prompt tokens used.
            completion_tokens: LLM completion tokens used.
            cost: the call's cost, in the caller's currency unit.
            tags: extra string tags for this event.
            timestamp: when it happened (timezone-aware); default now.
            trace_id: distributed-tracing trace id; when neither id is given,
                the current OpenTelemetry span's (if the program uses
                OpenTelemetry and a valid span is current).
            span_id: distributed-tracing span id (see ``trace_id``).
            prediction_label: the predicted class or label, text (up to 1,024
                characters).
            prediction_score: the prediction's score, a finite number.
            class_probabilities: class -> probability, each 0.0 to 1.0, up to
                1,000 classes (need not sum to 1).
            embedding: a one-dimensional vector of 1 to 8,192 finite numbers:
                a list, tuple, numpy array, or CPU torch/TensorFlow tensor. It
                is sent as packed float32 (float16 with the setting
                ``embedding_dtype="float16"``), rounded to that precision.
            embedding_name: which embedding it is, e.g. ``"text"``.
            feature_importance: feature -> importance of this prediction
                (e.g. SHAP values), finite numbers, up to 10,000 features.

        Returns:
            The event id, or ``None`` when the client is disabled or the event
            was sampled out.

        Raises:
            ValidationError: an argument is invalid; nothing was recorded.
        """
        if not self._enabled:
            return None
        if trace_id is None and span_id is None and _OTEL_TRACE in _modules:
            trace_id, span_id = current_span_ids() or (None, None)
        if (
            model_version is None
            and status is None
            and error_type is None
            and error_message is None
            and request_id is None
            and prompt_tokens is None
            and completion_tokens is None
            and cost is None
            and tags is None
            and timestamp is None
        ):
            # The common call: name, input, prediction, latency (and the
            # current span's ids, under OpenTelemetry), perhaps typed fields.
            typed = (
                None
                if prediction_label is None
                and prediction_score is None
                and class_probabilities is None
                and embedding is None
                and embedding_name is None
                and feature_importance is None
                else (
                    prediction_label,
                    prediction_score,
                    class_probabilities,
                    embedding,
                    embedding_name,
                    feature_importance,
                )
            )
            sent = self._pipeline.simple_model_call(
                model_name,
                input_data,
                prediction,
                latency_ms,
                trace_id,
                span_id,
                typed,
            )
        else:
            sent = self._pipeline.model_call(
                {
                    "model_name": model_name,
                    "input_data": input_data,
                    "prediction": prediction,
                    "latency_ms": latency_ms,
                    "model_version": model_version,
                    "status": status,
                    "error_type": error_type,
                    "error_message": error_message,
                    "request_id": request_id,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "cost": cost,
                    "tags": tags,
                    "timestamp": timestamp,
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "prediction_label": prediction_label,
                    "prediction_score": prediction_score,
                    "class_probabilities": class_probabilities,
                    "embedding": embedding,
                    "embedding_name": embedding_name,
                    "feature_importance": feature_importance,
                }
            )
        if self._profilers:  # after validation; before sampling counts it out
            profiler = self._profilers.get(model_name)
            if profiler is not None:
                profiler.observe(
                    input_data, prediction, prediction_label, prediction_score
                )
        return sent

    def log_model_calls(
        self,
        calls: Sequence[Mapping[str, Any]],
        **common: Any,
    ) -> EventIds:
        """Logs many model calls at once (the bulk path, e.g. sampled rows).

        Each item holds :meth:`log_model_call`'s arguments (the typed ML
        fields included: ``prediction_label``, ``embedding``...); ``common`` holds
        arguments shared by all (``model_name``, ``tags``, ...), which an item
        may override. All are validated and encoded before the first is sent:
        one bad item records none.

        Returns:
            The ids of the events sent, in order (empty when disabled): an
            :class:`~vdt_ai.EventIds`, a read-only sequence of ``UUID`` that
            holds 16 bytes an id and makes each ``UUID`` when read (equal to
            a list of the same ids; ``list(ids)`` gives one).

        Raises:
            ValidationError: an item is invalid (its index is in the field name).
        """
        if not self._enabled:
            from ._uuid7 import EventIds

            return EventIds()
        items = _bulk_items(calls)
        if _span_ids_into(common):
            items = [_own_ids_only(item) for item in items]
        sent = self._pipeline.model_calls(items, common)
        if self._profilers:  # every item was valid (else it raised)
            for item in items:
                row = {**common, **item}
                profiler = self._profilers.get(str(row.get("model_name")))
                if profiler is not None:
                    profiler.observe(
                        row.get("input_data"),
                        row.get("prediction"),
                        row.get("prediction_label"),
                        row.get("prediction_score"),
                    )
        return sent

    def log_predictions(
        self,
        data: Any,
        *,
        model_name: str,
        prediction_column: Optional[str] = None,
        label_column: Optional[str] = None,
        score_column: Optional[str] = None,
        probability_columns: Union[Sequence[str], Mapping[str, str], None] = None,
        embedding_column: Optional[str] = None,
        embedding_name: Optional[str] = None,
        feature_importance_columns: Union[
            Sequence[str], Mapping[str, str], None
        ] = None,
        request_id_column: Optional[str] = None,
        timestamp_column: Optional[str] = None,
        latency_column: Optional[str] = None,
        input_columns: Optional[Sequence[str]] = None,
        model_version: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> int:
        """Logs one model call per row of a table of predictions.

        The table is read a chunk of rows at a time, column by column (no
        per-row pandas access), and every cell is checked before the first
        event is recorded. NaN in an input or prediction column is a missing
        value (``null``); NaN in a score, probability or latency column is an
        error. pandas, pyarrow and polars are used only when such an object is
        passed (never imported otherwise).

        Args:
            data: a pandas or polars DataFrame, a pyarrow Table or RecordBatch,
                or a list of dicts (one per row).
            model_name: the model's name, shared by every row.
            prediction_column: a free-form (JSON-like) prediction per row.
            label_column: the predicted label (text; None/NaN = no label).
            score_column: the prediction's score (finite numbers).
            probability_columns: class probability columns (0.0 to 1.0): a
                list of column names (each name is the class) or a mapping
                class -> column.
            embedding_column: a vector per row (list, numpy array, CPU
                torch/TensorFlow tensor...), stored as the ``embedding_dtype``
                setting says.
            embedding_name: the name of every row's embedding (``"text"``...);
                needs ``embedding_column``.
            feature_importance_columns: per-row feature importance columns
                (finite numbers, e.g. SHAP values): a list of column names
                (each name is the feature) or a mapping feature -> column.
            request_id_column: ids to join ground truth later.
            timestamp_column: timezone-aware datetimes; default the call's time.
            latency_column: latency in milliseconds (finite, >= 0).
            input_columns: the columns of ``input_data``; default every column
                not named in another role.
            model_version: the model's version, shared by every row.
            tags: string tags added to every event.

        Returns:
            The number of events recorded (rows sampled out or dropped by
            ``before_send`` are not counted; 0 when disabled).

        Raises:
            ValidationError: a bad cell (its path is ``data.<row>.<column>``),
                an unknown column or a bad shared argument; nothing was
                recorded.

        Example::

            client.log_predictions(df, model_name="churn",
                                   label_column="label", score_column="score")
        """
        if not self._enabled:
            return 0
        from ._predictions import log_predictions

        return log_predictions(
            self._pipeline,
            data,
            model_name,
            model_version,
            tags,
            prediction_column=prediction_column,
            label_column=label_column,
            score_column=score_column,
            probability_columns=probability_columns,
            embedding_column=embedding_column,
            embedding_name=embedding_name,
            feature_importance_columns=feature_importance_columns,
            request_id_column=request_id_column,
            timestamp_column=timestamp_column,
            latency_column=latency_column,
            input_columns=input_columns,
        )

    def log_data_quality(
        self,
        dataset_name: str,
        record_count: int,
        null_count: int = 0,
        anomaly_score: Optional[float] = None,
        *,
        columns: Optional[Sequence[Union[ColumnProfile, Mapping[str, Any]]]] = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
        trace_id: Optional[str] = None,
        span_id: Optional[str] = None,
    ) -> Optional[UUID]:
        """Logs a data-quality profile of a dataset or batch.

        Args:
            dataset_name: the dataset's name.
            record_count: records profiled, >= 0.
            null_count: records holding at least one null, 0 to record_count.
            anomaly_score: 0.0 (normal) to 1.0 (anomalous).
            columns: per-column profiles (:class:`ColumnProfile` or dicts with
                name, dtype, null_count, distinct_count, min, max, mean, stddev).
            tags: extra string tags for this event.
            timestamp: when it was measured (timezone-aware); default now.
            trace_id: distributed-tracing trace id; when neither id is given,
                the current OpenTelemetry span's (if the program uses
                OpenTelemetry and a valid span is current).
            span_id: distributed-tracing span id (see ``trace_id``).

        Returns:
            The event id, or ``None`` when disabled or sampled out.

        Raises:
            ValidationError: an argument is invalid; nothing was recorded.
        """
        if not self._enabled:
            return None
        if trace_id is None and span_id is None and _OTEL_TRACE in _modules:
            trace_id, span_id = current_span_ids() or (None, None)
        return self._pipeline.data_quality(
            dataset_name,
            record_count,
            null_count,
            anomaly_score,
            columns,
            tags,
            timestamp,
            trace_id,
            span_id,
        )

    def log_data_profile(
        self,
        dataset_name: str,
        data_or_profile: Any,
        *,
        columns: Optional[Sequence[str]] = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
        trace_id: Optional[str] = None,
        span_id: Optional[str] = None,
    ) -> Optional[UUID]:
        """Logs a mergeable data profile (DataSketches) of a dataset or batch.

        Topic ``<prefix>.data_profiles``, key ``dataset_name``. Profiling needs
        ``pip install 'vdt-ai[profiles]'``; see :mod:`vdt_ai.profiles`.

        Args:
            dataset_name: the dataset's name (replaces the profile's own).
            data_or_profile: a :class:`DataProfile` (e.g. merged from
                partitions), or a table :func:`vdt_ai.profiles.profile` reads
                (pandas, pyarrow, polars, numpy, a list of dicts).
            columns: the columns to profile (a table only; default all).
            tags: extra string tags for this event.
            timestamp: when it was measured (timezone-aware); default now.
            trace_id: distributed-tracing trace id.
            span_id: distributed-tracing span id.

        Returns:
            The event id, or ``None`` when disabled or sampled out.

        Raises:
            ValidationError: an argument is invalid or the profile is larger
                than ``max_event_bytes``; nothing was recorded.
            ImportError: a table was given without ``vdt-ai[profiles]``.
        """
        if not self._enabled:
            return None
        from .models import DataProfile, Event

        if isinstance(data_or_profile, DataProfile):
            if columns is not None:
                raise ValidationError(
                    [("columns", "applies to a table, not to a built profile")],
                    event_type=DataProfile.event_type.value,
                )
            built = data_or_profile
        else:
            from .profiles import profile

            built = profile(data_or_profile, columns=columns)
        fields = {
            name: getattr(built, name)
            for name in DataProfile.model_fields
            if name not in Event.model_fields
        }
        fields["dataset_name"] = dataset_name
        return self._emit(DataProfile, fields, tags, timestamp, trace_id, span_id)

    def profile_model(self, model_name: str, interval_s: float = 60.0) -> Any:
        """Profiles every logged call of ``model_name``, one DataProfile a window.

        From now on each :meth:`log_model_call` (and bulk row) of the model
        adds its flattened ``input_data`` leaves (``input.<key path>``),
        ``prediction`` leaves and typed ``prediction_label`` /
        ``prediction_score`` to in-process sketches, *before* sampling: the
        profile counts every call while raw events may be sampled. Every
        ``interval_s`` seconds (from a background thread) and at
        :meth:`close`, the window's profile is sent with
        :meth:`log_data_profile` (dataset name = the model name, tag
        ``vdt_profile=model_calls``). Needs ``vdt-ai[profiles]``.

        Args:
            model_name: the model whose calls are profiled.
            interval_s: seconds per window (> 0).

        Returns:
            The model's :class:`vdt_ai.profiles.RollingProfile` (the same one
            when called again).

        Raises:
            ImportError: ``datasketches`` or ``numpy`` is not installed.
            ValidationError: ``interval_s`` is not a positive number.
        """
        existing = self._profilers.get(model_name)
        if existing is not None:
            return existing
        if (
            isinstance(interval_s, bool)
            or not isinstance(interval_s, (int, float))
            or not 0 < interval_s < float("inf")
        ):
            raise ValidationError([("interval_s", "must be a positive number")])
        from .profiles import RollingProfile

        def send(name: str, built: DataProfile) -> None:
            self.log_data_profile(name, built, tags={"vdt_profile": "model_calls"})

        profiler = RollingProfile(
            model_name, float(interval_s), send, self.report_integration_error
        )
        self._profilers = {**self._profilers, model_name: profiler}
        return profiler

    def log_metric(
        self,
        name: str,
        value: float,
        *,
        step: Optional[int] = None,
        run_id: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
    ) -> Optional[UUID]:
        """Logs one numeric metric.

        Args:
            name: the metric's name, e.g. ``"val_loss"``.
            value: a finite number.
            step: training step or epoch, >= 0.
            run_id: the run the metric belongs to (also the Kafka key).
            tags: extra string tags for this event.
            timestamp: when it was measured (timezone-aware); default now.

        Returns:
            The event id, or ``None`` when disabled or sampled out.

        Raises:
            ValidationError: an argument is invalid; nothing was recorded.
        """
        if not self._enabled:
            return None
        return self._pipeline.metric(name, value, step, run_id, tags, timestamp)

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        *,
        step: Optional[int] = None,
        run_id: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
    ) -> List[UUID]:
        """Logs several metrics measured together, as one Metric event each.

        All are validated first: if one is invalid, none is recorded.

        Args:
            metrics: name -> finite number.
            step: training step or epoch, >= 0, shared by all.
            run_id: the run they belong to.
            tags: extra string tags for each event.
            timestamp: when they were measured; default now, shared by all.

        Returns:
            The ids of the events sent (empty when disabled).

        Raises:
            ValidationError: a name or value is invalid; nothing was recorded.
        """
        if not self._enabled:
            return []
        if not isinstance(metrics, Mapping):
            raise ValidationError(
                [("metrics", "must be a mapping of name to number")],
                event_type="metric",
            )
        return self._pipeline.metrics(metrics, step, run_id, tags, timestamp)

    def log_ground_truth(
        self,
        request_id: str,
        actual: Any = None,
        *,
        model_name: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
        actual_label: Optional[str] = None,
        actual_score: Optional[float] = None,
    ) -> Optional[UUID]:
        """Logs the true outcome for an earlier model call.

        Args:
            request_id: the ``request_id`` given to :meth:`log_model_call`.
            actual: the true value, JSON-like.
            model_name: the model that made the prediction.
            actual_label: the true class or label (compare with the call's
                ``prediction_label``), text up to 1,024 characters.
            actual_score: the true numeric value (compare with
                ``prediction_score``), a finite number.
            tags: extra string tags for this event.
            timestamp: when the outcome was known; default now.

        Returns:
            The event id, or ``None`` when disabled or sampled out.

        Raises:
            ValidationError: an argument is invalid; nothing was recorded.
        """
        if not self._enabled:
            return None
        return self._pipeline.ground_truth(
            request_id, actual, model_name, tags, timestamp, actual_label, actual_score
        )

    def log_job_run(
        self,
        job_name: str,
        status: Union[JobStatus, str],
        *,
        run_id: Optional[str] = None,
        start_time: Optional[dt.datetime] = None,
        end_time: Optional[dt.datetime] = None,
        duration_ms: Optional[float] = None,
        error_type: Optional[str] = None,
        error_message: Optional[str] = None,
        metrics: Any = None,
        tags: Optional[Mapping[str, str]] = None,
        timestamp: Optional[dt.datetime] = None,
    ) -> Optional[UUID]:
        """Logs a state change of a batch or training job.

        Args:
            job_name: the job's name.
            status: ``"started"``, ``"succeeded"`` or ``"failed"``.
            run_id: the run's id; pass the same id for each state of one run.
                Default: a new UUIDv7 string.
            start_time: when the run started (timezone-aware).
            end_time: when it ended (timezone-aware, not before start_time).
            duration_ms: run time; computed from start and end when omitted.
            error_type: the exception class name of a failed run.
            error_message: the error text (cut at 16 KiB).
            metrics: free-form, JSON-like results (row counts, scores...).
            tags: extra string tags for this event.
            timestamp: when the state changed; default now.

        Returns:
            The event id, or ``None`` when disabled or sampled out.

        Raises:
            ValidationError: an argument is invalid; nothing was recorded.
        """
        if not self._enabled:
            return None
        return self._pipeline.job_run(
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
            timestamp,
        )

    def log_event(self, event: Event) -> Optional[UUID]:
        """Logs an event model built by the caller (this client's source is set).

        Returns:
            The event id, or ``None`` when disabled or sampled out.

        Raises:
            ValidationError: ``event`` is not an event model or is too large.
        """
        if not self._enabled:
            return None
        from ._pipeline import in_item
        from .models import EVENT_CLASSES, Event, build_event

        if not isinstance(event, Event) or type(event) not in EVENT_CLASSES.values():
            raise ValidationError([("event", "must be a vdt_ai event model")])
        cls = type(event)
        try:
            # Validated again: model_copy() and model_construct() skip validation,
            # and only what validates is accepted (and so always decodes).
            fields = {name: getattr(event, name) for name in cls.model_fields}
            fields["source"] = self._pipeline.source
            fields["tags"] = self._pipeline.merged_tags(event.tags, cls)
            finished = self._finish(build_event(cls, fields))
        except Exception as exc:
            raise in_item(exc, "", cls.event_type.value) from None
        if finished is None:
            return None
        event, record = finished
        return event.event_id if self._submit(record) else None

    def check_connection(self, timeout: float = 10.0) -> Any:
        """Checks, step by step, that this client's settings reach and may write
        to Kafka (the ``vdt-ai test-connection`` check). It blocks up to ``timeout``.

        Returns:
            A ``vdt_ai.kafka.check.ConnectionReport`` with each step and timing.

        Raises:
            AuthenticationError: the broker refused the API key.
            AuthorizationError: the key may not write to a topic (named).
            TransportError: no brokers configured, unreachable, TLS, timeout.
        """
        from .kafka.check import check_connection

        report = check_connection(self._settings, timeout)
        if report.error is not None:
            raise report.error
        return report

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits until sent events are delivered (or spooled), at most ``timeout``.

        Args:
            timeout: seconds; default ``shutdown_timeout``.

        Returns:
            How many of this client's events are still pending: sent and
            neither acked, spooled nor refused yet, plus 1 while spooled
            events wait for their replay (0: none queued, the spool empty).
        """
        wait = self._settings.shutdown_timeout if timeout is None else timeout
        # The signal handlers held meanwhile run as this ends, outside the
        # except: an exception of theirs (a SIGALRM timeout) is the caller's.
        with _lifecycle.closing():
            try:
                return self._transport.flush(wait)
            except Exception as exc:  # never hurt the caller
                _log.log_once("flush-error", "ERROR", "flush failed", error=repr(exc))
                return 0

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes and releases the transport. Later ``log_*`` calls are dropped.

        Calling it again does nothing.

        Args:
            timeout: seconds to wait for delivery; default ``shutdown_timeout``.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        profilers, self._profilers = self._profilers, {}
        for profiler in profilers.values():
            profiler.close()  # its last window, while the pipeline still takes it
        self._pipeline.closed = True
        wait = self._settings.shutdown_timeout if timeout is None else timeout
        with _lifecycle.closing():  # a SIGTERM meanwhile waits for the end
            if self._ledger is not None:
                # The final report counts what this wait settles, within it.
                deadline = time.monotonic() + wait
                try:  # the transport's (AsyncVDTClient.flush is a coroutine)
                    self._transport.flush(wait)
                except Exception as exc:
                    _log.log_once(
                        "flush-error", "ERROR", "flush failed", error=repr(exc)
                    )
                self._ledger.close()
                wait = max(0.0, deadline - time.monotonic())
            try:
                self._transport.close(wait)
            except Exception as exc:
                _log.log_once("close-error", "ERROR", "close failed", error=repr(exc))
        _lifecycle.unregister(self)
        _log.debug("client closed", **self.stats().as_dict())

    def stats(self) -> Stats:
        """Counts of accepted, delivered, spooled, dropped, failed and sampled-out
        events."""
        return self._counters.snapshot()

    def report_integration_error(self, where: str, error: BaseException) -> None:
        """Counts (``stats().integration_errors``) and logs once an error an
        integration caught so that the user's code could go on.

        Args:
            where: the integration and step, e.g. ``"sklearn.predict"``.
            error: the exception that was caught.
        """
        self._counters.add("integration_errors")
        _log.log_once(
            f"integration:{where}:{type(error).__name__}",
            "ERROR",
            "an integration failed; the user's call went on",
            where=where,
            error=f"{type(error).__name__}: {error}",
        )

    def __deepcopy__(self, memo: Dict[int, Any]) -> "VDTClient":
        # A client is a shared resource (producer, spool): copies of objects
        # that hold one (sklearn's clone(), copy.deepcopy) share it.
        return self

    @property
    def closed(self) -> bool:
        """``True`` after :meth:`close`."""
        return self._closed

    def __enter__(self) -> "VDTClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self._settings
        key = mask_api_key(s.api_key_id) if s.api_key_id else None
        return (
            f"VDTClient(api_key={key!r}, service={s.service!r}, "
            f"environment={s.environment!r}, transport={self._transport!r}, "
            f"enabled={self._enabled})"
        )


def _span_ids_into(arguments: Dict[str, Any]) -> bool:
    """Adds the current OpenTelemetry span's ids to shared arguments that
    name neither id (see :mod:`vdt_ai._otel`); True when it did."""
    if (
        _OTEL_TRACE in _modules
        and arguments.get("trace_id") is None
        and arguments.get("span_id") is None
    ):
        ids = current_span_ids()
        if ids is not None:
            arguments["trace_id"], arguments["span_id"] = ids
            return True
    return False


def _own_ids_only(item: Any) -> Any:
    """A bulk item that names one of the two ids gets None for the other, so
    that it is not paired with the current span's (the ids go together, as
    in a single call, where either given id means neither is filled)."""
    if isinstance(item, Mapping) and ("trace_id" in item) != ("span_id" in item):
        return {"trace_id": None, "span_id": None, **item}
    return item


def _bulk_items(calls: Any) -> List[Any]:
    """``calls`` as a list, or a ValidationError when it is not a sequence."""
    if isinstance(calls, (str, bytes, bytearray, Mapping)) or calls is None:
        kind = "None" if calls is None else type(calls).__name__
        raise ValidationError(
            [("calls", f"must be a list of mappings of arguments, not {kind}")],
            event_type="model_call",
        )
    try:
        return list(calls)
    except Exception as exc:
        raise ValidationError(
            [("calls", f"could not be read as a list ({type(exc).__name__})")],
            event_type="model_call",
        ) from None


_PACKAGE_DIR = os.path.dirname(__file__) + os.sep


def _caller_level() -> int:
    """The ``stacklevel`` that makes a warning point at the first line outside
    this package (the user's ``VDTClient()``, ``get_client()`` or integration
    call), however many SDK frames are in between."""
    level = 1
    frame = sys._getframe(1)  # the function that calls warnings.warn
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _default_transport(
    settings: Settings,
    counters: Counters,
    on_error: Optional[Callable[[VDTError], None]],
) -> Transport:
    if settings.offline:
        directory = settings.spool_dir.expanduser()
        key = str(directory)
        if key not in _offline_noticed:
            _offline_noticed.add(key)
            message = (
                "vdt-ai: no Kafka brokers configured (bootstrap_servers); events "
                f"are kept offline in {directory}. Set VDT_AI_BOOTSTRAP_SERVERS "
                "to deliver them."
            )
            warnings.warn(message, OfflineModeWarning, stacklevel=_caller_level())
            _log.info("offline mode", directory=directory)
        from .spool import SpoolTransport

        return SpoolTransport(directory, settings.spool_max_bytes)
    from .kafka.transport import KafkaTransport

    return KafkaTransport(settings, counters=counters, on_error=on_error)


def get_client() -> VDTClient:
    """The process-wide default client, built from configuration on first use.

    Integrations use it when no client is passed. It is rebuilt in a child
    process after ``fork()``, and after it was closed.
    """
    from ._registry import shared_client

    return shared_client()


class AsyncVDTClient(VDTClient):
    """:class:`VDTClient` for asyncio code.

    The ``log_*`` calls are the same, synchronous and non-blocking: they only
    validate, encode and queue, so they are safe to call from a coroutine.
    Waiting happens in :meth:`flush` and :meth:`aclose`, which run in a worker
    thread and never block the event loop.

    Example::

        async with AsyncVDTClient() as client:
            client.log_metric("loss", 0.1)
            await client.flush()
    """

    async def flush(  # type: ignore[override]
        self, timeout: Optional[float] = None
    ) -> int:
        """Waits for pending events without blocking the loop (see VDTClient.flush).

        Returns:
            The number of events still pending.
        """
        import asyncio  # here, not at module level: it costs ~30 ms to import

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, VDTClient.flush, self, timeout)

    async def aclose(self, timeout: Optional[float] = None) -> None:
        """Flushes and closes without blocking the event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, VDTClient.close, self, timeout)

    async def __aenter__(self) -> "AsyncVDTClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
