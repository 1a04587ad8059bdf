"""Caller cost of ``log_model_call`` with typed ML fields, fast path vs reference.

Each case (a label and score, class probabilities, an embedding as a list or a
numpy array, feature importances) is logged by one client with its fast path
on and by the same client with it off (the reference path: Pydantic
validation, then the encoder), in alternating rounds on a no-op transport,
beside the common four-argument call as the baseline. Prints the median cost
per call of each and the ratios.

Run: ``python bench/typed_fields.py`` (numpy needed).
"""

import argparse
import random
import statistics
import time
from typing import Any, Callable, Dict, List

import numpy as np

from vdt_ai import VDTClient
from vdt_ai.transport import Counters, Transport


class NoOpTransport(Transport):
    """Takes every record and forgets it."""

    def send(self, record: Any, counters: Counters) -> None:
        return None


def cases() -> Dict[str, Dict[str, Any]]:
    rng = random.Random(7)
    vector = [rng.random() for _ in range(384)]
    common: Dict[str, Any] = {
        "model_name": "classifier",
        "input_data": {"user_id": 123, "country": "fr"},
        "latency_ms": 4.5,
    }
    return {
        "common call (baseline)": {**common, "prediction": {"items": [1, 2, 3]}},
        "label + score": {
            **common,
            "prediction_label": "cat",
            "prediction_score": 0.93,
        },
        "label + 3 class probabilities": {
            **common,
            "prediction_label": "cat",
            "class_probabilities": {"cat": 0.9, "dog": 0.07, "fox": 0.03},
        },
        "embedding, list of 384": {
            **common,
            "embedding": vector,
            "embedding_name": "text",
        },
        "embedding, numpy float32 384": {
            **common,
            "embedding": np.array(vector, dtype=np.float32),
        },
        "5 feature importances": {
            **common,
            "feature_importance": {f"f{i}": rng.uniform(-1, 1) for i in range(5)},
        },
    }


def per_call_us(call: Callable[[], Any], calls: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(calls):
        call()
    return (clock() - start) / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    client = VDTClient(transport=NoOpTransport(), handle_sigterm=False)
    pipeline = client._pipeline
    assert pipeline.fast, "the fast path needs a client without rules or hooks"
    log = client.log_model_call
    timings: Dict[str, Dict[str, List[float]]] = {}
    for name, arguments in cases().items():

        def call(arguments: Dict[str, Any] = arguments) -> Any:
            return log(**arguments)

        fast: List[float] = []
        reference: List[float] = []
        for _ in range(args.rounds):
            pipeline.fast = True
            fast.append(per_call_us(call, args.calls))
            pipeline.fast = False
            reference.append(per_call_us(call, args.calls))
        pipeline.fast = True
        timings[name] = {"fast": fast, "reference": reference}
    client.close()
    baseline = statistics.median(timings["common call (baseline)"]["fast"])
    print(
        f"{'case':32} {'fast us':>9} {'reference us':>13} {'ref/fast':>9}"
        f" {'fast/baseline':>14}"
    )
    for name, both in timings.items():
        fast_us = statistics.median(both["fast"])
        reference_us = statistics.median(both["reference"])
        print(
            f"{name:32} {fast_us:9.1f} {reference_us:13.1f} "
            f"{reference_us / fast_us:8.2f}x {fast_us / baseline:13.2f}x"
        )
    print(f"(medians of {args.rounds} alternating rounds of {args.calls} calls)")


if __name__ == "__main__":
    main()
