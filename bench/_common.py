"""Helpers shared by the benchmark scripts (not part of the package)."""

import atexit
import shutil
import statistics
import tempfile
import threading
from typing import Any, Dict, List, Sequence

BOOTSTRAP = "127.0.0.1:9092"

# The original sketch's call (Any values: it is splatted into log_model_call).
SKETCH: Dict[str, Any] = {
    "model_name": "recommendation_model",
    "input_data": {"user_id": 123},
    "prediction": {"items": [1, 2, 3]},
    "latency_ms": 45,
}


def bench_spool_dir() -> str:
    """A new spool folder for a benchmark's client, removed at exit.

    A full producer queue spills to the spool: into the default one, a run
    stopped midway would leave bench events there that the user's own
    programs would later replay into Kafka.
    """
    folder = tempfile.mkdtemp(prefix="vdt-bench-spool-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of an ascending list."""
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return sorted_values[index]


def summary(values_ns: List[int]) -> Dict[str, float]:
    """Median, p90, p99 and mean in microseconds."""
    ordered = sorted(values_ns)
    return {
        "median_us": percentile(ordered, 0.5) / 1000,
        "p90_us": percentile(ordered, 0.9) / 1000,
        "p99_us": percentile(ordered, 0.99) / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
    }


class PollThread:
    """Serves a raw confluent-kafka producer's delivery reports, as the SDK does."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
