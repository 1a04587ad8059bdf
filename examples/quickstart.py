"""Quickstart: log every kind of event, then read them back.

``make demo`` starts the local Kafka broker (scripts/kafka-dev) and runs::

    python examples/quickstart.py --bootstrap-servers 127.0.0.1:9092

which delivers the events to Kafka and reads them back from their topics with
a consumer. Without ``--bootstrap-servers`` the client runs in offline mode:
events are kept in a local spool folder, read back with
``vdt_ai.spool.iter_events``.
"""

import argparse
import datetime as dt
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Iterator, List, Optional

from vdt_ai import Event, OfflineModeWarning, VDTClient, decode
from vdt_ai.codec import LOGGED_SUFFIXES
from vdt_ai.spool import iter_events

# A well-formed demo key: vdt_<12-char key id>_<32-char secret>.
DEMO_KEY = "vdt_demo00000001_" + "D" * 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", help="Kafka brokers; omit for offline")
    args = parser.parse_args()
    servers: Optional[str] = args.bootstrap_servers
    spool = Path(tempfile.mkdtemp(prefix="vdt-ai-demo-"))
    prefix = "demo" + uuid.uuid4().hex[:8]  # topics of this run only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineModeWarning)  # expected offline
        client = VDTClient(
            api_key=DEMO_KEY,
            bootstrap_servers=servers,
            topic_prefix=prefix,
            spool_dir=spool,
            service="quickstart",
            environment="dev",
        )
    print(client)

    # The calls from the original sketch, unchanged.
    client.log_model_call(
        model_name="recommendation_model",
        input_data={"user_id": 123},
        prediction={"items": [1, 2, 3]},
        latency_ms=45,
    )
    client.log_data_quality(
        dataset_name="user_features",
        record_count=10000,
        null_count=15,
        anomaly_score=0.02,
    )

    # The rest of the API.
    started = dt.datetime.now(dt.timezone.utc)
    client.log_job_run("nightly_training", "started", run_id="run-42")
    client.log_metrics({"loss": 0.31, "accuracy": 0.91}, step=1, run_id="run-42")
    client.log_metric("loss", 0.27, step=2, run_id="run-42")
    client.log_model_call(
        "chat_model",
        input_data={"prompt": "Hello"},
        prediction="Hi there",
        latency_ms=820.5,
        request_id="req-1",
        prompt_tokens=12,
        completion_tokens=5,
        cost=0.0004,
    )
    client.log_ground_truth("req-1", actual="Hello!", model_name="chat_model")
    time.sleep(0.01)
    client.log_job_run(
        "nightly_training",
        "succeeded",
        run_id="run-42",
        start_time=started,
        end_time=dt.datetime.now(dt.timezone.utc),
        metrics={"rows": 10000},
    )
    client.close()

    print(f"\nstats: {client.stats().as_dict()}")
    if servers:
        print(f"events read back from Kafka topics {prefix}.*:")
        events: List[Event] = list(read_back(servers, prefix, expected=9))
    else:
        print(f"events kept offline in {spool}:")
        events = list(iter_events(spool))
    for event in sorted(events, key=lambda e: e.event_id):
        fields = event.model_dump(
            mode="json",
            exclude={"event_id", "timestamp", "source", "tags"},
            exclude_none=True,
        )
        print(f"  {event.event_type.value:<13} {fields}")
    shutil.rmtree(spool)
    if len(events) != 9:
        raise SystemExit(f"expected 9 events, found {len(events)}")


def read_back(servers: str, prefix: str, expected: int) -> Iterator[Event]:
    """Consumes this run's topics from the start until ``expected`` events came."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": prefix,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([f"{prefix}.{suffix}" for suffix in LOGGED_SUFFIXES])
    found = 0
    deadline = time.monotonic() + 30
    try:
        while found < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            found += 1
            yield decode(message.value() or b"")
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
