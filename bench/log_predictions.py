"""log_predictions on a numeric pandas frame against the issue's floor:
``json.dumps`` of each row of ``df.to_dict("records")``, in the same run.

    python bench/log_predictions.py [--rows 1000000]

The frame: 10 float columns plus a label and a score column. Events go to a
transport that only counts bytes (the SDK's own cost, no Kafka). Peak RSS
growth of each step is read from ru_maxrss, so log_predictions runs first.
Prints one JSON object.
"""

import argparse
import json
import resource
import sys
import time
from typing import Any, Optional

import numpy as np
import pandas as pd

from vdt_ai import VDTClient
from vdt_ai.codec import Record
from vdt_ai.transport import Counters, Transport


class CountingTransport(Transport):
    """Keeps nothing: counts records and bytes."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    def send(self, record: Record, counters: Counters) -> Optional[bool]:
        self.records += 1
        self.bytes += len(record.value)
        return None

    def flush(self, timeout: Optional[float] = None) -> int:
        return 0

    def close(self, timeout: Optional[float] = None) -> None:
        pass


def peak_mib() -> float:
    # Linux reports KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frame(rows: int) -> Any:
    rng = np.random.default_rng(7)
    df = pd.DataFrame(rng.normal(size=(rows, 10)), columns=[f"f{i}" for i in range(10)])
    df["label"] = np.where(rng.random(rows) > 0.5, "churn", "stay")
    df["score"] = rng.random(rows)
    return df


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    df = frame(args.rows)
    frame_mib = df.memory_usage(deep=True).sum() / 2**20
    transport = CountingTransport()
    client = VDTClient(transport=transport, handle_sigterm=False)
    before = peak_mib()
    start = time.perf_counter()
    recorded = client.log_predictions(
        df, model_name="churn", label_column="label", score_column="score"
    )
    ours = time.perf_counter() - start
    ours_peak = peak_mib() - before
    assert recorded == transport.records == args.rows

    start = time.perf_counter()
    total = 0
    for row in df.to_dict("records"):
        total += len(json.dumps(row))
    floor = time.perf_counter() - start
    json.dump(
        {
            "rows": args.rows,
            "frame_mib": round(frame_mib, 1),
            "log_predictions_rows_per_s": round(args.rows / ours),
            "json_dumps_records_rows_per_s": round(args.rows / floor),
            "ratio": round(floor / ours, 2),
            "log_predictions_peak_rss_growth_mib": round(ours_peak, 1),
            "rss_growth_over_frame": round(ours_peak / frame_mib, 2),
            "event_bytes_mean": round(transport.bytes / args.rows, 1),
            "python": sys.version.split()[0],
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
