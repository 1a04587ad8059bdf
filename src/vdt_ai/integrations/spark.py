"""Apache Spark: job runs, distributed data quality, executor-side model calls.

Example::

    from vdt_ai.integrations.spark import (
        log_dataframe_quality, monitor_batches, monitor_spark_job)

    @monitor_spark_job("nightly_features")
    def build(spark):
        df = spark.read.parquet("s3://...")
        log_dataframe_quality(df, "features")          # one aggregation, no collect
        score = monitor_batches(predict_frame, "churn", {"bootstrap_servers": "k:9092"})
        scored = df.mapInPandas(score, schema="id long, score double")
        scored.write.parquet("s3://...")

Supported: PySpark 3.5 to below 5, classic (non-Connect) sessions.
"""

import functools
import random
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from .._registry import shared_client
from ..client import VDTClient
from ..models import JobStatus, utc_now
from ._common import (
    batch_size,
    log_sampled_rows,
    report,
    require,
    resolve,
    row_value,
    summarize,
)

require("pyspark", "spark", ("3.5", "5"))
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

F_ = TypeVar("F_", bound=Callable[..., Any])

_NUMERIC: Tuple[type, ...] = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC += (T.FloatType, T.DoubleType, T.DecimalType)
_ORDERED = (T.DateType, T.TimestampType)


class monitor_spark_job:  # noqa: N801 - used as a decorator, named like one
    """Logs a Spark job run: ``started``, then ``succeeded`` or ``failed``.

    A decorator or a context manager. While it runs, Spark jobs belong to the
    job group ``vdt-ai-<run_id>``; at the end the JobRun event carries the
    duration, the application id and the counts of jobs, stages and tasks
    (completed, failed) of that group from ``SparkContext.statusTracker()``.
    The user's exception is re-raised unchanged.

    Args:
        job_name: the job's name.
        client: the client to log with; default ``vdt_ai.get_client()``.
        run_id: the run id; default a new one per run.
        spark: the session; default the active one.
    """

    def __init__(
        self,
        job_name: str,
        client: Optional[VDTClient] = None,
        run_id: Optional[str] = None,
        spark: Optional[SparkSession] = None,
    ) -> None:
        self.job_name = job_name
        self.client = client
        self.run_id = run_id
        self.spark = spark
        self._state: Dict[str, Any] = {}

    def __call__(self, func: F_) -> F_:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # A fresh monitor per call: each call is a run of its own.
            with monitor_spark_job(self.job_name, self.client, self.run_id, self.spark):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __enter__(self) -> "monitor_spark_job":
        run_id = self.run_id or f"spark-{uuid.uuid4().hex[:16]}"
        state: Dict[str, Any] = {"run_id": run_id, "start": utc_now()}
        self._state = state
        try:
            spark = self.spark or SparkSession.getActiveSession()
            if spark is not None:
                context = spark.sparkContext
                state["context"] = context
                state["group"] = f"vdt-ai-{run_id}"
                state["previous"] = (
                    context.getLocalProperty("spark.jobGroup.id"),
                    context.getLocalProperty("spark.job.description"),
                )
                context.setJobGroup(state["group"], f"{self.job_name} ({run_id})")
                state["app_id"] = context.applicationId
            resolve(self.client).log_job_run(
                self.job_name,
                JobStatus.STARTED,
                run_id=run_id,
                start_time=state["start"],
                metrics={"application_id": state.get("app_id")},
            )
        except Exception as exc:
            report(self.client, "spark.monitor_spark_job.start", exc)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        state = self._state
        try:
            end = utc_now()
            metrics: Dict[str, Any] = {"application_id": state.get("app_id")}
            context = state.get("context")
            if context is not None:
                metrics.update(_group_counts(context, state["group"]))
                previous_group, previous_description = state["previous"]
                context.setLocalProperty("spark.jobGroup.id", previous_group)
                context.setLocalProperty("spark.job.description", previous_description)
            resolve(self.client).log_job_run(
                self.job_name,
                JobStatus.FAILED if exc is not None else JobStatus.SUCCEEDED,
                run_id=state["run_id"],
                start_time=state["start"],
                end_time=end,
                error_type=type(exc).__name__ if exc is not None else None,
                error_message=str(exc) if exc is not None else None,
                metrics=metrics,
            )
        except Exception as error:
            report(self.client, "spark.monitor_spark_job.end", error)
        # Returning None: the user's exception (if any) propagates unchanged.


def _group_counts(context: Any, group: str) -> Dict[str, int]:
    tracker = context.statusTracker()
    counts = dict.fromkeys(
        (
            "jobs",
            "jobs_succeeded",
            "jobs_failed",
            "stages",
            "tasks",
            "tasks_completed",
            "tasks_failed",
        ),
        0,
    )
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        counts["jobs"] += 1
        status = str(job.status)
        counts["jobs_succeeded"] += status == "SUCCEEDED"
        counts["jobs_failed"] += status == "FAILED"
        for stage_id in job.stageIds:
            stage = tracker.getStageInfo(stage_id)
            if stage is None:
                continue
            counts["stages"] += 1
            counts["tasks"] += stage.numTasks
            counts["tasks_completed"] += stage.numCompletedTasks
            counts["tasks_failed"] += stage.numFailedTasks
    return counts


def _quoted(name: str) -> Any:
    return F.col("`" + name.replace("`", "``") + "`")


def log_dataframe_quality(
    df: DataFrame,
    dataset_name: str,
    client: Optional[VDTClient] = None,
    columns: Optional[List[str]] = None,
    profile: bool = False,
) -> Optional[Any]:
    """Profiles ``df`` in one distributed aggregation and logs a DataQuality event.

    Computed on the executors, one result row to the driver (no rows
    collected): record count; records with at least one null (``null_count``);
    per column: null count, approximate distinct count, and min/max/mean/stddev
    for numeric columns (min/max for dates and timestamps).
    ``anomaly_score`` is the largest per-column null fraction (0.0 to 1.0).

    Args:
        df: the DataFrame.
        dataset_name: the dataset's name.
        client: the client to log with; default ``vdt_ai.get_client()``.
        columns: the columns to profile; default all.
        profile: also build a mergeable :class:`vdt_ai.DataProfile`
            (DataSketches; needs ``vdt-ai[profiles]`` on the executors too)
            and log it next to the DataQuality event. Still one pass over
            the data: each partition is profiled on its executor
            (``mapInArrow``), one small row per partition reaches the driver,
            which merges them; the DataQuality event is then derived from
            the profile (its ``distinct_count`` from the HLL sketch, its
            ``stddev`` the sample standard deviation as without a profile;
            NaN counts as a null in the columns' null counts).

    Returns:
        The DataQuality event's id, or ``None`` if the profile could not be
        logged (the failure is counted in ``stats().integration_errors``).
    """
    if profile:
        return _quality_from_profile(df, dataset_name, client, columns)
    try:
        names = list(columns) if columns is not None else list(df.columns)
        types = {field.name: field.dataType for field in df.schema.fields}
        exprs = [F.count(F.lit(1)).alias("rows")]
        if names:
            # greatest() is one flat expression; a chain of ORs over hundreds
            # of columns nests so deep that Catalyst overflows its stack.
            flags = [_quoted(n).isNull().cast("int") for n in names]
            any_null = F.greatest(*flags) if len(flags) > 1 else flags[0]
            exprs.append(F.sum(any_null).alias("null_rows"))
        plan: List[Tuple[str, Any, List[str]]] = []
        for index, name in enumerate(names):
            column = _quoted(name)
            kind = types.get(name)
            stats = ["nulls", "distinct"]
            exprs.append(
                F.sum(F.when(column.isNull(), 1).otherwise(0)).alias(f"c{index}_nulls")
            )
            exprs.append(F.approx_count_distinct(column).alias(f"c{index}_distinct"))
            if isinstance(kind, _NUMERIC):
                as_double = column.cast("double")
                exprs += [
                    F.min(as_double).alias(f"c{index}_min"),
                    F.max(as_double).alias(f"c{index}_max"),
                    F.mean(as_double).alias(f"c{index}_mean"),
                    F.stddev(as_double).alias(f"c{index}_stddev"),
                ]
                stats += ["min", "max", "mean", "stddev"]
            elif isinstance(kind, _ORDERED):
                exprs += [
                    F.min(column).alias(f"c{index}_min"),
                    F.max(column).alias(f"c{index}_max"),
                ]
                stats += ["min", "max"]
            plan.append((name, kind, stats))
        row = df.agg(*exprs).collect()[0].asDict()
        records = int(row["rows"])
        profiles = []
        for index, (name, kind, stats) in enumerate(plan):
            summary: Dict[str, Any] = {
                "name": name,
                "dtype": kind.simpleString() if kind is not None else None,
                "null_count": int(row[f"c{index}_nulls"] or 0),
                "distinct_count": int(row[f"c{index}_distinct"] or 0),
            }
            for stat in stats[2:]:
                value = row[f"c{index}_{stat}"]
                if stat in ("mean", "stddev"):
                    value = _finite(value)
                elif stat in ("min", "max") and isinstance(value, float):
                    value = _finite(value)
                summary[stat] = value
            profiles.append(summary)
        return _log_quality(
            resolve(client),
            dataset_name,
            records,
            int(row.get("null_rows") or 0),
            profiles,
        )
    except Exception as exc:
        report(client, "spark.log_dataframe_quality", exc)
        return None


def _log_quality(
    target: VDTClient,
    dataset_name: str,
    records: int,
    null_rows: int,
    columns: List[Dict[str, Any]],
) -> Optional[Any]:
    """Logs the DataQuality event; ``anomaly_score`` is the largest column
    null fraction."""
    worst = max((c["null_count"] / records for c in columns if records), default=0.0)
    return target.log_data_quality(
        dataset_name,
        record_count=records,
        null_count=null_rows,
        anomaly_score=worst,
        columns=columns,
        tags={"framework": "spark"},
    )


def _finite(value: Any) -> Optional[float]:
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


# -- executor side ----------------------------------------------------------------


def _worker_client(settings: Optional[Dict[str, Any]]) -> VDTClient:
    """One client per Python worker process and settings (fork-aware)."""
    options = dict(settings or {})
    options.setdefault("handle_sigterm", False)  # Spark manages its workers
    return shared_client(options)


def _application_id() -> str:
    try:
        session = SparkSession.getActiveSession()
        if session is not None:
            return str(session.sparkContext.applicationId)
    except Exception:  # e.g. Spark Connect: no SparkContext
        pass
    return "-"


def _task_tags() -> Dict[str, str]:
    """The running task's stage, partition and attempt, as tags."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return {}
    return {
        "spark.stage_id": str(context.stageId()),
        "spark.partition_id": str(context.partitionId()),
        "spark.attempt": str(context.attemptNumber()),
        "spark.task_attempt_id": str(context.taskAttemptId()),
    }


def monitor_batches(
    predict: Callable[[Any], Any],
    model_name: str,
    client_settings: Optional[Dict[str, Any]] = None,
    model_version: Optional[str] = None,
    flush_timeout: float = 10.0,
    log_rows: bool = False,
    row_sample_rate: float = 0.01,
    max_rows_per_batch: int = 100,
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """Wraps a pandas batch function for ``DataFrame.mapInPandas``.

    ``predict(batch: pandas.DataFrame) -> pandas.DataFrame`` runs on the
    executors; each batch is logged there as a ModelCall (batch size, input and
    output summaries, latency) by a client made once per Python worker process
    from ``client_settings`` (settings as keyword arguments, e.g.
    ``{"bootstrap_servers": ...}``; workers also read ``VDT_AI_*`` variables).
    At the end of each partition the client flushes (up to ``flush_timeout``)
    because Spark may end idle workers abruptly. With ``log_rows``, a sample
    of rows (``row_sample_rate``, at most ``max_rows_per_batch`` a batch) is
    also logged one by one, input row and output row, through the bulk path.

    Retries are recognisable: every event carries the task's tags
    ``spark.stage_id``, ``spark.partition_id``, ``spark.attempt`` (the task
    attempt number) and ``spark.task_attempt_id`` and an ``idempotency_key``
    tag, ``<application id>/<stage>/<partition>/<batch>`` for a batch and
    ``.../<batch>/<row>`` for a sampled row (its position in the batch). The
    key leaves the attempt out, so a retried task's events repeat the failed
    attempt's keys (its row sample is the same, seeded by the key): per key
    (and model name), keep the event of the highest ``spark.attempt``.

    Returns:
        A function ``Iterator[DataFrame] -> Iterator[DataFrame]`` for
        ``mapInPandas``; it yields exactly what ``predict`` returns.
    """

    application = _application_id()  # on the driver, where this is called

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        client: Optional[VDTClient] = None
        task: Dict[str, str] = {}
        try:
            client = _worker_client(client_settings)
            task = _task_tags()
        except Exception as exc:
            report(None, "spark.monitor_batches.client", exc)
        prefix = "/".join(
            (
                application,
                task.get("spark.stage_id", "-"),
                task.get("spark.partition_id", "-"),
            )
        )
        for position, batch in enumerate(batches):
            start = time.perf_counter()
            result = predict(batch)  # the user's errors propagate unchanged
            if client is not None:
                key = f"{prefix}/{position}"
                tags = {"framework": "spark", "side": "executor", **task}
                try:
                    client.log_model_call(
                        model_name,
                        input_data={
                            "batch_size": batch_size(batch),
                            "summary": summarize(batch),
                        },
                        prediction=summarize(result),
                        latency_ms=(time.perf_counter() - start) * 1000,
                        model_version=model_version,
                        tags={**tags, "idempotency_key": key},
                    )
                    if log_rows:
                        log_sampled_rows(
                            client,
                            batch_size(batch) or 0,
                            row_sample_rate,
                            max_rows_per_batch,
                            lambda i: row_value(batch, i),
                            lambda i: row_value(result, i),
                            model_name,
                            model_version,
                            "spark",
                            lambda i: {
                                "tags": {
                                    **tags,
                                    "row": "sampled",
                                    "idempotency_key": f"{key}/{i}",
                                }
                            },
                            random.Random(key),  # a retry samples the same rows
                        )
                except Exception as exc:
                    report(client, "spark.monitor_batches", exc)
            yield result
        if client is not None:
            # Not guarded: flush() contains its own failures; what comes out
            # is an exception of a signal handler it held meanwhile (a
            # SIGALRM timeout), which is the task's, not an integration error.
            client.flush(flush_timeout)

    return run


# -- one pass: a DataProfile per partition, merged on the driver ------------------

_PARTITION_SCHEMA = "profile binary, null_rows long"
_CHUNK_BYTES = 32 * 1024 * 1024


def _profile_partitions(names: List[str], dataset_name: str) -> Callable[..., Any]:
    """The executors' function: a partition's Arrow batches -> one row holding
    the partition's encoded DataProfile and its count of rows with a null."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow
        import pyarrow.compute as pc

        from vdt_ai.codec import encode
        from vdt_ai.profiles import profile as build

        merged = None
        null_rows = 0
        held: List[Any] = []
        held_bytes = 0

        def fold() -> None:
            # Up to _CHUNK_BYTES of batches profiled at once: fewer merges and
            # per-batch costs than Spark's 10,000-row Arrow batches.
            nonlocal merged, held_bytes
            part = build(pyarrow.Table.from_batches(held), dataset_name=dataset_name)
            merged = part if merged is None else merged.merge(part)
            held.clear()
            held_bytes = 0

        for batch in batches:
            if not batch.num_rows:
                continue
            # Rows with a null in any column: only columns that hold a null
            # are scanned (Arrow keeps each column's null count).
            flags = [column.is_null() for column in batch.columns if column.null_count]
            if flags:
                any_null = functools.reduce(pc.or_, flags)
                null_rows += int(
                    pc.sum(pc.cast(any_null, pyarrow.int64())).as_py() or 0
                )
            held.append(batch)
            held_bytes += batch.nbytes
            if held_bytes >= _CHUNK_BYTES:
                fold()
        if held:
            fold()
        if merged is not None:
            value = encode(merged, max_event_bytes=2**31 - 1).value
            yield pyarrow.RecordBatch.from_pydict(
                {"profile": [value], "null_rows": [null_rows]}
            )

    return run


def _quality_from_profile(
    df: DataFrame,
    dataset_name: str,
    client: Optional[VDTClient],
    columns: Optional[List[str]],
) -> Optional[Any]:
    try:
        from ..codec import decode
        from ..profiles import profile as build

        names = list(columns) if columns is not None else list(df.columns)
        types = {field.name: field.dataType for field in df.schema.fields}
        selected = df.select(*[_quoted(n) for n in names])
        rows = selected.mapInArrow(
            _profile_partitions(names, dataset_name), _PARTITION_SCHEMA
        ).collect()
        merged: Any = None
        null_rows = 0
        for row in rows:
            part = decode(bytes(row["profile"]))
            merged = part if merged is None else merged.merge(part)
            null_rows += int(row["null_rows"])
        if merged is None:  # no rows at all
            merged = build({n: [] for n in names}, dataset_name=dataset_name)
        target = resolve(client)
        target.log_data_profile(dataset_name, merged, tags={"framework": "spark"})
        records = merged.row_count
        profiles = [
            _column_quality(name, types.get(name), merged.columns.get(name), records)
            for name in names
        ]
        return _log_quality(target, dataset_name, records, null_rows, profiles)
    except Exception as exc:
        report(client, "spark.log_dataframe_quality", exc)
        return None


def _column_quality(
    name: str, kind: Any, sketches: Any, records: int
) -> Dict[str, Any]:
    """A DataQuality column from a profile's column."""
    import datasketches

    out: Dict[str, Any] = {
        "name": name,
        "dtype": kind.simpleString() if kind is not None else None,
        "null_count": sketches.null_count if sketches is not None else records,
    }
    if sketches is None:
        return out
    if sketches.distinct is not None:
        hll = datasketches.hll_sketch.deserialize(sketches.distinct)
        out["distinct_count"] = int(round(hll.get_estimate()))
    if isinstance(kind, _NUMERIC):
        out["min"], out["max"] = sketches.min, sketches.max
        out["mean"] = sketches.mean
        n = sketches.count
        if sketches.stddev is not None and n > 1:
            out["stddev"] = _finite(sketches.stddev * (n / (n - 1)) ** 0.5)
    elif isinstance(kind, _ORDERED) and sketches.min is not None:
        out["min"], out["max"] = (
            _moment(kind, sketches.min),
            _moment(kind, sketches.max),
        )
    return out


def _moment(kind: Any, seconds: Optional[float]) -> Any:
    import datetime as dt

    if seconds is None:
        return None
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.date() if isinstance(kind, T.DateType) else moment
