"""Spark: monitor a job, profile a DataFrame, log batch inference on executors.

Run: ``python examples/spark_example.py`` (needs ``pip install 'vdt-ai[spark]'``
and Java 17). Uses Spark in local mode; with ``VDT_AI_BOOTSTRAP_SERVERS`` set the
events go to Kafka, else to the offline spool, printed at the end.
"""

import os
import shutil
import sys
import tempfile
import warnings

import pandas as pd
from pyspark.sql import SparkSession

from vdt_ai import JobRun, ModelCall, OfflineModeWarning, VDTClient
from vdt_ai.integrations.spark import (
    log_dataframe_quality,
    monitor_batches,
    monitor_spark_job,
)
from vdt_ai.spool import iter_events


def score(batch: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"id": batch["id"], "score": (batch["id"] % 7) / 7.0})


def main() -> None:
    # Spark's Python workers must run this interpreter (the one with pandas and
    # vdt-ai installed), else they fail with ModuleNotFoundError.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spool = tempfile.mkdtemp(prefix="vdt-ai-spark-")
    try:
        run(spool)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def run(spool: str) -> None:
    settings = {"spool_dir": spool, "service": "spark-example"}
    warnings.simplefilter("ignore", OfflineModeWarning)
    client = VDTClient(**settings)  # type: ignore[arg-type]
    spark = SparkSession.builder.master("local[2]").getOrCreate()
    try:
        with monitor_spark_job("nightly_scoring", client):
            df = spark.range(0, 10_000, numPartitions=4)
            log_dataframe_quality(df, "customers", client)
            scored = df.mapInPandas(
                monitor_batches(score, "score_model", settings),
                "id long, score double",
            )
            # Spark is lazy: run the action inside the monitored block, so the
            # JobRun says "succeeded" once the work has run, not before.
            print("scored rows:", scored.count())
    finally:
        spark.stop()
    client.close()
    events = list(iter_events(spool))
    for event in events:
        print(event.event_type.value, event.model_dump(mode="json", exclude={"source"}))
    calls = [e.timestamp for e in events if isinstance(e, ModelCall)]
    done = [
        e.timestamp for e in events if isinstance(e, JobRun) and e.status == "succeeded"
    ]
    if len(calls) != 4 or len(done) != 1 or max(calls) > done[0]:
        raise SystemExit("expected 4 ModelCalls, then the JobRun's success")


if __name__ == "__main__":
    main()
