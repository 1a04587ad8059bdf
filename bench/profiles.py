"""Data profiles: profile() of 1M numbers, the encoded sizes, the per-call cost
of rolling profiles, and Spark's one-pass profile against a plain count + agg.

Each figure is printed beside its baseline measured in the same run (medians).
Spark: ``--spark`` (local[2], 1M rows x 20 columns; takes a few minutes).
"""

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable, List

import numpy as np

from vdt_ai import VDTClient
from vdt_ai.codec import encode
from vdt_ai.profiles import profile
from vdt_ai.transport import Counters, Transport


def median_time(fn: Callable[[], Any], rounds: int = 5) -> float:
    times: List[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numbers() -> None:
    import datasketches

    values = np.random.default_rng(0).normal(size=1_000_000)
    kll = median_time(lambda: datasketches.kll_doubles_sketch(200).update(values))
    whole = median_time(lambda: profile(values))
    few = np.random.default_rng(0).integers(0, 1000, 1_000_000).astype(float)
    few_time = median_time(lambda: profile(few))
    print(
        f"profile() of 1M float64: {whole * 1000:.0f} ms (all distinct), "
        f"{few_time * 1000:.0f} ms (1,000 distinct); KLL update alone "
        f"{kll * 1000:.0f} ms ({whole / kll:.1f}x)"
    )
    built = profile(values)
    column = built.columns["value"]
    print(
        f"encoded profile, 1 numeric column of 1M values: "
        f"{len(encode(built).value)} bytes (KLL {len(column.quantiles or b'')}, "
        f"HLL {len(column.distinct or b'')})"
    )


class Null(Transport):
    def send(self, record: Any, counters: Counters) -> None:
        counters.add("delivered")


def rolling() -> None:
    features = {"age": 31, "income": 52000.5, "plan": "gold", "geo": {"lat": 48.8}}

    def calls(profiled: bool, n: int = 100_000) -> float:
        client = VDTClient(transport=Null(), sample_rate=0.01, ledger_interval_s=0)
        if profiled:
            client.profile_model("m", interval_s=3600)
        start = time.process_time()
        for _ in range(n):
            client.log_model_call("m", features, 0.73, 12.5)
        client.close()  # the last fold: all the CPU profiling costs
        return (time.process_time() - start) / n * 1e6

    plain: List[float] = []
    profiled: List[float] = []
    for _ in range(5):  # rounds alternate
        plain.append(calls(False))
        profiled.append(calls(True))
    a, b = statistics.median(plain), statistics.median(profiled)
    print(
        f"log_model_call, sample_rate=0.01, CPU per call (background included): "
        f"{b:.1f} us profiled, {a:.1f} us not ({b - a:+.1f} us, {b / a:.2f}x)"
    )


def spark(rounds: int) -> None:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from vdt_ai.integrations.spark import log_dataframe_quality
    from vdt_ai.testing import MemoryTransport

    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    df = session.range(1_000_000).select(
        *[(F.rand(seed=i) * 100).alias(f"c{i}") for i in range(20)]
    )
    df = df.cache()
    df.count()  # materialised once, so both sides read the same cached rows
    client = VDTClient(transport=MemoryTransport(), ledger_interval_s=0)

    def baseline() -> None:
        df.count()
        df.agg(
            *[F.min(c) for c in df.columns], *[F.max(c) for c in df.columns]
        ).collect()

    def one_pass() -> None:
        log_dataframe_quality(df, "bench", client, profile=True)

    def transfer() -> None:
        # The floor of any one pass in Python: the rows shipped to the
        # workers as Arrow batches, only counted there.
        import pyarrow

        def count(batches: Any) -> Any:
            rows = sum(batch.num_rows for batch in batches)
            yield pyarrow.RecordBatch.from_pydict({"rows": [rows]})

        df.mapInArrow(count, "rows long").collect()

    rounds_base: List[float] = []
    rounds_prof: List[float] = []
    rounds_ship: List[float] = []
    for _ in range(rounds):
        rounds_base.append(median_time(baseline, 1))
        rounds_prof.append(median_time(one_pass, 1))
        rounds_ship.append(median_time(transfer, 1))
    a, b = statistics.median(rounds_base), statistics.median(rounds_prof)
    c = statistics.median(rounds_ship)
    # Each round's ratio to the baseline measured just before it: the
    # machine's slow phases hit both sides of a round alike.
    ratios = sorted(p / q for p, q in zip(rounds_prof, rounds_base))
    print(
        f"Spark local[2], 1M rows x 20 double columns (cached), {rounds} rounds: "
        f"profile=True {b:.2f} s, count() + agg(min, max) {a:.2f} s ({b / a:.2f}x; "
        f"per-round ratios median {statistics.median(ratios):.2f}x, "
        f"{ratios[0]:.2f}-{ratios[-1]:.2f}); "
        f"rows shipped to Python workers only {c:.2f} s ({c / a:.2f}x)"
    )
    session.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spark", action="store_true", help="run the Spark figure")
    parser.add_argument("--spark-rounds", type=int, default=5)
    args = parser.parse_args()
    numbers()
    rolling()
    if args.spark:
        spark(args.spark_rounds)
