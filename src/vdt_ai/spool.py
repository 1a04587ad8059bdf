"""The local spool: a durable, append-only log of records on disk.

Offline mode writes every event here; the Kafka transport writes here what it
cannot deliver. :func:`iter_events` reads a spool folder back.

Layout: a folder of segment files ``<time ns>-<pid>-<random>.vdtspool``. Each
process appends to a segment of its own (a forked child opens a new one), so
writers never interleave. A segment starts with the 8-byte magic
``VDTSPL1\\n``; then records, each::

    uint32 big-endian  length of the payload
    uint32 big-endian  CRC-32 of the payload
    payload            a protobuf vdt.ai.v1.SpoolRecord (topic, key, value, headers)

Durability (fsync policy): each record is handed to the operating system with
one ``write()`` as it is accepted, so a crash of the process (even SIGKILL)
loses nothing written. ``fsync`` runs on ``flush()``, ``close()`` (and so at
exit) and when a segment is full, so a power cut can lose at most what was
written since the last of those. A record cut short by a crash mid-write (a
torn tail) fails its length or CRC check and is skipped by readers, as is the
rest of that segment.
"""

import contextlib
import os
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Iterator, List, Optional, Union

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

from . import _forksafe, _log
from .codec import Record, decode
from .models import Event
from .proto import events_pb2 as pb
from .transport import Counters, Transport

MAGIC = b"VDTSPL1\n"
SEGMENT_SUFFIX = ".vdtspool"
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">II")

PathLike = Union[str, "os.PathLike[str]"]


def encode_record(record: Record) -> bytes:
    """One record in the spool's on-disk framing (length, CRC, payload)."""
    message = pb.SpoolRecord(topic=record.topic, key=record.key, value=record.value)
    for name, value in record.headers:
        message.headers.add(key=name, value=value)
    payload = message.SerializeToString()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> Record:
    message = pb.SpoolRecord.FromString(payload)
    return Record(
        topic=message.topic,
        key=message.key,
        value=message.value,
        headers=[(h.key, h.value) for h in message.headers],
    )


class SegmentReadResult:
    """What one segment held.

    Attributes:
        records: the intact records, in write order.
        torn: ``True`` when the segment ended in a partial or corrupt record
            (skipped).
    """

    def __init__(self, records: List[Record], torn: bool) -> None:
        self.records = records
        self.torn = torn


def read_segment(path: PathLike) -> SegmentReadResult:
    """Reads every intact record of one segment file."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        return SegmentReadResult([], torn=bool(data))
    records: List[Record] = []
    offset = len(MAGIC)
    end = len(data)
    while offset < end:
        if end - offset < _HEADER.size:
            return SegmentReadResult(records, torn=True)
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return SegmentReadResult(records, torn=True)
        try:
            records.append(_decode_payload(payload))
        except Exception:  # a CRC-valid but unparsable record: stop here too
            return SegmentReadResult(records, torn=True)
        offset = start + length
    return SegmentReadResult(records, torn=False)


def segment_paths(directory: PathLike) -> List[Path]:
    """The segment files of a spool folder, oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*" + SEGMENT_SUFFIX))


def iter_records(directory: PathLike) -> Iterator[Record]:
    """Every intact record in a spool folder, oldest segment first."""
    for path in segment_paths(directory):
        try:
            result = read_segment(path)
        except FileNotFoundError:  # removed by a concurrent sync
            continue
        yield from result.records


def iter_events(directory: PathLike) -> Iterator[Event]:
    """Every event in a spool folder, decoded, oldest segment first.

    Raises:
        vdt_ai.SerializationError: a record's value is not a valid event.
    """
    for record in iter_records(directory):
        yield decode(record.value)


def spool_size(directory: PathLike) -> int:
    """Bytes used by the segment files of a spool folder."""
    total = 0
    for path in segment_paths(directory):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


class SpoolWriter:
    """Appends records to this process's own segment in a spool folder.

    Thread-safe and fork-aware. ``append`` returns ``False`` (and writes
    nothing) when the folder would grow past ``max_bytes``.
    """

    def __init__(
        self,
        directory: PathLike,
        max_bytes: int,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.RLock()  # re-entrant: see _lifecycle (SIGTERM)
        _forksafe.register(self)
        self._fd: Optional[int] = None
        self._pid = os.getpid()
        self._segment_size = 0
        self._segment_path: Optional[Path] = None
        self._used: Optional[int] = None  # bytes in the folder, measured lazily
        self._closed = False

    def append(self, record: Record) -> bool:
        """Writes one record; ``False`` if the spool is full or closed.

        Raises:
            OSError: the disk refused the write (full, read-only, ...).
        """
        frame = encode_record(record)
        with self._lock:
            if self._closed:
                return False
            if self._pid != os.getpid():
                self._after_fork()
            new_segment = self._fd is None or self._segment_size >= self.segment_bytes
            needed = len(frame) + (len(MAGIC) if new_segment else 0)
            if self._used is None:
                self._used = spool_size(self.directory)
            if self._used + needed > self.max_bytes:
                # The folder may have been emptied by a sync: measure again.
                self._used = spool_size(self.directory)
                if self._used + needed > self.max_bytes:
                    return False
            if new_segment:
                self._open_segment()
            assert self._fd is not None
            os.write(self._fd, frame)
            self._segment_size += len(frame)
            self._used += len(frame)
            return True

    def roll(self) -> Optional[Path]:
        """Closes the current segment if it holds records, so it can be replayed.

        Returns:
            The closed segment's path, or ``None`` when there was nothing to close.
        """
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                return None
            if self._segment_size <= len(MAGIC):
                return None
            path = self._segment_path
            self._close_segment()
            self._segment_path = None
            return path

    @property
    def has_open_records(self) -> bool:
        """``True`` when the current segment holds records not yet rolled."""
        return self._fd is not None and self._segment_size > len(MAGIC)

    def flush(self) -> None:
        """Forces written records to stable storage (fsync)."""
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.fsync(self._fd)

    def close(self) -> None:
        """fsyncs and closes the current segment; later appends return False."""
        with self._lock:
            self._close_segment()
            self._closed = True

    @property
    def segment_path(self) -> Optional[Path]:
        """The segment this process writes to now, if any."""
        return self._segment_path

    def _open_segment(self) -> None:
        self._close_segment()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}"
        path = self.directory / (name + SEGMENT_SUFFIX)
        fd = os.open(
            str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600
        )
        # The lock marks the segment as being written: replay and sync skip it
        # until this writer closes it (or its process ends).
        _try_lock(fd)
        os.write(fd, MAGIC)
        self._fd = fd
        self._segment_path = path
        self._segment_size = len(MAGIC)
        assert self._used is not None
        self._used += len(MAGIC)

    def _close_segment(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _after_fork(self) -> None:
        # The parent's segment stays the parent's: drop the inherited fd
        # without fsync (the parent does that) and start a segment of our own.
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:  # pragma: no cover
                pass
        self._fd = None
        self._segment_path = None
        self._used = None
        self._pid = os.getpid()


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def claim_segment(path: PathLike) -> Iterator[Optional[SegmentReadResult]]:
    """Locks a closed segment for replay and reads it.

    Yields ``None`` when the segment is still being written by some process
    (or is gone). While the ``with`` block runs, no other replayer takes it;
    delete it with :func:`remove_segment` inside the block once its records
    are safe elsewhere.
    """
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        if not _try_lock(fd) or not Path(path).exists():
            yield None
            return
        yield read_segment(path)
    finally:
        os.close(fd)


def remove_segment(path: PathLike) -> None:
    """Deletes a replayed segment (missing is fine)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(str(path))


class SpoolTransport(Transport):
    """Writes every record to the local spool: offline mode.

    Events stay on disk until sent later (``vdt-ai sync``) or read with
    :func:`iter_events`.
    """

    def __init__(self, directory: PathLike, max_bytes: int) -> None:
        self.writer = SpoolWriter(directory, max_bytes)

    @property
    def directory(self) -> Path:
        """The spool folder."""
        return self.writer.directory

    def send(self, record: Record, counters: Counters) -> None:
        """Appends ``record`` to the spool; counts it spooled, or dropped if full."""
        try:
            written = self.writer.append(record)
        except OSError as exc:
            counters.add("failed")
            _log.log_once(
                f"spool-error:{self.directory}",
                "ERROR",
                "cannot write to the spool; events are being lost",
                directory=self.directory,
                error=exc.strerror or type(exc).__name__,
            )
            return
        if written:
            counters.add("spooled")
        else:
            counters.add("dropped")
            _log.log_once(
                f"spool-full:{self.directory}",
                "WARNING",
                "spool is full (spool_max_bytes); new events are dropped and counted",
                directory=self.directory,
                max_bytes=self.writer.max_bytes,
            )

    def flush(self, timeout: Optional[float] = None) -> int:
        """fsyncs the spool; nothing stays pending."""
        try:
            self.writer.flush()
        except OSError:  # pragma: no cover - fsync failing: nothing to do here
            pass
        return 0

    def close(self, timeout: Optional[float] = None) -> None:
        """fsyncs and closes the current segment."""
        try:
            self.writer.close()
        except OSError:  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return f"SpoolTransport(directory={str(self.directory)!r})"


__all__ = [
    "SpoolTransport",
    "SpoolWriter",
    "SegmentReadResult",
    "iter_events",
    "iter_records",
    "read_segment",
    "segment_paths",
    "spool_size",
    "encode_record",
    "claim_segment",
    "remove_segment",
]
