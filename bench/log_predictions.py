"""log_predictions on a numeric pandas frame against the issue's floor:
``json.dumps`` of each row of ``df.to_dict("records")``, in the same run.

    python bench/log_predictions.py [--rows 1000000]

The frame: 10 float columns plus a label and a score column. Events go to a
transport that only counts bytes (the SDK's own cost, no Kafka). The RSS
growth of log_predictions is its peak (sampled every 5 ms) over the RSS
before the call.
Prints one JSON object.
"""

import argparse
import gc
import json
import resource
import sys
import threading
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


def rss_mib() -> float:
    """The current resident set size (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class PeakSampler:
    """The highest RSS seen every 5 ms while running (ru_maxrss cannot say:
    building the frame already set it)."""

    def __init__(self) -> None:
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mib())


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
    gc.collect()
    before = rss_mib()
    sampler = PeakSampler()
    start = time.perf_counter()
    recorded = client.log_predictions(
        df, model_name="churn", label_column="label", score_column="score"
    )
    ours = time.perf_counter() - start
    ours_peak = sampler.stop() - before
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
