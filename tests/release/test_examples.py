"""The examples that need only the core package, run against the dev broker.

The quickstart sends nine events; ``examples/consumer.py`` reads them back from
every topic, and drops a record sent twice by its ``vdt-event-id`` header.
"""

import json
import re
import subprocess
import sys
import uuid
from typing import Any, Dict, List, Tuple, Union

from confluent_kafka import Producer

from vdt_ai import ModelCall, Source
from vdt_ai.codec import Record, encode

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


def _run(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


KafkaHeaders = List[Tuple[str, Union[str, bytes, None]]]


def _produce(broker: str, records: List[Record]) -> None:
    producer = Producer({"bootstrap.servers": broker})
    for record in records:
        headers: KafkaHeaders = list(record.headers)
        producer.produce(record.topic, record.value, record.key, headers=headers)
    assert producer.flush(30) == 0


def _consume(broker: str, prefix: str, *extra: str) -> Dict[str, Any]:
    result = _run(
        str(EXAMPLES / "consumer.py"),
        "--bootstrap-servers",
        broker,
        "--topic-prefix",
        prefix,
        "--group-id",
        "test-" + uuid.uuid4().hex,
        "--idle-timeout",
        "4",
        "--json",
        *extra,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary: Dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_quickstart_then_consumer_reads_every_topic(broker: str) -> None:
    quickstart = _run(str(EXAMPLES / "quickstart.py"), "--bootstrap-servers", broker)
    assert quickstart.returncode == 0, quickstart.stderr[-3000:]
    match = re.search(r"Kafka topics (demo[0-9a-f]+)\.\*", quickstart.stdout)
    assert match, quickstart.stdout
    summary = _consume(broker, match.group(1))
    assert summary["records"] == 9
    assert summary["events"] == 9
    assert summary["duplicates_dropped"] == 0
    assert summary["undecodable"] == 0
    chat = summary["models"]["chat_model"]
    assert (chat["calls"], chat["ground_truth"], chat["prompt_tokens"]) == (1, 1, 12)
    assert chat["latency_ms_mean"] == 820.5
    assert summary["models"]["recommendation_model"]["calls"] == 1
    assert summary["datasets"] == {"user_features": 1}
    assert summary["metrics"] == {"accuracy": 1, "loss": 2}
    assert summary["jobs"] == {"nightly_training": {"started": 1, "succeeded": 1}}


def test_consumer_drops_a_record_sent_twice(broker: str) -> None:
    prefix = "cx" + uuid.uuid4().hex[:10]
    source = Source(service="test", environment="ci")
    calls: List[ModelCall] = [
        ModelCall(model_name="m1", latency_ms=10.0, source=source),
        ModelCall(
            model_name="m1", latency_ms=30.0, error_type="Timeout", source=source
        ),
        ModelCall(model_name="m2", latency_ms=5.0, source=source),
    ]
    records = [encode(call, topic_prefix=prefix) for call in calls]
    records.append(records[0])  # a retry whose first ack was lost
    _produce(broker, records)
    summary = _consume(broker, prefix)
    assert summary["records"] == 4
    assert summary["events"] == 3
    assert summary["duplicates_dropped"] == 1
    m1 = summary["models"]["m1"]
    assert (m1["calls"], m1["errors"], m1["latency_ms_mean"]) == (2, 1, 20.0)
    assert summary["models"]["m2"]["calls"] == 1


def test_consumer_prints_a_table(broker: str) -> None:
    prefix = "cx" + uuid.uuid4().hex[:10]
    record = encode(
        ModelCall(model_name="table_model", latency_ms=7.5), topic_prefix=prefix
    )
    _produce(broker, [record])
    result = _run(
        str(EXAMPLES / "consumer.py"),
        "--bootstrap-servers",
        broker,
        "--topic-prefix",
        prefix,
        "--group-id",
        "test-" + uuid.uuid4().hex,
        "--idle-timeout",
        "4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 events (0 duplicates dropped, 0 undecodable)" in result.stdout
    assert re.search(r"table_model\s+1\s+0\s+7\.5\s+7\.5", result.stdout), result.stdout


def test_batch_scoring_logs_a_frame_and_tails_it_back(broker: str) -> None:
    result = _run(
        str(EXAMPLES / "batch_scoring.py"),
        "--rows",
        "5000",
        "--bootstrap-servers",
        broker,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "log_predictions: 5,000 events" in result.stdout
    assert "delivered=5000" in result.stdout
    tailed = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")
    ]
    assert len(tailed) == 3
    for event in tailed:
        assert event["event_type"] == "model_call" and event["model_name"] == "churn"
        assert event["prediction_label"] in ("yes", "no")
        probabilities = event["class_probabilities"]
        assert probabilities[event["prediction_label"]] == event["prediction_score"]
        assert sorted(event["input_data"]) == [f"f{i}" for i in range(10)]


def test_embeddings_example_delivers_to_the_broker(broker: str) -> None:
    result = _run(str(EXAMPLES / "embeddings.py"), "--bootstrap-servers", broker)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "accepted=4, delivered=4" in result.stdout
