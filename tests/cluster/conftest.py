"""Cluster tests: a real 3-node Kafka cluster from `scripts/kafka-dev cluster`.

The cluster is started if it does not answer (never skipped) and every node is
running again after each test. `make cluster` stops it at the end.
"""

import subprocess
import time
from typing import Any, Dict, Iterator, List

import pytest

from ..integration.conftest import KAFKA_DEV

NODES = {1: "127.0.0.1:19092", 2: "127.0.0.1:19093", 3: "127.0.0.1:19094"}
BOOTSTRAP = ",".join(NODES.values())

pytestmark = pytest.mark.integration


def cluster(*args: str, check: bool = True) -> "subprocess.CompletedProcess[str]":
    """Runs `scripts/kafka-dev cluster ARGS`; fails the test when it fails."""
    result = subprocess.run(
        ["bash", KAFKA_DEV, "cluster", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, f"cluster {args}: {result.stderr[-2000:]}"
    return result


def cluster_healthy() -> bool:
    return cluster("status", check=False).returncode == 0


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[str]:
    if not cluster_healthy():
        cluster("up")
    yield BOOTSTRAP


@pytest.fixture
def all_nodes_back(kafka_cluster: str) -> Iterator[str]:
    """Every node runs again, and every partition is fully replicated, after
    the test (the next one starts from a healthy cluster)."""
    yield kafka_cluster
    for node in NODES:
        cluster("start", str(node))
    cluster("up")  # waits for three registered brokers and a quorum leader


_admin: List[Any] = []


def admin_client() -> Any:
    """One AdminClient for the whole session. A new one per look would stall
    the process under test: confluent-kafka builds it holding the GIL while
    librdkafka waits for its new threads to start (rd_kafka_new), several ms
    and more on a busy machine, and the tests poll every 0.5 s mid-restart."""
    if not _admin:
        from confluent_kafka.admin import AdminClient

        _admin.append(AdminClient({"bootstrap.servers": BOOTSTRAP}))
    return _admin[0]


def leaders(topic: str) -> Dict[int, int]:
    """partition -> node leading it (-1 while it has no leader)."""
    metadata = admin_client().list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    return {p: info.leader for p, info in partitions.items()}


def node_leading_most(topic: str) -> int:
    counts: Dict[int, int] = {}
    for leader in leaders(topic).values():
        if leader >= 0:
            counts[leader] = counts.get(leader, 0) + 1
    return max(counts, key=lambda node: counts[node])


def fully_replicated(topics: List[str]) -> bool:
    """Every partition of ``topics`` has a leader and three in-sync replicas."""
    try:
        metadata = admin_client().list_topics(timeout=10)
    except Exception:
        return False
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            return False
        for partition in info.partitions.values():
            if partition.leader < 0 or len(partition.isrs) < 3:
                return False
    return True


def wait_replicated(topics: List[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fully_replicated(topics):
            return
        time.sleep(0.5)
    raise AssertionError(f"{topics} not fully replicated within {timeout}s")
