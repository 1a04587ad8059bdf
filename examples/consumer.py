"""Consumer side: read every vdt-ai topic, decode, drop duplicates, summarise.

Delivery to Kafka is at least once: an event whose ack was lost (a broker
restart, a timeout) is sent again from the spool, so a reader may see it
twice. Every record carries its event's id in the ``vdt-event-id`` header, so
a consumer drops the copies by that id without decoding them::

    python examples/consumer.py --bootstrap-servers 127.0.0.1:9092
    python examples/consumer.py --bootstrap-servers 127.0.0.1:9092 \\
        --topic-prefix vdt --group-id my-reader --idle-timeout 10 --json

It subscribes to the topics of logged events ``<prefix>.model_calls``,
``.data_quality``, ``.metrics``, ``.ground_truth``, ``.job_runs`` and
``.data_profiles`` (not the SDK's own ``.sdk_reports``), decodes each value with
:func:`vdt_ai.decode`, and stops after ``--idle-timeout`` seconds without a
new record (or after ``--max-events``). It then prints, per model, the calls,
errors, latency (mean and p95), tokens, cost and ground-truth labels, and the
counts of the other event kinds. A real consumer would keep the seen ids in a
store with a retention (a day is plenty) instead of a set in memory.
"""

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Set, Tuple

from confluent_kafka import Consumer, KafkaError, Message

from vdt_ai import (
    DataQuality,
    Event,
    GroundTruth,
    JobRun,
    Metric,
    ModelCall,
    decode,
)
from vdt_ai.codec import HEADER_EVENT_ID, LOGGED_SUFFIXES


class ModelSummary:
    """What the events of one model add up to."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.latencies: List[float] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0
        self.ground_truth = 0

    def as_dict(self) -> Dict[str, Any]:
        """The summary as plain values (latencies in milliseconds)."""
        ordered = sorted(self.latencies)
        mean = sum(ordered) / len(ordered) if ordered else None
        p95 = (
            ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            if ordered
            else None
        )
        return {
            "calls": self.calls,
            "errors": self.errors,
            "latency_ms_mean": mean,
            "latency_ms_p95": p95,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 10),
            "ground_truth": self.ground_truth,
        }


class Summary:
    """Counts events once each (by ``vdt-event-id``) and folds them per model."""

    def __init__(self) -> None:
        self.seen: Set[str] = set()
        self.events = 0
        self.duplicates = 0
        self.undecodable = 0
        self.models: Dict[str, ModelSummary] = {}
        self.datasets: Dict[str, int] = {}
        self.metrics: Dict[str, int] = {}
        self.jobs: Dict[str, Dict[str, int]] = {}

    def add_record(self, event_id: Optional[str], value: bytes) -> bool:
        """Adds one record; returns False for a duplicate or undecodable one."""
        if event_id is not None:
            if event_id in self.seen:
                self.duplicates += 1
                return False
            self.seen.add(event_id)
        try:
            event = decode(value)
        except Exception:  # a record this reader cannot decode: counted, skipped
            self.undecodable += 1
            return False
        if event_id is None:  # a record without headers: fall back to the body
            if str(event.event_id) in self.seen:
                self.duplicates += 1
                return False
            self.seen.add(str(event.event_id))
        self.add(event)
        return True

    def add(self, event: Event) -> None:
        """Folds one decoded event into the summary."""
        self.events += 1
        if isinstance(event, ModelCall):
            model = self._model(event.model_name)
            model.calls += 1
            if event.status.value == "error":
                model.errors += 1
            if event.latency_ms is not None:
                model.latencies.append(event.latency_ms)
            model.prompt_tokens += event.prompt_tokens or 0
            model.completion_tokens += event.completion_tokens or 0
            model.cost += event.cost or 0.0
        elif isinstance(event, GroundTruth):
            self._model(event.model_name or "(no model)").ground_truth += 1
        elif isinstance(event, DataQuality):
            name = event.dataset_name
            self.datasets[name] = self.datasets.get(name, 0) + 1
        elif isinstance(event, Metric):
            self.metrics[event.name] = self.metrics.get(event.name, 0) + 1
        elif isinstance(event, JobRun):
            statuses = self.jobs.setdefault(event.job_name, {})
            statuses[event.status.value] = statuses.get(event.status.value, 0) + 1

    def _model(self, name: str) -> ModelSummary:
        return self.models.setdefault(name, ModelSummary())

    def as_dict(self) -> Dict[str, Any]:
        """The whole summary as plain values (what ``--json`` prints)."""
        return {
            "events": self.events,
            "duplicates_dropped": self.duplicates,
            "undecodable": self.undecodable,
            "models": {name: m.as_dict() for name, m in sorted(self.models.items())},
            "datasets": dict(sorted(self.datasets.items())),
            "metrics": dict(sorted(self.metrics.items())),
            "jobs": dict(sorted(self.jobs.items())),
        }

    def lines(self) -> List[str]:
        """The summary as a human-readable table."""
        out = [
            f"{self.events} events ({self.duplicates} duplicates dropped, "
            f"{self.undecodable} undecodable)",
            "",
            f"{'model':<28} {'calls':>6} {'errors':>6} {'mean ms':>9} "
            f"{'p95 ms':>9} {'tokens':>8} {'cost':>10} {'labels':>6}",
        ]
        for name, model in sorted(self.models.items()):
            row = model.as_dict()
            mean = f"{row['latency_ms_mean']:.1f}" if row["latency_ms_mean"] else "-"
            p95 = f"{row['latency_ms_p95']:.1f}" if row["latency_ms_p95"] else "-"
            tokens = row["prompt_tokens"] + row["completion_tokens"]
            out.append(
                f"{name:<28} {row['calls']:>6} {row['errors']:>6} {mean:>9} "
                f"{p95:>9} {tokens:>8} {row['cost']:>10.4f} {row['ground_truth']:>6}"
            )
        for title, counts in (("datasets", self.datasets), ("metrics", self.metrics)):
            if counts:
                listed = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
                out.append(f"{title}: {listed}")
        for job, statuses in sorted(self.jobs.items()):
            listed = ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items()))
            out.append(f"job {job}: {listed}")
        return out


def event_id_of(message: Message) -> Optional[str]:
    """The ``vdt-event-id`` header of ``message`` (None when it has none)."""
    headers = message.headers()
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:
        if name == HEADER_EVENT_ID and value is not None:
            return (
                value.decode("ascii", "replace") if isinstance(value, bytes) else value
            )
    return None


def consume(
    consumer: Consumer,
    summary: Summary,
    idle_timeout: float,
    max_events: Optional[int] = None,
) -> Tuple[int, int]:
    """Polls until ``idle_timeout`` seconds pass without a record.

    Returns:
        ``(records read, partition errors seen)``.
    """
    records = errors = 0
    last = time.monotonic()
    while time.monotonic() - last < idle_timeout:
        if max_events is not None and summary.events >= max_events:
            break
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            # A topic not created yet (nothing sent to it) is not a failure.
            if error.code() not in (
                KafkaError._PARTITION_EOF,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            ):
                errors += 1
                print(f"consumer error: {error}", file=sys.stderr)
            continue
        records += 1
        last = time.monotonic()
        summary.add_record(event_id_of(message), message.value() or b"")
    return records, errors


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the example; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic-prefix", default="vdt")
    parser.add_argument("--group-id", default="vdt-ai-consumer-example")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="stop after this many seconds without a record (default 5)",
    )
    parser.add_argument("--max-events", type=int, help="stop after N unique events")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": args.group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            # Topics that appear while we read are picked up within a second.
            "topic.metadata.refresh.interval.ms": 1000,
            "allow.auto.create.topics": False,
        }
    )
    topics = [f"{args.topic_prefix}.{suffix}" for suffix in LOGGED_SUFFIXES]
    consumer.subscribe(topics)
    summary = Summary()
    try:
        records, errors = consume(consumer, summary, args.idle_timeout, args.max_events)
    finally:
        consumer.close()
    if args.json:
        print(json.dumps({"records": records, **summary.as_dict()}, sort_keys=True))
    else:
        print(f"read {records} records from {', '.join(topics)}")
        print("\n".join(summary.lines()))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
