"""Spool faults of issue 9: each test failed on the first spool and passes now.

No Kafka broker: the spool is exercised directly, with subprocesses where a
fault needs its own process (file size limit, concurrent writers, hangs).
"""

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from typing import Any, List

import pytest

from vdt_ai import Metric, encode
from vdt_ai import spool as spool_mod
from vdt_ai.codec import Record
from vdt_ai.spool import (
    MAGIC,
    QUARANTINE_DIR,
    SEGMENT_SUFFIX,
    TEMP_PREFIX,
    SpoolWriter,
    claim,
    claim_segment,
    encode_record,
    foreign_entries,
    iter_events,
    iter_records,
    quarantine_count,
    quarantined,
    read_segment,
    remove_segment,
    segment_paths,
    spool_size,
    summarize,
)

posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def records(n: int) -> List[Record]:
    return [encode(Metric(name="m", value=i + 0.5, step=i + 1)) for i in range(n)]


def run_python(code: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    env = dict(
        os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def damaged_segment(folder: Path, n: int = 100, hit: int = 10) -> List[Record]:
    writer = SpoolWriter(folder, max_bytes=10**9)
    written = records(n)
    for record in written:
        assert writer.append(record)
    writer.close()
    (path,) = segment_paths(folder)
    frame = len(encode_record(written[0]))
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + hit * frame + 12] ^= 0xFF  # one byte inside record `hit`
    path.write_bytes(bytes(data))
    return written


# -- a flipped byte mid-segment --------------------------------------------------------


def test_damaged_byte_mid_segment_keeps_records_after_it(tmp_path: Path) -> None:
    # Before: 10 of 100 records readable, and replay deleted the segment.
    written = damaged_segment(tmp_path)
    (path,) = segment_paths(tmp_path)
    held = claim(path)
    assert held is not None
    assert held.result.records == written[:10] + written[11:]
    assert held.result.damaged_bytes == len(encode_record(written[10]))
    assert held.result.skipped_frames == 1
    assert held.retire() == "quarantined"
    assert not path.exists() and segment_paths(tmp_path) == []
    (kept,) = quarantined(tmp_path)
    assert kept.parent.name == QUARANTINE_DIR and quarantine_count(tmp_path) == 1
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert len(read_segment(kept).records) == 99  # nothing lost on disk
    assert spool_size(tmp_path) == kept.stat().st_size  # still under the cap
    summary = summarize(tmp_path)
    assert summary.quarantined == [kept] and summary.records == 0


def test_legacy_replay_api_quarantines_instead_of_deleting(tmp_path: Path) -> None:
    # The first replayer's calls (claim_segment + remove_segment) are safe too.
    damaged_segment(tmp_path)
    (path,) = segment_paths(tmp_path)
    with claim_segment(path) as content:
        assert content is not None and len(content.records) == 99
        remove_segment(path)
    assert quarantine_count(tmp_path) == 1 and not path.exists()


def test_clean_segment_is_deleted_and_claims_exclude_each_other(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    writer.append(records(1)[0])
    (path,) = segment_paths(tmp_path)
    assert claim(path) is None  # still being written: locked
    writer.close()
    first = claim(path)
    assert first is not None and first.result.clean
    assert claim(path) is None  # another replayer
    first.release()
    first.release()  # idempotent
    second = claim(path)
    assert second is not None and second.retire() == "deleted"
    assert not path.exists() and quarantine_count(tmp_path) == 0
    with pytest.raises(RuntimeError):
        second.retire()


def test_zero_filled_tail_is_counted_and_quarantined(tmp_path: Path) -> None:
    # A power cut can leave a block of zeros after the last record.
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    written = records(5)
    for record in written:
        writer.append(record)
    writer.close()
    (path,) = segment_paths(tmp_path)
    with open(path, "ab") as f:
        f.write(b"\x00" * 100_000)
    held = claim(path)
    assert held is not None
    assert held.result.records == written
    assert held.result.torn and held.result.damaged_bytes == 100_000
    assert held.retire() == "quarantined"


# -- short writes: disk full -----------------------------------------------------------


@posix_only
def test_file_size_limit_raises_and_leaves_nothing_unreadable(tmp_path: Path) -> None:
    # Before: a short write was ignored: 76 appends counted, 75 readable.
    out = run_python(f"""
        import json, resource
        from vdt_ai import Metric, encode
        from vdt_ai.spool import SpoolTransport
        from vdt_ai.transport import Counters
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        transport = SpoolTransport({str(tmp_path)!r}, max_bytes=10**9)
        counters = Counters()
        for i in range(300):
            record = encode(Metric(name="m", value=i + 0.5, step=i + 1))
            transport.send(record, counters)
        transport.close()
        s = counters.snapshot()
        print(json.dumps({{"spooled": s.spooled, "failed": s.failed}}))
        """)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    assert counts["failed"] > 0 and counts["spooled"] + counts["failed"] == 300
    summary = summarize(tmp_path)
    assert summary.records == counts["spooled"]
    assert summary.damaged_bytes == 0 and summary.damaged_segments == []
    values = [e.value for e in iter_events(tmp_path) if isinstance(e, Metric)]
    assert values == [i + 0.5 for i in range(counts["spooled"])]


def test_short_write_truncates_back_and_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    first, second = records(2)
    assert writer.append(first)
    real_write = os.write

    def short(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", short)
    with pytest.raises(OSError, match="short write"):
        writer.append(second)
    monkeypatch.setattr(os, "write", real_write)
    assert writer.append(second)
    writer.close()
    result = read_segment(segment_paths(tmp_path)[0])
    assert result.records == [first, second] and result.clean


# -- the cap: per folder, no scan per call ---------------------------------------------


@posix_only
def test_four_processes_share_one_cap(tmp_path: Path) -> None:
    # Before: 4 processes on a 1 MB cap filled 3.74 MB.
    cap = 1_000_000
    code = f"""
        import time
        from vdt_ai import Metric, encode
        from vdt_ai.spool import SpoolWriter
        w = SpoolWriter({str(tmp_path)!r}, max_bytes={cap}, segment_bytes=64 * 1024)
        record = encode(Metric(name="m", value=1.5, step=3))
        refused = 0
        while refused < 100:
            if not w.append(record):
                refused += 1
                time.sleep(0.002)
        w.close()
    """
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env)
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    total = spool_size(tmp_path)
    frame = len(encode_record(encode(Metric(name="m", value=1.5, step=3))))
    rescan = SpoolWriter(tmp_path, max_bytes=cap).rescan_bytes
    assert cap * 0.9 <= total <= cap + 4 * (2 * rescan + frame + len(MAGIC))


def test_full_spool_refuses_without_scanning_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: each refused append rescanned the folder (59 ms a call, 2000 segments).
    frame = len(encode_record(records(1)[0]))
    writer = SpoolWriter(
        tmp_path, max_bytes=200 * (len(MAGIC) + frame), segment_bytes=1
    )
    while writer.append(records(1)[0]):
        pass
    scans: List[str] = []
    real = spool_mod._folder_bytes

    def counting(folder: Path) -> int:
        scans.append(threading.current_thread().name)
        return real(folder)

    monkeypatch.setattr(spool_mod, "_folder_bytes", counting)
    start = time.monotonic()
    for _ in range(2000):
        assert not writer.append(records(1)[0])
    elapsed = time.monotonic() - start
    caller = threading.current_thread().name
    assert scans.count(caller) == 0
    # the background re-measures at most every FULL_RECHECK_SECONDS
    assert len(scans) <= elapsed / spool_mod.FULL_RECHECK_SECONDS + 2
    writer.close()


# -- segment creation: temporary name, locked before it is visible ---------------------


def test_new_segment_is_never_visible_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: a replay pass in the window deleted the new (empty) segment and
    # the record appended next was lost.
    seen: List[Any] = []
    real_rename = os.rename

    def replay_in_window(src: Any, dst: Any) -> None:
        seen.append(("listed", segment_paths(tmp_path)))
        seen.append(("temp", [p.name for p in tmp_path.iterdir()]))
        fd = os.open(str(src), os.O_RDONLY)
        try:
            import fcntl

            with pytest.raises(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        real_rename(src, dst)
        held = claim(dst)  # renamed, still locked by the writer
        seen.append(("claim", held))

    monkeypatch.setattr(os, "rename", replay_in_window)
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    assert writer.append(records(1)[0])
    monkeypatch.setattr(os, "rename", real_rename)
    writer.close()
    assert seen[0] == ("listed", [])
    assert all(n.startswith(TEMP_PREFIX) for n in seen[1][1])
    assert seen[2] == ("claim", None)
    assert len(list(iter_records(tmp_path))) == 1


def test_stale_temp_files_are_recovered_or_removed(tmp_path: Path) -> None:
    old = time.time() - 3600
    header_only = tmp_path / (TEMP_PREFIX + "1-1-aa")
    header_only.write_bytes(MAGIC)
    with_records = tmp_path / (TEMP_PREFIX + "2-1-bb")
    with_records.write_bytes(MAGIC + encode_record(records(1)[0]))
    fresh = tmp_path / (TEMP_PREFIX + "3-1-cc")
    fresh.write_bytes(MAGIC)
    for path in (header_only, with_records):
        os.utime(path, (old, old))
    os.chmod(tmp_path, 0o700)
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    writer.append(records(2)[1])
    writer.close()
    assert not header_only.exists() and not with_records.exists()
    assert fresh.exists()  # may belong to a live writer
    assert (tmp_path / ("2-1-bb" + SEGMENT_SUFFIX)).exists()
    assert len(list(iter_records(tmp_path))) == 2


# -- foreign entries -------------------------------------------------------------------


@posix_only
def test_fifo_and_directory_named_like_segments_do_not_hang_or_crash(
    tmp_path: Path,
) -> None:
    # Before: a directory made iter_events raise IsADirectoryError; a FIFO hung it.
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    writer.append(records(1)[0])
    writer.close()
    (tmp_path / ("d" + SEGMENT_SUFFIX)).mkdir()
    os.mkfifo(tmp_path / ("f" + SEGMENT_SUFFIX))
    (tmp_path / ("x" + SEGMENT_SUFFIX)).write_bytes(b"not a spool segment at all")
    (tmp_path / ("l" + SEGMENT_SUFFIX)).symlink_to(segment_paths(tmp_path)[0])
    out = run_python(
        f"""
        from vdt_ai.spool import iter_events
        print(sum(1 for _ in iter_events({str(tmp_path)!r})))
        """,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    reasons = {p.name: why for p, why in foreign_entries(tmp_path)}
    assert reasons == {
        "d" + SEGMENT_SUFFIX: "directory",
        "f" + SEGMENT_SUFFIX: "fifo",
        "x" + SEGMENT_SUFFIX: "no spool header",
        "l" + SEGMENT_SUFFIX: "symlink",
    }
    for name in reasons:
        assert claim(tmp_path / name) is None
        assert read_segment(tmp_path / name).foreign
    assert len(segment_paths(tmp_path)) == 1
    assert sorted(summarize(tmp_path).foreign) == sorted(foreign_entries(tmp_path))
    assert all(
        (tmp_path / name).exists() or (tmp_path / name).is_symlink() for name in reasons
    )  # never deleted


# -- the folder ------------------------------------------------------------------------


@posix_only
def test_world_writable_folder_we_own_is_fixed(tmp_path: Path) -> None:
    # Before: an existing 0777 folder stayed 0777.
    folder = tmp_path / "spool"
    folder.mkdir()
    os.chmod(folder, 0o777)
    writer = SpoolWriter(folder, max_bytes=10**9)
    assert writer.append(records(1)[0])
    writer.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root to make a folder owned by another user",
)
def test_world_writable_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    planted = folder / ("0" + SEGMENT_SUFFIX)
    planted.write_bytes(MAGIC + encode_record(records(1)[0]))
    os.chmod(folder, 0o777)
    os.chown(folder, 12345, 12345)
    writer = SpoolWriter(folder, max_bytes=10**9)
    with pytest.raises(PermissionError, match="writable by other users"):
        writer.append(records(1)[0])
    with pytest.raises(PermissionError):
        list(iter_records(folder))
    with pytest.raises(PermissionError):
        claim(planted)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 and planted.exists()


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: SpoolWriter("~/x") made a literal ./~/x folder.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    writer = SpoolWriter("~/x", max_bytes=10**9)
    assert writer.append(records(1)[0])
    writer.close()
    assert not (tmp_path / "~").exists()
    assert writer.directory == tmp_path / "home" / "x"
    assert len(segment_paths("~/x")) == 1
    assert len(list(iter_events("~/x"))) == 1
    assert summarize("~/x").records == 1


# -- fsync and rotation off the caller's thread ----------------------------------------


def test_rotation_does_not_fsync_on_the_callers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: each rotation fsynced on the caller's thread (p99.99 35 ms).
    synced_on: List[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced_on.append(threading.current_thread().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    writer = SpoolWriter(tmp_path, max_bytes=10**9, segment_bytes=2000)
    caller = threading.current_thread().name
    for record in records(200):
        assert writer.append(record)
    assert len(segment_paths(tmp_path)) > 10
    assert caller not in synced_on
    writer.flush()  # flush() may block: it syncs what the background has not
    writer.close()
    writer.close()  # twice is fine
    assert synced_on  # everything was synced by someone
    assert len(list(iter_records(tmp_path))) == 200
    for path in segment_paths(tmp_path):  # every segment closed and unlocked
        held = claim(path)
        assert held is not None
        held.release()


@posix_only
def test_close_from_atexit_and_twice(tmp_path: Path) -> None:
    out = run_python(f"""
        import atexit
        from vdt_ai import Metric, encode
        from vdt_ai.spool import SpoolWriter
        w = SpoolWriter({str(tmp_path)!r}, max_bytes=10**9, segment_bytes=300)
        atexit.register(w.close)
        for i in range(50):
            w.append(encode(Metric(name="m", value=i + 0.5, step=i + 1)))
        w.close()
        """)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert len(list(iter_records(tmp_path))) == 50


# -- fork ------------------------------------------------------------------------------


@posix_only
def test_forked_child_never_holds_the_parents_lock(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9)
    writer.append(records(1)[0])
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()
    with warnings.catch_warnings():  # 3.12+: fork() with threads alive
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: appends nothing, lives on while the parent rolls
        try:
            os.close(write_end)
            os.write(ready_write, b"r")  # the at-fork hooks have run
            os.read(read_end, 1)
        finally:
            os._exit(0)
    os.close(read_end)
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"r"
        path = writer.roll()
        assert path is not None
        held = claim(path)  # the child's inherited copy must not keep the lock
        assert held is not None
        held.release()
    finally:
        os.close(write_end)
        os.close(ready_read)
        os.waitpid(pid, 0)
    writer.close()


# -- spool status streams -------------------------------------------------------------


def test_summarize_streams_one_record_at_a_time(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path, max_bytes=10**9, segment_bytes=4000)
    for record in records(100):
        writer.append(record)
    writer.close()
    damaged = segment_paths(tmp_path)[1]
    data = bytearray(damaged.read_bytes())
    # The damaged record's frame: its header (length, CRC) and payload. Its
    # own size, not a new record's: a timestamp's nanos take 4 or 5 bytes.
    frame = 8 + int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    data[len(MAGIC) + 12] ^= 0xFF
    damaged.write_bytes(bytes(data))
    seen: List[Record] = []
    summary = summarize(tmp_path, on_record=seen.append)
    assert summary.records == 99 == len(seen)
    assert summary.records_by_topic == {"vdt.metrics": 99}
    assert summary.segments == len(segment_paths(tmp_path))
    assert summary.damaged_segments == [damaged]
    assert summary.damaged_bytes == frame
    assert summary.bytes == spool_size(tmp_path)


@posix_only
def test_spool_status_lists_damage_quarantine_and_foreign_entries(
    tmp_path: Path,
) -> None:
    # Before: a FIFO named *.vdtspool hung `vdt-ai spool status`, a directory
    # crashed it, and the whole spool was loaded into memory.
    from click.testing import CliRunner

    from vdt_ai.cli import main

    damaged_segment(tmp_path)
    (path,) = segment_paths(tmp_path)
    held = claim(path)
    assert held is not None and held.retire() == "quarantined"
    damaged_segment(tmp_path, n=20, hit=3)
    os.mkfifo(tmp_path / ("f" + SEGMENT_SUFFIX))
    (tmp_path / ("d" + SEGMENT_SUFFIX)).mkdir()
    env = {"VDT_AI_SPOOL_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["spool", "status"], env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "events:    19" in out and "vdt.metrics: 19" in out
    assert "damaged:" in out and "quarantined: 1" in out
    assert str(quarantined(tmp_path)[0]) in out
    assert "(fifo)" in out and "(directory)" in out
