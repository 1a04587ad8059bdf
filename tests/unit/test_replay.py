"""Spool replay logic with a stand-in producer (the real broker is exercised in
tests/integration): what is deleted, what is kept, what is counted."""

import os
from pathlib import Path
from typing import Any, Callable, List, Optional, Set

import pytest

from vdt_ai import Metric, Stats, encode, load_settings
from vdt_ai.codec import Record
from vdt_ai.kafka.transport import KafkaTransport
from vdt_ai.spool import SpoolWriter, iter_records, segment_paths
from vdt_ai.transport import Counters


class FakeError:
    def code(self) -> int:
        return -192

    def name(self) -> str:
        return "_MSG_TIMED_OUT"

    def str(self) -> str:
        return "timed out"


class FakeMessage:
    def __init__(self, topic: str, value: bytes, key: bytes) -> None:
        self._topic, self._value, self._key = topic, value, key

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None


class FakeProducer:
    """Acks or fails each record at once; may refuse with BufferError first."""

    def __init__(self) -> None:
        self.sent: List[bytes] = []
        self.fail_values: Set[bytes] = set()
        self.buffer_errors = 0
        self.metadata_ok = True

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: Any = None,
        on_delivery: Optional[Callable[[Any, Any], None]] = None,
    ) -> None:
        if self.buffer_errors:
            self.buffer_errors -= 1
            raise BufferError("queue full")
        self.sent.append(value)
        error = FakeError() if value in self.fail_values else None
        assert on_delivery is not None
        on_delivery(error, FakeMessage(topic, value, key))

    def list_topics(self, timeout: float) -> None:
        if not self.metadata_ok:
            raise RuntimeError("no metadata")

    def __len__(self) -> int:
        return 0


class FakeShared:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.producer = FakeProducer()
        self.healthy = False

    def flush(self, timeout: float) -> int:
        return 0

    def remove_error_listener(self, listener: Any) -> None:
        pass


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    counters = Counters()
    transport = KafkaTransport(
        load_settings(
            bootstrap_servers="127.0.0.1:1",
            spool_dir=tmp_path / "spool",
            handle_sigterm=False,
        ),
        counters=counters,
    )
    shared = FakeShared()
    transport._shared = shared  # type: ignore[assignment]
    yield transport, shared, counters
    transport._shared = None
    transport.close(0)


def records(n: int) -> List[Record]:
    return [encode(Metric(name="m", value=i + 0.5)) for i in range(n)]


def test_replays_every_segment_and_deletes_it(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    # Segments left by an earlier run, plus records in this process's own.
    earlier = SpoolWriter(tmp_path / "spool", 10**9, segment_bytes=300)
    for record in records(5):
        earlier.append(record)
    earlier.close()
    for record in records(3):
        transport.spool.append(record)
    assert transport.replayer._replay_all() is True
    assert len(shared.producer.sent) == 8
    assert not segment_paths(tmp_path / "spool")
    assert counters.snapshot() == Stats(replayed=8)


def test_failed_records_go_back_to_the_spool(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    sent = records(4)
    for record in sent:
        transport.spool.append(record)
    shared.producer.fail_values = {sent[1].value, sent[3].value}
    assert transport.replayer._replay_all() is False  # not everything went
    transport.spool.roll()
    left = list(iter_records(tmp_path / "spool"))
    assert [r.value for r in left] == [sent[1].value, sent[3].value]
    assert [r.headers for r in left] == [sent[1].headers, sent[3].headers]
    assert counters.snapshot() == Stats(replayed=2)


def test_queue_full_waits_its_turn(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    for record in records(2):
        transport.spool.append(record)
    shared.producer.buffer_errors = 3
    assert transport.replayer._replay_all() is True
    assert counters.snapshot().replayed == 2


def test_nothing_is_sent_while_kafka_is_unreachable(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    transport.spool.append(records(1)[0])
    shared.producer.metadata_ok = False
    assert transport.replayer._replay_all() is False
    assert shared.producer.sent == []
    shared.healthy = True  # a recent ack counts as reachable
    assert transport.replayer._replay_all() is True
    assert len(shared.producer.sent) == 1


def test_a_segment_in_use_by_a_writer_is_skipped(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    other = SpoolWriter(tmp_path / "spool", 10**9)  # another live writer
    other.append(records(1)[0])
    assert transport.replayer._replay_all() is False  # its segment stays
    assert shared.producer.sent == []
    other.close()  # closing releases the lock
    assert transport.replayer._replay_all() is True
    assert len(shared.producer.sent) == 1


def test_empty_spool_is_idle_and_closed_transport_does_nothing(setup: Any) -> None:
    transport, shared, counters = setup
    assert transport.replayer._replay_all() is True
    assert transport.replayer.wait_idle(0.01) == 0
    transport.spool.append(records(1)[0])
    transport._closed = True
    assert transport.replayer._replay_all() is False
    assert shared.producer.sent == []
    transport._closed = False


def test_wake_runs_the_thread_and_wait_idle_reports(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    shared.healthy = True
    for record in records(3):
        transport.spool.append(record)
    transport.replayer.wake()
    assert transport.replayer.wait_idle(5) == 0
    assert counters.snapshot().replayed == 3
    assert not segment_paths(tmp_path / "spool")
    transport.replayer.stop(join_timeout=1)
    transport.replayer.wake()  # after stop: ignored


def test_full_spool_during_respool_counts_dropped(setup: Any, tmp_path: Path) -> None:
    transport, shared, counters = setup
    sent = records(2)
    for record in sent:
        transport.spool.append(record)
    shared.producer.fail_values = {sent[0].value, sent[1].value}
    transport.spool.max_bytes = 0  # no room to put them back
    transport.replayer._replay_all()
    assert counters.snapshot().dropped == 2
