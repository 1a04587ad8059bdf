"""Spark: monitor a job, profile a DataFrame, log batch inference on executors.

Run: ``python examples/spark_example.py`` (needs ``pip install 'vdt-ai[spark]'``
and Java 17). Uses Spark in local mode; with ``VDT_AI_BOOTSTRAP_SERVERS`` set the
events go to Kafka, else to the offline spool, printed at the end.
"""

import os
import sys
import tempfile
import warnings

import pandas as pd
from pyspark.sql import SparkSession

from vdt_ai import OfflineModeWarning, VDTClient
from vdt_ai.integrations.spark import (
    log_dataframe_quality,
    monitor_batches,
    monitor_spark_job,
)
from vdt_ai.spool import iter_events


def score(batch: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"id": batch["id"], "score": (batch["id"] % 7) / 7.0})


def main() -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spool = tempfile.mkdtemp(prefix="vdt-ai-spark-")
    settings = {"spool_dir": spool, "service": "spark-example"}
    warnings.simplefilter("ignore", OfflineModeWarning)
    client = VDTClient(**settings)  # type: ignore[arg-type]
    spark = SparkSession.builder.master("local[2]").getOrCreate()
    with monitor_spark_job("nightly_scoring", client):
        df = spark.range(0, 10_000, numPartitions=4)
        log_dataframe_quality(df, "customers", client)
        scored = df.mapInPandas(
            monitor_batches(score, "score_model", settings), "id long, score double"
        )
        print("scored rows:", scored.count())
    spark.stop()
    client.close()
    for event in iter_events(spool):
        print(event.event_type.value, event.model_dump(mode="json", exclude={"source"}))


if __name__ == "__main__":
    main()
