"""Acked throughput and caller latency on the 3-node cluster (RF 3) next to
the single broker, and next to raw confluent-kafka on the same cluster.

In alternating rounds, one run: the SDK (``log_model_call``) to the cluster,
raw confluent-kafka producing the SDK's encoded bytes to the cluster with the
SDK's producer configuration, and the SDK to the single dev broker. Each round
times from the first call to the last acknowledgement (``flush``) and times
every call (``perf_counter_ns``) for the latency percentiles.

Needs both: ``scripts/kafka-dev up`` and ``scripts/kafka-dev cluster up``.
Run: ``python bench/cluster.py [--events N] [--rounds R]``.
"""

import argparse
import statistics
import time
import uuid
import warnings
from typing import Any, Dict, List, Tuple

from _common import BOOTSTRAP, SKETCH, bench_spool_dir, percentile
from confluent_kafka import Producer

from vdt_ai import VDTClient
from vdt_ai.codec import Record, encode
from vdt_ai.kafka.config import producer_config
from vdt_ai.models import ModelCall

CLUSTER = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"

Round = Tuple[float, List[int]]  # events/s, per-call ns


def acked(client: VDTClient) -> int:
    stats = client.stats()
    return stats.delivered + stats.replayed


def sdk_round(client: VDTClient, events: int) -> Round:
    # Acked live or, past the 10,000-record queue, via the spool and replay.
    before = acked(client)
    log, clock = client.log_model_call, time.perf_counter_ns
    calls: List[int] = []
    add = calls.append
    start = time.perf_counter()
    for _ in range(events):
        t = clock()
        log(**SKETCH)
        add(clock() - t)
    assert client.flush(120) == 0
    elapsed = time.perf_counter() - start
    assert acked(client) - before == events, client.stats()
    return events / elapsed, calls


def raw_round(producer: Any, records: List[Record], topic: str) -> Round:
    acked = [0]

    def on_delivery(error: Any, message: Any) -> None:
        if error is None:
            acked[0] += 1

    produce, clock = producer.produce, time.perf_counter_ns
    calls: List[int] = []
    add = calls.append
    start = time.perf_counter()
    for record in records:
        t = clock()
        while True:
            try:
                produce(topic, record.value, record.key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        add(clock() - t)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert acked[0] == len(records)
    return len(records) / elapsed, calls


def new_client(bootstrap: str, prefix: str) -> VDTClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VDTClient(
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            handle_sigterm=False,
            spool_dir=bench_spool_dir(),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    prefix = "bench" + uuid.uuid4().hex[:8]
    on_cluster = new_client(CLUSTER, prefix)
    on_single = new_client(BOOTSTRAP, prefix)
    raw = Producer(producer_config(on_cluster.settings))
    records = [
        encode(ModelCall(**SKETCH), topic_prefix=prefix) for _ in range(args.events)
    ]
    # Warm-up: connections, metadata, topic creation.
    sdk_round(on_cluster, 2000)
    sdk_round(on_single, 2000)
    raw_round(raw, records[:2000], f"{prefix}.raw")

    runs: Dict[str, List[Round]] = {
        "raw, cluster": [],
        "sdk, cluster": [],
        "sdk, 1 broker": [],
    }
    for _ in range(args.rounds):
        runs["raw, cluster"].append(raw_round(raw, records, f"{prefix}.raw"))
        runs["sdk, cluster"].append(sdk_round(on_cluster, args.events))
        runs["sdk, 1 broker"].append(sdk_round(on_single, args.events))
    on_cluster.close()
    on_single.close()

    print(f"{args.events:,} events per round, {args.rounds} rounds (medians)")
    print(f"{'':16s}{'acked/s':>12s}{'call p50 us':>14s}{'call p99 us':>14s}")
    medians: Dict[str, float] = {}
    for name, rounds in runs.items():
        rate = statistics.median(r for r, _ in rounds)
        p50 = statistics.median(percentile(sorted(c), 0.5) for _, c in rounds) / 1e3
        p99 = statistics.median(percentile(sorted(c), 0.99) for _, c in rounds) / 1e3
        medians[name] = rate
        print(f"{name:16s}{rate:>12,.0f}{p50:>14.1f}{p99:>14.1f}")
    print(
        f"ratio sdk/raw on the cluster: "
        f"{medians['sdk, cluster'] / medians['raw, cluster']:.2f}; "
        f"sdk cluster/1 broker: "
        f"{medians['sdk, cluster'] / medians['sdk, 1 broker']:.2f}"
    )


if __name__ == "__main__":
    main()
