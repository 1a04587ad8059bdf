"""Spool replay logic with a stand-in producer (the real broker is exercised in
tests/integration): what is deleted, what is kept, what is counted."""

import os
from pathlib import Path
from typing import Any, Callable, List, Optional, Set

import pytest

from vdt_ai import Metric, Stats, encode
from vdt_ai.codec import Record
from vdt_ai.kafka.replay import Replayer
from vdt_ai.spool import SpoolWriter, iter_records, quarantined, segment_paths
from vdt_ai.transport import Counters


class FakeError:
    def __init__(self, code: int = -192, name: str = "_MSG_TIMED_OUT") -> None:
        self._code, self._name = code, name

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._name

    def fatal(self) -> bool:
        return False


class FakeKafkaException(Exception):
    """What produce() raises: a KafkaException carrying a KafkaError."""


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
        self.refuse_values: Set[bytes] = set()  # raise at produce() time
        self.hold_reports = False  # keep reports back (a hung broker)
        self.held: List[Any] = []

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
        if value in self.refuse_values:
            raise FakeKafkaException(FakeError(10, "MSG_SIZE_TOO_LARGE"))
        self.sent.append(value)
        error = FakeError() if value in self.fail_values else None
        assert on_delivery is not None
        if self.hold_reports:
            self.held.append((on_delivery, error, FakeMessage(topic, value, key)))
            return
        on_delivery(error, FakeMessage(topic, value, key))

    def release_reports(self) -> None:
        held, self.held = self.held, []
        for callback, error, message in held:
            callback(error, message)

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
        self.dead = False

    def mark_fatal(self, error: Any) -> None:
        self.dead = True


class Setup:
    """A replayer wired to a stand-in producer through its narrow inputs."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "spool"
        self.spool = SpoolWriter(self.folder, 10**9)
        self.shared: Optional[FakeShared] = FakeShared()
        self.counters = Counters()
        self.reports: List[Any] = []
        self.replayer = Replayer(
            self.spool,
            lambda: self.shared,  # type: ignore[arg-type,return-value]
            self.counters,
            lambda error, topic: self.reports.append((error.name(), topic)),
            delivery_timeout=0.2,
            report_grace=0.0,
        )

    @property
    def producer(self) -> FakeProducer:
        assert self.shared is not None
        return self.shared.producer


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    s = Setup(tmp_path)
    yield s
    s.replayer.stop(join_timeout=1)
    s.spool.close()


def records(n: int) -> List[Record]:
    return [encode(Metric(name="m", value=i + 0.5)) for i in range(n)]


def test_replays_every_segment_and_deletes_it(setup: Setup, tmp_path: Path) -> None:
    # Segments left by an earlier run, plus records in this process's own.
    earlier = SpoolWriter(setup.folder, 10**9, segment_bytes=300)
    for record in records(5):
        earlier.append(record)
    earlier.close()
    for record in records(3):
        setup.spool.append(record)
    assert setup.replayer.replay_all() is True
    assert len(setup.producer.sent) == 8
    assert not segment_paths(setup.folder)
    assert setup.counters.snapshot() == Stats(replayed=8)


def test_failed_records_go_back_to_the_spool(setup: Setup) -> None:
    sent = records(4)
    for record in sent:
        setup.spool.append(record)
    setup.producer.fail_values = {sent[1].value, sent[3].value}
    assert setup.replayer.replay_all() is False  # not everything went
    setup.spool.roll()
    left = list(iter_records(setup.folder))
    assert [r.value for r in left] == [sent[1].value, sent[3].value]
    assert [r.headers for r in left] == [sent[1].headers, sent[3].headers]
    assert setup.counters.snapshot() == Stats(replayed=2)
    assert setup.reports == [("_MSG_TIMED_OUT", sent[1].topic)]  # once per kind


def test_a_record_refused_at_produce_is_failed_and_replay_moves_on(
    setup: Setup,
) -> None:
    sent = records(3)
    for record in sent:
        setup.spool.append(record)
    setup.producer.refuse_values = {sent[1].value}  # e.g. larger than Kafka takes
    assert setup.replayer.replay_all() is True  # was: raised on every pass
    assert setup.producer.sent == [sent[0].value, sent[2].value]
    assert setup.counters.snapshot() == Stats(replayed=2, failed=1)
    assert not segment_paths(setup.folder)
    assert setup.replayer.replay_all() is True  # nothing sent twice
    assert len(setup.producer.sent) == 2


def test_permanent_delivery_failures_are_counted_not_respooled(setup: Setup) -> None:
    sent = records(2)
    for record in sent:
        setup.spool.append(record)

    class TooLarge(FakeError):
        def __init__(self) -> None:
            super().__init__(10, "MSG_SIZE_TOO_LARGE")

    original = setup.producer.produce

    def produce(topic: str, value: bytes, key: bytes, **kw: Any) -> None:
        if value == sent[0].value:
            kw["on_delivery"](TooLarge(), FakeMessage(topic, value, key))
            return
        original(topic, value, key, **kw)

    setup.producer.produce = produce  # type: ignore[method-assign,assignment]
    assert setup.replayer.replay_all() is True
    assert setup.counters.snapshot() == Stats(replayed=1, failed=1)
    assert not segment_paths(setup.folder)


def test_queue_full_waits_its_turn(setup: Setup) -> None:
    for record in records(2):
        setup.spool.append(record)
    setup.producer.buffer_errors = 3
    assert setup.replayer.replay_all() is True
    assert setup.counters.snapshot().replayed == 2


def test_nothing_is_sent_while_kafka_is_unreachable(setup: Setup) -> None:
    setup.spool.append(records(1)[0])
    setup.producer.metadata_ok = False
    assert setup.replayer.replay_all() is False
    assert setup.producer.sent == []
    assert setup.shared is not None
    setup.shared.healthy = True  # a recent ack counts as reachable
    assert setup.replayer.replay_all() is True
    assert len(setup.producer.sent) == 1


def test_no_producer_means_no_replay(setup: Setup) -> None:
    setup.spool.append(records(1)[0])
    setup.shared = None  # closed transport, or a producer that cannot be built
    assert setup.replayer.replay_all() is False
    assert segment_paths(setup.folder)


def test_a_segment_in_use_by_a_writer_is_skipped(setup: Setup) -> None:
    other = SpoolWriter(setup.folder, 10**9)  # another live writer
    other.append(records(1)[0])
    assert setup.replayer.replay_all() is False  # its segment stays
    assert setup.producer.sent == []
    other.close()  # closing releases the lock
    assert setup.replayer.replay_all() is True
    assert len(setup.producer.sent) == 1


def test_empty_spool_is_idle_and_stopped_replayer_does_nothing(setup: Setup) -> None:
    assert setup.replayer.replay_all() is True
    assert setup.replayer.wait_idle(0.01) == 0
    setup.spool.append(records(1)[0])
    setup.replayer.stop()
    assert setup.replayer.replay_all() is False
    assert setup.producer.sent == []


def test_wake_runs_the_thread_and_wait_idle_reports(setup: Setup) -> None:
    assert setup.shared is not None
    setup.shared.healthy = True
    for record in records(3):
        setup.spool.append(record)
    setup.replayer.wake()
    assert setup.replayer.wait_idle(5) == 0
    assert setup.counters.snapshot().replayed == 3
    assert not segment_paths(setup.folder)
    setup.replayer.stop(join_timeout=1)
    setup.replayer.wake()  # after stop: ignored


def test_no_room_to_respool_keeps_the_segment(setup: Setup) -> None:
    sent = records(2)
    for record in sent:
        setup.spool.append(record)
    setup.producer.fail_values = {sent[0].value, sent[1].value}
    setup.spool.max_bytes = 0  # no room to put them back
    assert setup.replayer.replay_all() is False
    # Was: the segment was deleted and both records counted dropped.
    setup.spool.max_bytes = 10**9
    assert sorted(r.value for r in iter_records(setup.folder)) == sorted(
        r.value for r in sent
    )
    assert setup.counters.snapshot().dropped == 0


def test_late_reports_keep_the_claim_until_they_arrive(setup: Setup) -> None:
    sent = records(3)
    for record in sent:
        setup.spool.append(record)
    setup.producer.hold_reports = True  # a hung broker: reports come late
    assert setup.replayer.replay_all() is False
    assert len(setup.producer.sent) == 3
    # A second pass (or another process) must not send the segment again.
    setup.producer.hold_reports = False
    assert setup.replayer.replay_all() is False
    assert len(setup.producer.sent) == 3
    setup.producer.release_reports()
    assert setup.replayer.replay_all() is True
    assert setup.counters.snapshot().replayed == 3
    assert not segment_paths(setup.folder)


def test_a_damaged_segment_is_quarantined_after_its_intact_records_go(
    setup: Setup,
) -> None:
    sent = records(20)
    writer = SpoolWriter(setup.folder, 10**9)
    for record in sent:
        writer.append(record)
    path = writer.segment_path
    writer.close()
    assert path is not None
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte mid-segment
    path.write_bytes(bytes(data))
    assert setup.replayer.replay_all() is True
    delivered = set(setup.producer.sent)
    assert len(delivered) == 19  # every intact record, before and after it
    assert delivered < {r.value for r in sent}
    assert not segment_paths(setup.folder)
    assert len(quarantined(setup.folder)) == 1  # was: deleted
    assert setup.counters.snapshot() == Stats(replayed=19, quarantined=1)
