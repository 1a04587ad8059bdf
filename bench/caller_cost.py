"""Caller cost of ``log_model_call`` while delivering to the local Kafka broker.

Measures each call with ``perf_counter_ns`` and compares it, in the same run
and process, with the floor: ``json.dumps`` of the same fields plus a raw
confluent-kafka ``produce()`` on a producer configured as the SDK's (idempotent,
acks=all, zstd, linger 20 ms) with its own poll thread. Rounds alternate
between the two so that machine noise hits both alike.

Needs the broker: ``scripts/kafka-dev up``. Run: ``python bench/caller_cost.py``.
"""

import argparse
import gc
import json
import time
import uuid
import warnings
from typing import Any, Dict, List

from _common import BOOTSTRAP, SKETCH, PollThread, bench_spool_dir, summary
from confluent_kafka import Producer

from vdt_ai import VDTClient
from vdt_ai.kafka.config import producer_config


def floor_round(producer: Any, topic: str, calls: int, out: List[int]) -> None:
    dumps = json.dumps
    produce = producer.produce
    clock = time.perf_counter_ns

    def on_delivery(error: Any, message: Any) -> None:
        pass

    for _ in range(calls):
        start = clock()
        value = dumps(SKETCH).encode()
        produce(topic, value, b"recommendation_model", on_delivery=on_delivery)
        out.append(clock() - start)


def sdk_round(client: VDTClient, calls: int, out: List[int]) -> None:
    log = client.log_model_call
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        log(
            model_name="recommendation_model",
            input_data={"user_id": 123},
            prediction={"items": [1, 2, 3]},
            latency_ms=45,
        )
        out.append(clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bootstrap-servers", default=BOOTSTRAP)
    args = parser.parse_args()

    prefix = "bench" + uuid.uuid4().hex[:8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = VDTClient(
            bootstrap_servers=args.bootstrap_servers,
            topic_prefix=prefix,
            handle_sigterm=False,
            spool_dir=bench_spool_dir(),
        )
    raw = Producer(producer_config(client.settings))
    poller = PollThread(raw)
    topic = f"{prefix}.raw"

    # Warm up both paths (connections, topic metadata, code caches).
    sdk_round(client, 2000, [])
    floor_round(raw, topic, 2000, [])
    client.flush(30)
    raw.flush(30)

    floor_ns: List[int] = []
    sdk_ns: List[int] = []
    gc.collect()
    for _ in range(args.rounds):
        floor_round(raw, topic, args.calls, floor_ns)
        raw.flush(30)
        sdk_round(client, args.calls, sdk_ns)
        client.flush(30)
    poller.stop()
    stats = client.stats()
    client.close()

    floor = summary(floor_ns)
    sdk = summary(sdk_ns)
    print(f"calls: {len(sdk_ns)} per side, {args.rounds} alternating rounds")
    print(f"{'':28s}{'median':>10s}{'p90':>10s}{'p99':>10s}{'mean':>10s}   (us)")
    for name, row in (
        ("floor json.dumps+produce", floor),
        ("vdt_ai log_model_call", sdk),
    ):
        print(
            f"{name:28s}{row['median_us']:10.2f}{row['p90_us']:10.2f}"
            f"{row['p99_us']:10.2f}{row['mean_us']:10.2f}"
        )
    ratio: Dict[str, float] = {
        key: sdk[key] / floor[key] for key in ("median_us", "p99_us")
    }
    print(
        f"ratio sdk/floor: median {ratio['median_us']:.2f}x, p99 {ratio['p99_us']:.2f}x"
    )
    print(f"targets: median <= 15 us, p99 <= 60 us; delivered {stats.delivered}")


if __name__ == "__main__":
    main()
