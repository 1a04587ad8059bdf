"""Delivery on a real broker: counted by event_id with a consumer."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple, Type

import pytest

from vdt_ai import (
    DataQuality,
    Event,
    GroundTruth,
    JobRun,
    Metric,
    ModelCall,
    Stats,
    VDTClient,
    decode,
)
from vdt_ai.kafka.transport import KafkaTransport
from vdt_ai.spool import quarantined, segment_paths

from .conftest import (
    BOOTSTRAP,
    assert_all_delivered,
    consume,
    kafka_dev,
    topics_of,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def kafka_client(prefix: str, **settings: Any) -> VDTClient:
    return VDTClient(
        bootstrap_servers=BOOTSTRAP,
        topic_prefix=prefix,
        handle_sigterm=False,
        **settings,
    )


def test_100k_events_arrive_on_the_right_topic_with_key_and_headers(
    prefix: str, tmp_path: Path
) -> None:
    client = kafka_client(prefix, spool_dir=tmp_path / "spool")
    expected: Dict[str, Tuple[str, bytes, Type[Event]]] = {}
    where: Tuple[str, bytes, Type[Event]]
    for i in range(100_000):
        kind = i % 10
        if kind < 6:
            model = f"model-{i % 5}"
            event_id = client.log_model_call(
                model, {"user_id": i}, {"items": [1, 2, 3]}, latency_ms=i % 100
            )
            where = ("model_calls", model.encode(), ModelCall)
        elif kind < 8:
            event_id = client.log_metric("loss", i / 10, step=i, run_id=f"run-{i % 3}")
            where = ("metrics", f"run-{i % 3}".encode(), Metric)
        elif kind == 8:
            event_id = client.log_data_quality("users", record_count=i, null_count=0)
            where = ("data_quality", b"users", DataQuality)
        elif i % 20 == 9:
            event_id = client.log_ground_truth(f"req-{i}", actual=1)
            where = ("ground_truth", f"req-{i}".encode(), GroundTruth)
        else:
            event_id = client.log_job_run("etl", "started", run_id=f"r{i}")
            where = ("job_runs", f"r{i}".encode(), JobRun)
        expected[str(event_id)] = where
    assert client.flush(60) == 0
    stats = client.stats()
    # Logged at full speed, more than the queue's 10,000 records can wait:
    # the excess goes through the spool and is replayed (acked all the same).
    assert stats.accepted == stats.delivered + stats.replayed == 100_000, stats
    assert stats.failed == stats.dropped == 0, stats

    seen = consume(topics_of(prefix), set(expected), timeout=120)
    duplicates = assert_all_delivered(seen, set(expected))
    assert duplicates == 0
    for expected_id, (suffix, key, event_class) in expected.items():
        record = seen[expected_id][0]
        assert record.topic == f"{prefix}.{suffix}"
        assert record.key == key
        headers = dict(record.headers)
        assert headers["vdt-event-type"] == event_class.event_type.value.encode()
        assert headers["vdt-schema-version"] == b"1"
        assert headers["content-type"].startswith(b"application/x-protobuf")
        assert isinstance(decode(record.value), event_class)
    client.close()


def test_broker_down_at_start_then_up_delivers_everything(
    prefix: str, tmp_path: Path, restore_broker: None
) -> None:
    kafka_dev("down")
    client = kafka_client(prefix, spool_dir=tmp_path / "spool", delivery_timeout=2)
    ids = {str(client.log_metric("m", float(i), run_id="r")) for i in range(500)}
    wait_for(lambda: client.stats().spooled == 500, 30, "events to reach the spool")
    assert client.stats().delivered == 0
    kafka_dev("up")
    assert client.flush(90) == 0
    stats = client.stats()
    assert stats.replayed == 500 and stats.accepted == 500, stats
    assert not segment_paths(tmp_path / "spool")
    assert_all_delivered(consume(topics_of(prefix), ids), ids)
    client.close()


def test_broker_killed_mid_stream_loses_nothing(
    prefix: str, tmp_path: Path, restore_broker: None
) -> None:
    client = kafka_client(prefix, spool_dir=tmp_path / "spool")
    ids: Set[str] = set()
    done = threading.Event()

    def produce() -> None:
        i = 0
        while not done.is_set() or i < 20_000:
            ids.add(str(client.log_model_call("m", {"i": i}, i, latency_ms=1.0)))
            i += 1
            if i % 200 == 0:
                time.sleep(0.01)

    worker = threading.Thread(target=produce)
    worker.start()
    wait_for(lambda: client.stats().delivered > 3000, 60, "first deliveries")
    kafka_dev("kill")
    time.sleep(1.0)
    kafka_dev("up")
    done.set()
    worker.join(timeout=120)
    assert client.flush(120) == 0
    stats = client.stats()
    assert stats.accepted == len(ids)
    assert stats.failed == 0 and stats.dropped == 0, stats
    seen = consume(topics_of(prefix), ids, timeout=120)
    duplicates = assert_all_delivered(seen, ids)
    # Idempotent producer retries do not duplicate; a replayed spool segment
    # may. Either way the figure is reported, and consumers dedupe by event id.
    print(f"\nkill mid-stream: {len(ids)} events, {duplicates} duplicates, {stats}")
    client.close()


_child_client: Optional[VDTClient] = None


def _child_logs(prefix: str, n: int, ids_path: str) -> None:
    assert _child_client is not None
    ids = [str(_child_client.log_metric("child", float(i))) for i in range(n)]
    Path(ids_path).write_text("\n".join(ids))
    # No flush and no close: the SDK's multiprocessing finalizer must deliver.


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads (3.12+)
def test_fork_children_deliver_and_exit_promptly(prefix: str, tmp_path: Path) -> None:
    global _child_client
    client = kafka_client(prefix, spool_dir=tmp_path / "spool")
    parent_ids = {str(client.log_metric("parent", 1.0)) for _ in range(100)}
    assert client.flush(30) == 0  # the producer and its thread are live
    _child_client = client
    context = multiprocessing.get_context("fork")
    children = []
    for n in range(4):
        path = str(tmp_path / f"ids-{n}")
        child = context.Process(target=_child_logs, args=(prefix, 1000, path))
        child.start()
        children.append((child, path))
    started = time.monotonic()
    for child, _ in children:
        child.join(timeout=60)
        assert child.exitcode == 0, child.exitcode
    assert time.monotonic() - started < 30
    child_ids = set()
    for _, path in children:
        child_ids |= set(Path(path).read_text().split())
    assert len(child_ids) == 4000
    expected = parent_ids | child_ids
    assert client.flush(30) == 0
    assert_all_delivered(consume(topics_of(prefix), expected), expected)
    assert client.stats().accepted == 100
    client.close()
    _child_client = None


EXIT_SCRIPT = textwrap.dedent("""
    import sys, time, warnings
    warnings.simplefilter("ignore")
    from vdt_ai import VDTClient
    prefix, spool, ids_path, mode = sys.argv[1:5]
    client = VDTClient(bootstrap_servers="{bootstrap}", topic_prefix=prefix,
                       spool_dir=spool, shutdown_timeout=0.0,
                       delivery_timeout=60)
    # Every id in the file belongs to an accepted event (written after the
    # call returned); SIGTERM may cut the last lines off, never add any.
    ids = open(ids_path, "w")
    count = 20000 if mode == "exit" else 500000
    for i in range(count):
        ids.write(str(client.log_model_call("m", {{"i": i}}, i)) + "\\n")
        if i % 100 == 99:
            ids.flush()
        if i == 999 and mode == "sigterm":
            print("ready", flush=True)  # SIGTERM lands while events are logged
    ids.close()
    if mode == "sigterm":
        time.sleep(60)
    """).format(bootstrap=BOOTSTRAP)


@pytest.mark.parametrize("mode", ["exit", "sigterm"])
def test_exit_with_events_in_flight_spools_and_next_client_replays(
    prefix: str, tmp_path: Path, mode: str
) -> None:
    spool = tmp_path / "spool"
    ids_path = tmp_path / "ids"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    with subprocess.Popen(
        [sys.executable, "-c", EXIT_SCRIPT, prefix, str(spool), str(ids_path), mode],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        if mode == "sigterm":
            assert process.stdout.readline().strip() == "ready"
            process.send_signal(signal.SIGTERM)
            # Still "killed by SIGTERM", after the SDK closed its clients.
            assert process.wait(timeout=60) == -signal.SIGTERM
        else:
            assert process.wait(timeout=60) == 0
    ids = set(ids_path.read_text().split())
    assert len(ids) == 20000 if mode == "exit" else len(ids) >= 1000
    # shutdown_timeout=0: what was not acked at exit went to the spool.
    next_client = kafka_client(prefix, spool_dir=spool)
    assert next_client.flush(90) == 0
    seen = consume(topics_of(prefix), ids, timeout=120)
    # What the next client and the spool say, should any id be missing (CI
    # lost all 1,000 after SIGTERM twice: the purge's reports, served by the
    # poll thread, waited for the transport lock the interrupted send() held).
    missing = ids - seen.keys()
    assert not missing, (
        f"{len(missing)} of {len(ids)} never arrived; {len(seen)} ids seen; "
        f"next client {next_client.stats()}; segments {segment_paths(spool)}; "
        f"quarantined {quarantined(spool)}"
    )
    duplicates = assert_all_delivered(seen, ids)
    print(f"\n{mode}: replayed {next_client.stats().replayed}, duplicates {duplicates}")
    assert not segment_paths(spool)
    next_client.close()


def test_tiny_buffer_with_broker_stopped_spills_to_disk_then_delivers(
    prefix: str, tmp_path: Path, restore_broker: None
) -> None:
    kafka_dev("down")
    client = kafka_client(prefix, spool_dir=tmp_path / "spool", max_buffer_kbytes=64)
    ids = set()
    for i in range(20_000):
        ids.add(str(client.log_model_call("m", {"user_id": i}, [1, 2, 3], 4.0)))
    transport = client.transport
    assert isinstance(transport, KafkaTransport)
    queued = len(transport.shared)
    # The in-memory queue is held to its caps (64 KiB, 1000 messages); the
    # rest is on disk.
    assert 0 < queued <= 1000, queued
    assert queued * 90 <= 64 * 1024, queued  # each record is over 90 bytes
    stats = client.stats()
    assert stats.spooled >= 20_000 - queued, stats
    assert sum(p.stat().st_size for p in segment_paths(tmp_path / "spool")) > 0
    kafka_dev("up")
    assert client.flush(120) == 0
    stats = client.stats()
    assert stats.delivered + stats.replayed == 20_000, stats
    assert_all_delivered(consume(topics_of(prefix), ids, timeout=120), ids)
    client.close()


def test_a_burst_past_the_queue_bound_is_delivered_live(
    prefix: str, tmp_path: Path
) -> None:
    # 40,000 calls as fast as one thread can make them: the 10,000-message
    # queue fills with acked messages whose reports wait for the poll thread.
    # A full queue serves those on the caller's thread before it spills (the
    # old path spooled ~40% of such a burst while the broker was healthy).
    client = kafka_client(prefix, spool_dir=tmp_path / "spool")
    ids = set()
    for i in range(40_000):
        ids.add(str(client.log_model_call("m", {"user_id": i}, [1, 2, 3], 4.0)))
    assert client.flush(120) == 0
    stats = client.stats()
    assert stats.delivered + stats.replayed == 40_000, stats
    assert stats.spooled <= 4_000, stats
    print(f"\nburst of 40,000: spooled {stats.spooled}")
    assert_all_delivered(consume(topics_of(prefix), ids, timeout=120), ids)
    client.close()


def test_async_client_flushes_without_blocking_the_loop(
    prefix: str, tmp_path: Path
) -> None:
    import asyncio

    from vdt_ai import AsyncVDTClient

    async def main() -> Tuple[Set[str], int, Stats]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        async with AsyncVDTClient(
            bootstrap_servers=BOOTSTRAP,
            topic_prefix=prefix,
            spool_dir=str(tmp_path / "spool"),
            handle_sigterm=False,
        ) as client:
            ids = {str(client.log_metric("m", float(i))) for i in range(5000)}
            assert await client.flush(30) == 0
            stats = client.stats()
        stop.set()
        await task
        return ids, ticks, stats

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids, ticks, stats = asyncio.run(main())
    assert stats.delivered == 5000
    assert ticks > 0
    assert_all_delivered(consume(topics_of(prefix), ids), ids)


def test_a_producer_built_while_threads_were_refused_polls_once_they_start(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thread limit hit for a moment while the producer was built (its poll
    # thread refused, as at interpreter shutdown): nothing served its delivery
    # reports after that, so once its queue was full of acked messages every
    # later event was spooled, for the life of the process (until the spool
    # filled and events were dropped).
    start = threading.Thread.start
    refused: List[str] = []

    def refuse_once(self: threading.Thread) -> None:
        if self.name == "vdt-ai-kafka-poll" and not refused:
            refused.append(self.name)
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse_once)
    client = kafka_client(prefix, spool_dir=tmp_path / "spool", max_buffer_kbytes=64)
    assert refused
    ids = set()
    for burst in range(10):
        for i in range(500):
            ids.add(str(client.log_model_call("m", {"user_id": i}, [1, 2, 3], 4.0)))
        time.sleep(0.3)  # the broker acks the burst meanwhile
    stats = client.stats()
    print(f"\nspooled before the flush: {stats.spooled}")
    assert stats.spooled <= 500, stats  # not every event past the first queue
    assert client.flush(60) == 0
    stats = client.stats()
    assert stats.delivered + stats.replayed == 5_000, stats
    assert_all_delivered(consume(topics_of(prefix), ids, timeout=120), ids)
    client.close()
