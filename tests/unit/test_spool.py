"""The on-disk spool: framing, torn tails, caps, forks."""

import os
import stat
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdt_ai import Metric, ModelCall, encode
from vdt_ai import spool as spool_module
from vdt_ai.codec import Record
from vdt_ai.spool import (
    MAGIC,
    SEGMENT_SUFFIX,
    SpoolAppendError,
    SpoolTransport,
    SpoolWriter,
    encode_record,
    iter_events,
    iter_records,
    read_segment,
    segment_paths,
    spool_size,
)
from vdt_ai.transport import Counters, Stats

from .._examples import examples


def records(n: int) -> List[Record]:
    # Same-sized records: proto3 leaves out zero values, so avoid them.
    return [encode(Metric(name="m", value=i + 0.5, step=i + 1)) for i in range(n)]


def test_records_round_trip_with_headers(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    sent = records(5)
    for record in sent:
        assert writer.append(record)
    writer.close()
    assert list(iter_records(tmp_path)) == sent
    values = [e.value for e in iter_events(tmp_path) if isinstance(e, Metric)]
    assert values == [0.5, 1.5, 2.5, 3.5, 4.5]
    (path,) = segment_paths(tmp_path)
    assert path.name.endswith(SEGMENT_SUFFIX)
    assert path.read_bytes().startswith(MAGIC)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert writer.append(sent[0]) is False  # closed


def test_torn_last_record_is_skipped(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    records_written = records(3)
    for record in records_written:
        writer.append(record)
    writer.close()
    (path,) = segment_paths(tmp_path)
    data = path.read_bytes()
    for cut in (1, 5, 9):  # inside the payload, inside the header
        path.write_bytes(data[:-cut])
        result = read_segment(path)
        assert result.torn
        assert result.records == records_written[:2]
    path.write_bytes(data + b"\x00\x00")  # a header cut short
    assert read_segment(path).torn and len(read_segment(path).records) == 3


def test_corrupt_record_is_skipped_and_reading_resumes(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    written = records(3)
    for record in written:
        writer.append(record)
    writer.close()
    (path,) = segment_paths(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 8 + 2] ^= 0xFF  # flip a byte in the first payload
    path.write_bytes(bytes(data))
    result = read_segment(path)
    assert result.records == written[1:]
    assert result.damaged_bytes == len(encode_record(written[0]))
    assert result.skipped_frames == 1 and not result.torn and not result.clean
    assert list(iter_records(tmp_path)) == written[1:]


def test_crc_valid_garbage_is_treated_as_torn(tmp_path: Path) -> None:
    payload = b"\xff\xff\xff"
    path = tmp_path / ("0" + SEGMENT_SUFFIX)
    path.write_bytes(
        MAGIC + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    )
    assert read_segment(path).torn


def test_foreign_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ("x" + SEGMENT_SUFFIX)).write_bytes(b"not a spool")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ("y" + SEGMENT_SUFFIX)).write_bytes(b"")
    assert list(iter_records(tmp_path)) == []
    assert not read_segment(tmp_path / ("y" + SEGMENT_SUFFIX)).torn
    with pytest.raises(FileNotFoundError, match="no such spool folder"):
        iter_records(tmp_path / "missing")  # not an empty spool: a wrong path


def test_segments_roll_and_read_in_order(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9, segment_bytes=200)
    sent = records(20)
    for record in sent:
        writer.append(record)
    writer.close()
    assert len(segment_paths(tmp_path)) > 3
    assert list(iter_records(tmp_path)) == sent


def test_cap_drops_and_counts(tmp_path: Path) -> None:
    frame = len(encode_record(records(1)[0]))
    transport = SpoolTransport(tmp_path, max_bytes=len(MAGIC) + 3 * frame)
    counters = Counters()
    for record in records(5):
        transport.send(record, counters)
    assert counters.snapshot() == Stats(spooled=3, dropped=2)
    assert spool_size(tmp_path) <= len(MAGIC) + 3 * frame
    # Space freed by a sync is noticed again.
    transport.close()
    for path in segment_paths(tmp_path):
        path.unlink()
    again = SpoolTransport(tmp_path, max_bytes=len(MAGIC) + 3 * frame)
    again.send(records(1)[0], counters)
    assert counters.snapshot().spooled == 4
    assert "SpoolTransport" in repr(again) and again.directory == tmp_path


def test_cap_is_remeasured_after_external_removal(tmp_path: Path) -> None:
    frame = len(encode_record(records(1)[0]))
    writer = SpoolWriter(tmp_path, max_bytes=2 * (len(MAGIC) + frame), segment_bytes=1)
    assert writer.append(records(1)[0])
    assert writer.append(records(1)[0])
    assert not writer.append(records(1)[0])
    for path in segment_paths(tmp_path):
        path.unlink()
    # Noticed by the background within FULL_RECHECK_SECONDS, not per call.
    deadline = time.monotonic() + 5
    while not writer.append(records(1)[0]):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_write_errors_are_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    transport = SpoolTransport(blocker / "spool", max_bytes=10**9)
    counters = Counters()
    transport.send(records(1)[0], counters)
    assert counters.snapshot() == Stats(failed=1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
def test_forked_child_writes_its_own_segment(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    writer.append(encode(ModelCall(model_name="parent")))
    with warnings.catch_warnings():  # 3.12+: fork() with threads alive
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child
        try:
            writer.append(encode(ModelCall(model_name="child")))
            writer.close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    writer.append(encode(ModelCall(model_name="parent-again")))
    writer.close()
    names = sorted(
        e.model_name for e in iter_events(tmp_path) if isinstance(e, ModelCall)
    )
    assert names == ["child", "parent", "parent-again"]
    assert len(segment_paths(tmp_path)) == 2


def test_iter_events_skips_an_undecodable_record_and_goes_on(tmp_path: Path) -> None:
    good = [encode(Metric(name="m", value=float(i))) for i in range(2)]
    bad = Record(good[0].topic, b"k", b"\xff not an event", [])
    writer = SpoolWriter(tmp_path, 10**9)
    for record in (good[0], bad, good[1]):
        writer.append(record)
    writer.close()
    skipped: List[Record] = []
    events = list(iter_events(tmp_path, on_skip=lambda r, e: skipped.append(r)))
    assert [e.value for e in events] == [0.0, 1.0]  # type: ignore[attr-defined]
    assert [r.value for r in skipped] == [bad.value]


def test_append_many_writes_runs_across_segments_in_order(tmp_path: Path) -> None:
    sent = records(300)
    frame = len(encode_record(sent[0]))
    writer = SpoolWriter(tmp_path, max_bytes=10**9, segment_bytes=100 * frame)
    assert writer.append_many(sent) == 300
    assert writer.append_many([]) == 0
    writer.close()
    assert len(segment_paths(tmp_path)) == 3
    assert list(iter_records(tmp_path)) == sent
    assert writer.append_many(sent) == 0  # closed


def test_append_many_stops_at_the_cap_and_counts_what_fits(tmp_path: Path) -> None:
    sent = records(50)
    # The first 20 frames' own sizes: a record's timestamp varint may be a
    # byte longer than another's (nanoseconds past 2**28), so 20 times the
    # first frame's size did not always hold 20 frames.
    cap = len(MAGIC) + sum(len(encode_record(record)) for record in sent[:20])
    writer = SpoolWriter(tmp_path, max_bytes=cap)
    assert writer.append_many(sent) == 20
    writer.close()
    assert list(iter_records(tmp_path)) == sent[:20]


def test_append_many_failed_write_leaves_nothing_of_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = records(10)
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    assert writer.append_many(sent[:4]) == 4
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])  # disk full midway

    monkeypatch.setattr(os, "write", short_write)
    with pytest.raises(SpoolAppendError) as raised:
        writer.append_many(sent[4:])
    assert raised.value.written == 0
    monkeypatch.setattr(os, "write", real_write)
    writer.close()
    assert list(iter_records(tmp_path)) == sent[:4]  # cut back, readable


def test_roll_fsyncs_outside_the_writer_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The replayer rolls the segment while callers spill: an fsync that takes
    # long (a busy disk) must not hold up an append on another thread.
    import threading

    writer = SpoolWriter(tmp_path, max_bytes=10**8)
    first, later = records(2)
    assert writer.append(first)
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        assert release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)  # the spool's os is this os
    rolled: List[object] = []
    roller = threading.Thread(target=lambda: rolled.append(writer.roll()))
    roller.start()
    try:
        assert in_fsync.wait(10)  # roll() is inside its fsync now
        appender = threading.Thread(target=writer.append, args=(later,))
        appender.start()
        appender.join(10)
        assert not appender.is_alive()  # the append did not wait for the fsync
        assert roller.is_alive()  # ...which has not returned yet
    finally:
        release.set()
        roller.join(10)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert rolled and rolled[0] is not None
    writer.close()
    # Both records are there, the first in the rolled segment, the second in
    # a new one.
    assert len(segment_paths(tmp_path)) == 2
    assert [r.value for r in iter_records(tmp_path)] == [first.value, later.value]


# -- the unchecked append: same writes as the checked one ------------------------------


class _CheckedWriter(SpoolWriter):
    """The reference: every append takes every check (no unchecked room)."""

    def _unchecked_room(self) -> int:
        return 0


def _quiet_writer(cls: type, folder: Path, max_bytes: int, segment: int) -> Any:
    writer = cls(folder, max_bytes=max_bytes, segment_bytes=segment)
    # Off the background thread's list: its rescans would race the test's
    # appends; rescans then run only on the caller's thread, deterministically.
    spool_module._writers.discard(writer)
    return writer


def _segments(folder: Path) -> List[bytes]:
    return [path.read_bytes() for path in segment_paths(folder)]


# Mostly appends (runs of them, of one size), now and then a batch, a roll or
# a new limit.
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 300)),
        st.tuples(st.just("append"), st.integers(0, 300)),
        st.tuples(st.just("appends"), st.integers(0, 300)),
        st.tuples(st.just("many"), st.lists(st.integers(0, 300), max_size=5)),
        st.tuples(st.just("roll"), st.just(0)),
        st.tuples(
            st.sampled_from(["segment_bytes", "max_bytes", "rescan_bytes"]),
            st.integers(1, 20_000),
        ),
    ),
    max_size=40,
)


@settings(max_examples=examples(100), deadline=None)
@given(
    max_bytes=st.integers(100, 20_000),
    segment=st.integers(1, 3000),
    rescan=st.integers(1, 2000),
    ops=_ops,
)
def test_unchecked_appends_write_what_checked_ones_write(
    tmp_path_factory: pytest.TempPathFactory,
    max_bytes: int,
    segment: int,
    rescan: int,
    ops: List[Tuple[str, Any]],
) -> None:
    folders = [tmp_path_factory.mktemp("fast"), tmp_path_factory.mktemp("checked")]
    fast = _quiet_writer(SpoolWriter, folders[0], max_bytes, segment)
    checked = _quiet_writer(_CheckedWriter, folders[1], max_bytes, segment)
    for writer in (fast, checked):
        writer.rescan_bytes = rescan
    n = 0
    for op, arg in ops:
        if op in ("append", "appends"):
            for _ in range(1 if op == "append" else 10):
                n += 1
                record = Record("t", b"k", n.to_bytes(4, "big") * (arg // 4), [])
                assert fast.append(record) == checked.append(record), (n, op)
        elif op == "many":
            batch = [Record("t", b"", b"v" * size, [("i", b"%d" % n)]) for size in arg]
            n += 1
            assert fast.append_many(batch) == checked.append_many(batch), (n, op)
        elif op == "roll":
            assert (fast.roll() is None) == (checked.roll() is None)
        else:
            setattr(fast, op, arg)
            setattr(checked, op, arg)
        for name in ("_written", "_segment_size", "_rescan_wanted", "_full"):
            assert getattr(fast, name) == getattr(checked, name), (n, op, name)
    assert _segments(folders[0]) == _segments(folders[1])
    fast.close()
    checked.close()
    assert _segments(folders[0]) == _segments(folders[1])
    assert not fast.append(Record("t", b"k", b"v", []))  # closed


def test_appends_after_the_first_skip_the_checks(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    checked: List[int] = []
    real = writer._append_checked

    def counting(frame: bytes) -> bool:
        checked.append(len(frame))
        return real(frame)

    writer._append_checked = counting  # type: ignore[method-assign]
    sent = records(100)
    for record in sent:
        assert writer.append(record)
    assert len(checked) == 1  # the first: it opened the segment
    # A new segment size applies at once: the next append rotates.
    writer.segment_bytes = 1
    assert writer.append(sent[0])
    assert len(checked) == 2 and len(segment_paths(tmp_path)) == 2
    writer.close()
    assert list(iter_records(tmp_path)) == sent + sent[:1]


def test_a_batch_or_a_rescan_between_appends_is_taken_into_account(
    tmp_path: Path,
) -> None:
    sent = records(4)
    frame = len(encode_record(sent[0]))
    writer = SpoolWriter(
        tmp_path / "a", max_bytes=10**9, segment_bytes=len(MAGIC) + 3 * frame
    )
    assert writer.append(sent[0])  # room for two more in this segment
    assert writer.append_many(sent[1:3]) == 2  # ... now taken
    assert writer.append(sent[3])  # so this one opens a new segment
    writer.close()
    assert [len(read_segment(p).records) for p in segment_paths(tmp_path / "a")] == [
        3,
        1,
    ]
    # A rescan (the background's) that finds another writer's bytes: the next
    # append is checked against the new total and refused.
    folder = tmp_path / "b"
    writer = SpoolWriter(folder, max_bytes=len(MAGIC) + 10 * frame)
    assert writer.append(sent[0])
    (folder / ("0-1-other" + SEGMENT_SUFFIX)).write_bytes(MAGIC + b"x" * 9 * frame)
    writer._rescan()
    assert not writer.append(sent[1])
    writer.close()


def test_a_spool_written_at_interpreter_shutdown_needs_no_background_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.12 starts no thread from an atexit handler. The first spill of
    # a process may come from its exit purge; once it wrote past the rescan
    # size (or rotated a segment) it kicked the background thread, whose
    # start raised out of append_many: the records of the batch were written
    # but the caller counted none of them (and lost the rest of its batch).
    import threading

    class _AtShutdown(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(spool_module._worker, "_thread", None)
    monkeypatch.setattr(threading, "Thread", _AtShutdown)
    writer = SpoolWriter(tmp_path, max_bytes=256 * 1024, segment_bytes=8 * 1024)
    batch = records(500)
    assert writer.append_many(batch) == 500
    assert writer.append(batch[0])
    writer.close()
    monkeypatch.undo()
    assert len(list(iter_records(tmp_path))) == 501
