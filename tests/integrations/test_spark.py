"""Spark integration against PySpark in local mode (Java 17) and the real broker."""

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pandas as pd
import pyspark
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from vdt_ai import DataQuality, JobRun, JobStatus, ModelCall, VDTClient, decode
from vdt_ai._registry import shared_client
from vdt_ai.integrations.spark import (
    log_dataframe_quality,
    monitor_batches,
    monitor_spark_job,
)
from vdt_ai.testing import MemoryTransport

from .._broker import under_broker_lock

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = "127.0.0.1:9092"

if tuple(int(part) for part in pyspark.__version__.split(".")[:2]) < (4, 2):
    # Before 4.2 (SPARK-54247), collect() leaves its socket to the JVM for the
    # garbage collector to close, and CPython reports that as a ResourceWarning
    # in the driver (this process). That one message is PySpark's, not ours:
    # every other warning stays an error.
    pytestmark = pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:"
        "pytest.PytestUnraisableExceptionWarning"
    )


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    # Python workers run this interpreter (the one with pandas and vdt_ai).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        # local[threads, maxFailures]: a task may fail once and be retried.
        SparkSession.builder.master("local[2,2]")
        .appName("vdt-ai-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture
def client(memory: MemoryTransport) -> VDTClient:
    return VDTClient(transport=memory)


def test_job_run_started_then_succeeded_with_spark_counts(
    spark: SparkSession, client: VDTClient, memory: MemoryTransport
) -> None:
    with monitor_spark_job("features", client, run_id="run-1"):
        assert spark.range(1000).repartition(4).count() == 1000
    started, finished = memory.events_of(JobRun)
    assert (started.status, finished.status) == (JobStatus.STARTED, JobStatus.SUCCEEDED)
    assert started.run_id == finished.run_id == "run-1"
    metrics = finished.metrics
    assert metrics["application_id"] == spark.sparkContext.applicationId
    assert metrics["jobs"] >= 1 and metrics["jobs_succeeded"] == metrics["jobs"]
    assert metrics["tasks_completed"] >= 4 and metrics["tasks_failed"] == 0
    assert finished.duration_ms is not None and finished.duration_ms > 0
    # The job group is restored afterwards.
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None


def test_failed_job_is_logged_and_the_exception_is_unchanged(
    spark: SparkSession, client: VDTClient, memory: MemoryTransport
) -> None:
    class Boom(Exception):
        pass

    @monitor_spark_job("broken", client)
    def job() -> None:
        spark.range(10).count()
        raise Boom("bad input")

    with pytest.raises(Boom, match="bad input"):
        job()
    started, failed = memory.events_of(JobRun)
    assert failed.status is JobStatus.FAILED
    assert failed.error_type == "Boom" and failed.error_message == "bad input"
    assert started.run_id == failed.run_id  # a fresh id per call
    job_again = memory.events_of(JobRun)
    with pytest.raises(Boom):
        job()
    assert len(memory.events_of(JobRun)) == len(job_again) + 2


def test_dataframe_quality_in_one_aggregation(
    spark: SparkSession, client: VDTClient, memory: MemoryTransport
) -> None:
    rows = [
        (1, 10.0, "a", dt.date(2024, 1, 1)),
        (2, None, "b", dt.date(2024, 1, 3)),
        (3, 30.0, None, None),
        (4, 40.0, "a", dt.date(2024, 1, 2)),
    ]
    df = spark.createDataFrame(rows, "id long, amount double, kind string, day date")
    event_id = log_dataframe_quality(df, "payments", client)
    (event,) = memory.events_of(DataQuality)
    assert event.event_id == event_id
    assert event.record_count == 4
    assert event.null_count == 2  # records with at least one null
    assert event.anomaly_score == pytest.approx(0.25)
    profiles = {c.name: c for c in event.columns}
    assert profiles["amount"].null_count == 1
    assert (profiles["amount"].min, profiles["amount"].max) == (10.0, 40.0)
    assert profiles["amount"].mean == pytest.approx(80 / 3)
    assert profiles["kind"].distinct_count == 2 and profiles["kind"].min is None
    assert profiles["day"].min == "2024-01-01" and profiles["day"].max == "2024-01-03"
    assert profiles["id"].dtype == "bigint"


def test_dataframe_quality_with_a_profile_in_one_pass(
    spark: SparkSession, client: VDTClient, memory: MemoryTransport
) -> None:
    import datasketches
    import numpy as np

    from vdt_ai import DataProfile

    rng = np.random.default_rng(5)
    n = 20_000
    amounts = rng.normal(100, 15, n)
    pdf = pd.DataFrame(
        {
            "id": np.arange(n),
            "amount": np.where(rng.random(n) < 0.1, np.nan, amounts),
            "kind": rng.choice(["a", "b", "c"], n),
            "day": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
        }
    )
    pdf["day"] = pdf["day"].dt.date
    df = spark.createDataFrame(pdf).repartition(4)
    assert log_dataframe_quality(df, "payments", client) is not None
    event_id = log_dataframe_quality(df, "payments", client, profile=True)
    assert event_id is not None and client.stats().integration_errors == 0
    before, after = memory.events_of(DataQuality)
    (prof,) = memory.events_of(DataProfile)
    assert after.event_id == event_id and prof.tags == {"framework": "spark"}
    assert prof.row_count == after.record_count == before.record_count == n
    assert after.null_count == before.null_count  # rows with a null (amount)
    for a, b in zip(before.columns, after.columns):
        assert (a.name, a.dtype, a.null_count) == (b.name, b.dtype, b.null_count)
        assert a.min == b.min and a.max == b.max, a.name
        if a.mean is not None:
            assert b.mean == pytest.approx(a.mean) and b.stddev == pytest.approx(
                a.stddev
            )
        assert b.distinct_count == pytest.approx(a.distinct_count, rel=0.05)
    amount = prof.columns["amount"]
    assert amount.count == int(pdf.amount.notna().sum())
    kll = datasketches.kll_doubles_sketch.deserialize(amount.quantiles)
    values = np.sort(pdf.amount.dropna().to_numpy())
    for q in (0.1, 0.5, 0.9):
        rank = np.searchsorted(values, kll.get_quantile(q)) / len(values)
        assert abs(rank - q) <= 0.02
    top = datasketches.frequent_strings_sketch.deserialize(
        prof.columns["kind"].frequent
    )
    assert top.get_estimate("a") == (pdf.kind == "a").sum()


def test_dataframe_quality_of_a_wide_frame(
    spark: SparkSession, client: VDTClient, memory: MemoryTransport
) -> None:
    df = spark.range(50).select(*[(F.col("id") * i).alias(f"c{i}") for i in range(300)])
    log_dataframe_quality(df, "wide", client)
    (event,) = memory.events_of(DataQuality)
    assert len(event.columns) == 300 and event.record_count == 50
    assert event.columns[299].max == 49 * 299


def test_quality_failure_is_counted_not_raised(
    spark: SparkSession, client: VDTClient
) -> None:
    df = spark.range(3)
    assert log_dataframe_quality(df, "x", client, columns=["missing"]) is None
    assert client.stats().integration_errors == 1


def test_executor_side_model_calls_reach_the_broker(
    spark: SparkSession, tmp_path: Path
) -> None:
    kafka_dev = ["bash", str(ROOT / "scripts" / "kafka-dev")]
    subprocess.run(under_broker_lock([*kafka_dev, "up"]), check=True)
    prefix = "spark" + uuid.uuid4().hex[:8]

    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": batch["id"], "score": batch["id"] * 0.5})

    settings = {
        "bootstrap_servers": BOOTSTRAP,
        "topic_prefix": prefix,
        "spool_dir": str(tmp_path / "spool"),
    }
    df = spark.range(0, 1000, numPartitions=4)
    scored = df.mapInPandas(
        monitor_batches(predict, "spark_model", settings, model_version="1"),
        schema="id long, score double",
    )
    result = sorted(scored.collect())
    assert [r.score for r in result] == [i * 0.5 for i in range(1000)]
    events = _consume_all(f"{prefix}.model_calls", expected=4)
    assert len({str(e.event_id) for e in events}) == len(events) == 4
    assert all(
        isinstance(e, ModelCall) and e.model_name == "spark_model" for e in events
    )
    assert sum(e.input_data["batch_size"] for e in events) == 1000
    assert {e.tags["side"] for e in events} == {"executor"}


def test_user_errors_in_batches_propagate(spark: SparkSession, tmp_path: Path) -> None:
    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        raise ValueError("model exploded")

    settings = {"spool_dir": str(tmp_path / "spool"), "enabled": False}
    scored = spark.range(10).mapInPandas(
        monitor_batches(predict, "m", settings), schema="id long"
    )
    with pytest.raises(Exception, match="model exploded"):
        scored.collect()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_a_signal_handlers_exception_during_the_last_flush_reaches_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # VDTClient.flush() holds the process's signal handlers while it waits
    # and runs them as it ends: a handler's exception (a SIGALRM timeout)
    # comes out of flush(). The partition's last flush reported it as an
    # integration error and the task went on as if no signal had come.
    # (No JVM needed: the function mapInPandas would call, run directly.)
    settings = {"bootstrap_servers": "127.0.0.1:1", "spool_dir": str(tmp_path)}
    run = monitor_batches(lambda batch: batch, "m", settings, flush_timeout=0.2)
    client = shared_client({**settings, "handle_sigterm": False})  # the worker's
    real_flush = client._transport.flush

    def signalled_during(timeout: float) -> int:
        monkeypatch.undo()  # once (close() flushes too)
        signal.raise_signal(signal.SIGUSR1)  # held: its handler runs at the end
        return real_flush(timeout)

    def timeout(signum: int, frame: Any) -> None:
        raise TimeoutError("the task timed out")

    monkeypatch.setattr(client._transport, "flush", signalled_during)
    previous = signal.signal(signal.SIGUSR1, timeout)
    try:
        batches = run(iter([pd.DataFrame({"id": [1, 2]})]))
        assert list(next(batches)["id"]) == [1, 2]
        with pytest.raises(TimeoutError, match="the task timed out"):
            next(batches)  # the partition's end: its flush
        assert client.stats().integration_errors == 0
    finally:
        signal.signal(signal.SIGUSR1, previous)
        client.close(0)


def _consume_all(topic: str, expected: int) -> List[Any]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    events: List[Any] = []
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    try:
        while len(events) < expected and dt.datetime.now() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            events.append(decode(message.value() or b""))
    finally:
        consumer.close()
    return events


def test_monitor_failure_leaves_the_job_result_unchanged(
    spark: SparkSession, client: VDTClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "log_job_run", lambda *a, **k: 1 / 0)

    @monitor_spark_job("job", client)
    def job() -> int:
        return int(spark.range(100).count())

    assert job() == 100
    assert client.stats().integration_errors == 2  # start and end, both contained


def test_batch_logging_failure_leaves_results_unchanged(
    spark: SparkSession, tmp_path: Path
) -> None:
    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": batch["id"], "double": batch["id"] * 2})

    # model_name "" makes every log call invalid inside the executors.
    settings = {"spool_dir": str(tmp_path / "spool")}
    scored = spark.range(0, 100, numPartitions=2).mapInPandas(
        monitor_batches(predict, "", settings), schema="id long, double long"
    )
    assert sorted(r.double for r in scored.collect()) == [i * 2 for i in range(100)]


def test_executor_rows_are_sampled_when_asked(
    spark: SparkSession, tmp_path: Path
) -> None:
    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": batch["id"], "half": batch["id"] / 2})

    spool = tmp_path / "spool"
    settings = {"spool_dir": str(spool)}
    scored = spark.range(0, 400, numPartitions=2).mapInPandas(
        monitor_batches(predict, "m", settings, log_rows=True, row_sample_rate=0.05),
        schema="id long, half double",
    )
    assert scored.count() == 400
    from vdt_ai.spool import iter_events

    rows = [
        e for e in iter_events(spool)
        if isinstance(e, ModelCall) and e.tags.get("row") == "sampled"
    ]  # fmt: skip
    assert len(rows) == 20  # 5% of 2 x 200
    assert all(r.prediction["half"] == r.input_data["id"] / 2 for r in rows)


def test_a_retried_task_is_recognisable_by_attempt_and_key(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Partition 0's first attempt logs its first batch, then fails on its
    # second; the retry logs both again under the same idempotency keys.
    from pyspark import TaskContext

    def predict(batch: pd.DataFrame) -> pd.DataFrame:
        context = TaskContext.get()
        assert context is not None
        first_try = context.attemptNumber() == 0
        if first_try and context.partitionId() == 0 and batch["id"].min() >= 50:
            raise RuntimeError("executor lost")
        return pd.DataFrame({"id": batch["id"], "half": batch["id"] / 2})

    spool = tmp_path / "spool"
    settings = {"spool_dir": str(spool)}
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "50")
    try:
        scored = spark.range(0, 200, numPartitions=2).mapInPandas(
            monitor_batches(predict, "m", settings, log_rows=True, row_sample_rate=0.1),
            schema="id long, half double",
        )
        assert scored.count() == 200
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    from vdt_ai.spool import iter_events

    calls = [e for e in iter_events(spool) if isinstance(e, ModelCall)]
    batches = [e for e in calls if "row" not in e.tags]
    rows = [e for e in calls if e.tags.get("row") == "sampled"]
    app = spark.sparkContext.applicationId
    for event in calls:
        tags = event.tags
        assert tags["idempotency_key"].startswith(
            f"{app}/{tags['spark.stage_id']}/{tags['spark.partition_id']}/"
        )
        assert {"spark.attempt", "spark.task_attempt_id"} <= tags.keys()
    assert {e.tags["spark.attempt"] for e in batches} == {"0", "1"}
    # What a consumer keeps: per key, the highest attempt's event.
    kept: Dict[str, Any] = {}
    for event in sorted(batches + rows, key=lambda e: e.tags["spark.attempt"]):
        kept[event.tags["idempotency_key"]] = event
    kept_batches = [e for e in kept.values() if "row" not in e.tags]
    assert len(kept_batches) == 4  # 2 partitions x 2 batches of 50
    assert sum(e.input_data["batch_size"] for e in kept_batches) == 200
    assert len([e for e in kept.values() if "row" in e.tags]) == 20  # 10% of 200
    # The retry sampled the rows the failed attempt sampled (same keys).
    retried = [e for e in rows if e.tags["spark.partition_id"] == "0"]
    by_attempt: Dict[str, Set[str]] = {}
    for event in retried:
        attempt = event.tags["spark.attempt"]
        by_attempt.setdefault(attempt, set()).add(event.tags["idempotency_key"])
    if "0" in by_attempt:  # the failed attempt's first batch reached the spool
        assert by_attempt["0"] <= by_attempt["1"]
