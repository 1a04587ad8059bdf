"""Integration tests: a real Apache Kafka broker from scripts/kafka-dev.

The broker is started if it is not answering (never skipped); tests that stop
or kill it bring it back before they end.
"""

import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Set, Tuple, cast

import pytest
from confluent_kafka import Consumer

from vdt_ai import decode
from vdt_ai.codec import LOGGED_SUFFIXES, Record

from .._broker import under_broker_lock

ROOT = Path(__file__).resolve().parents[2]
KAFKA_DEV = str(ROOT / "scripts" / "kafka-dev")
BOOTSTRAP = "127.0.0.1:9092"
SASL = "127.0.0.1:9094"
SSL = "127.0.0.1:9095"
TLS_DIR = ROOT / ".cache" / "kafka" / "tls"

pytestmark = pytest.mark.integration


def kafka_dev(command: str) -> None:
    """Runs scripts/kafka-dev COMMAND (up, down, kill, pause, resume) under the
    broker's lock; fails the test when it fails."""
    result = subprocess.run(
        under_broker_lock(["bash", KAFKA_DEV, command]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"kafka-dev {command}: {result.stderr[-2000:]}"


def broker_answers() -> bool:
    return (
        subprocess.run(["bash", KAFKA_DEV, "status"], capture_output=True).returncode
        == 0
    )


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    if not broker_answers():
        kafka_dev("up")
    yield BOOTSTRAP


@pytest.fixture
def prefix(broker: str) -> str:
    """A topic prefix of this test's own, so tests never see each other's events."""
    return "it" + uuid.uuid4().hex[:10]


@pytest.fixture
def restore_broker(broker: str) -> Iterator[None]:
    """For tests that stop or kill the broker: it is up again afterwards."""
    yield
    if not broker_answers():
        kafka_dev("up")


def topics_of(prefix: str) -> List[str]:
    """The topics of the events the tests log (not the SDK's own reports)."""
    return [f"{prefix}.{suffix}" for suffix in LOGGED_SUFFIXES]


def consume(
    topics: Iterable[str],
    expected: Set[str],
    timeout: float = 60.0,
    bootstrap: str = BOOTSTRAP,
) -> Dict[str, List[Record]]:
    """Reads ``topics`` from the start until every id in ``expected`` arrived.

    Returns:
        event id -> every record seen with it (more than one is a duplicate).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "test-" + uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe(list(topics))
    seen: Dict[str, List[Record]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    idle_after_complete = 0
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(num_messages=5000, timeout=0.5)
            for message in messages:
                if message.error():
                    continue
                record = Record(
                    str(message.topic()),
                    bytes(message.key() or b""),
                    bytes(message.value() or b""),
                    cast(List[Tuple[str, bytes]], message.headers() or []),
                )
                seen[dict(record.headers)["vdt-event-id"].decode()].append(record)
            if expected.issubset(seen.keys()):
                # Linger briefly to catch duplicates that arrive right after.
                idle_after_complete += 0 if messages else 1
                if idle_after_complete >= 2:
                    break
    finally:
        consumer.close()
    return seen


def assert_all_delivered(seen: Dict[str, List[Record]], expected: Set[str]) -> int:
    """Every expected id arrived and decodes to itself; returns the duplicates."""
    missing = expected - seen.keys()
    assert not missing, f"{len(missing)} of {len(expected)} events never arrived"
    duplicates = 0
    for event_id in expected:
        records = seen[event_id]
        duplicates += len(records) - 1
        assert str(decode(records[0].value).event_id) == event_id
    return duplicates


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_key() -> Tuple[str, str, str]:
    key_id = uuid.uuid4().hex[:12]
    secret = uuid.uuid4().hex  # 32 [0-9a-f] characters
    return key_id, secret, f"vdt_{key_id}_{secret}"


@pytest.fixture
def scram_user(broker: str) -> Iterator[Tuple[str, str, str]]:
    """A SCRAM-SHA-512 user made through the admin client on 9092."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    key_id, secret, key = make_key()
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    upsert = UserScramCredentialUpsertion(
        key_id,
        ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
        secret.encode(),
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)
    _wait_until_scram_works(key_id, secret)
    yield key_id, secret, key


def _wait_until_scram_works(user: str, password: str, timeout: float = 30.0) -> None:
    """Waits until the SASL listener accepts the new credential (it
    propagates through the metadata log: under load, well past a second)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": SASL,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": password,
        }
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=2)  # needs no ACL: authentication only
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def grant(key_id: str, prefix: str) -> None:
    """WRITE/DESCRIBE/READ/CREATE on the prefix's topics, READ on the CLI's
    groups. (Since Kafka 3.0 WRITE implies idempotent writes: no cluster ACL.)"""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    bindings = [
        AclBinding(
            ResourceType.TOPIC,
            prefix + ".",
            ResourcePatternType.PREFIXED,
            f"User:{key_id}",
            "*",
            operation,
            AclPermissionType.ALLOW,
        )
        for operation in (
            AclOperation.WRITE,
            AclOperation.DESCRIBE,
            AclOperation.READ,
            AclOperation.CREATE,
        )
    ] + [
        AclBinding(
            ResourceType.GROUP,
            "vdt-ai-",
            ResourcePatternType.PREFIXED,
            f"User:{key_id}",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        ),
    ]
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)
    time.sleep(1.0)
