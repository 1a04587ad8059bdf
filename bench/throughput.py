"""End-to-end throughput: events acked by Kafka per second.

Three producers send the same records to the local broker in one run, in
alternating rounds: the SDK (``log_model_call`` → validate, encode, produce,
count acks), raw confluent-kafka producing the SDK's encoded bytes with the
same configuration, and kafka-python producing the same bytes. Each round
times from the first call to the last acknowledgement (``flush``).

Needs the broker: ``scripts/kafka-dev up``. Run: ``python bench/throughput.py``.
"""

import argparse
import statistics
import time
import uuid
import warnings
from typing import Any, Dict, List

from _common import BOOTSTRAP, SKETCH, bench_spool_dir
from confluent_kafka import Producer

from vdt_ai import VDTClient
from vdt_ai.codec import Record, encode
from vdt_ai.kafka.config import producer_config
from vdt_ai.models import ModelCall


def acked(client: VDTClient) -> int:
    stats = client.stats()
    return stats.delivered + stats.replayed


def sdk_round(client: VDTClient, events: int) -> float:
    # Acked live or, past the 10,000-record queue, via the spool and replay.
    before = acked(client)
    start = time.perf_counter()
    log = client.log_model_call
    for _ in range(events):
        log(**SKETCH)
    client.flush(120)
    elapsed = time.perf_counter() - start
    assert acked(client) - before == events, client.stats()
    return events / elapsed


def confluent_round(producer: Any, records: List[Record], topic: str) -> float:
    acked = [0]

    def on_delivery(error: Any, message: Any) -> None:
        if error is None:
            acked[0] += 1

    produce = producer.produce
    start = time.perf_counter()
    for record in records:
        while True:
            try:
                produce(topic, record.value, record.key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert acked[0] == len(records)
    return len(records) / elapsed


def kafka_python_round(producer: Any, records: List[Record], topic: str) -> float:
    start = time.perf_counter()
    futures = [producer.send(topic, value=r.value, key=r.key) for r in records]
    producer.flush(120)
    elapsed = time.perf_counter() - start
    assert all(f.succeeded() for f in futures)
    return len(records) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap-servers", default=BOOTSTRAP)
    parser.add_argument("--skip-kafka-python", action="store_true")
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
    records = [
        encode(ModelCall(**SKETCH), topic_prefix=prefix) for _ in range(args.events)
    ]
    raw = Producer(producer_config(client.settings))
    kp: Any = None
    if not args.skip_kafka_python:
        from kafka import KafkaProducer

        kp = KafkaProducer(
            bootstrap_servers=args.bootstrap_servers,
            acks="all",
            linger_ms=20,
            enable_idempotence=True,
        )

    # Warm-up: connections, metadata, topic creation.
    sdk_round(client, 2000)
    confluent_round(raw, records[:2000], f"{prefix}.raw")
    if kp is not None:
        kafka_python_round(kp, records[:2000], f"{prefix}.kp")

    rates: Dict[str, List[float]] = {"sdk": [], "confluent": [], "kafka-python": []}
    for _ in range(args.rounds):
        rates["confluent"].append(confluent_round(raw, records, f"{prefix}.raw"))
        rates["sdk"].append(sdk_round(client, args.events))
        if kp is not None:
            rates["kafka-python"].append(
                kafka_python_round(kp, records, f"{prefix}.kp")
            )
    client.close()
    if kp is not None:
        kp.close()

    size = sum(len(r.value) for r in records) / len(records)
    print(
        f"{args.events} events per round, {args.rounds} rounds, {size:.0f}-byte values"
    )
    medians = {name: statistics.median(v) for name, v in rates.items() if v}
    for name, median in medians.items():
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(f"{name:14s} median {median:>10,.0f} events/s   (rounds: {runs})")
    print(f"ratio sdk/confluent-kafka: {medians['sdk'] / medians['confluent']:.2f}")
    if "kafka-python" in medians:
        print(
            f"ratio sdk/kafka-python:   {medians['sdk'] / medians['kafka-python']:.2f}"
        )
    print("target: >= 50,000 events/s")


if __name__ == "__main__":
    main()
