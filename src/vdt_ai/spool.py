"""The local spool: a durable, append-only log of records on disk.

Offline mode writes every event here; the Kafka transport writes here what it
cannot deliver. :func:`iter_events` reads a spool folder back and
:func:`summarize` describes one (``vdt-ai spool status``).

Layout: a folder (mode 0700) of segment files
``<time ns>-<pid>-<random>.vdtspool``. Each process appends to a segment of its
own (a forked child opens a new one), so writers never interleave. A segment
starts with the 8-byte magic ``VDTSPL1\\n``; then records, each::

    uint32 big-endian  length of the payload
    uint32 big-endian  CRC-32 of the payload
    payload            a protobuf vdt.ai.v1.SpoolRecord (topic, key, value, headers)

The format is the one of the first release, on purpose: an older SDK reads
(and replays) what this one writes, so a downgrade loses nothing. Robust
re-synchronisation comes from validating candidates, not from a new marker
(see "Damage" below).

Creating a segment: the file is made under a temporary name (``.tmp-...``,
which no reader lists), locked (``flock``), given its magic, and only then
renamed to its final name. A replayer therefore never sees a segment that is
not yet locked by its writer. A temporary file left by a crashed process is
removed (or, if it holds records, renamed into place) by the next writer that
opens the folder, once it is over a minute old and unlocked.

Damage: a reader that meets a frame whose length, CRC or payload is wrong
scans forward, byte by byte, to the next valid frame (length > 0 and within
the file, CRC-32 matches, payload parses as a SpoolRecord with a topic) and
goes on from there. What it skipped is counted
(:attr:`SegmentReadResult.damaged_bytes`, ``skipped_frames``). A replayer
retires a claimed segment with :meth:`SegmentClaim.retire`: a clean segment is
deleted, one with any unreadable byte (a torn tail included) is moved to
``<spool>/quarantine/`` and reported (log, :func:`quarantine_count`,
``vdt-ai spool status``), never deleted.

Foreign entries: anything named ``*.vdtspool`` that is not a regular file of
ours (a directory, FIFO, socket, symlink, a file without our magic, a file
owned by another user) is skipped, reported (logged once, listed by
:func:`foreign_entries` and ``spool status``) and never deleted nor opened in
a way that could block.

The folder: created 0700. An existing folder writable by group or others is
set to 0700, with a warning, when this user owns it; otherwise it is refused
(``PermissionError`` from the writer's ``append``, so events are counted
``failed``, and from the readers), because anyone could plant segments there.

Cap: ``max_bytes`` bounds every byte in the folder (segments of all writers
and processes, temporary files, ``quarantine/``). A writer measures the folder
once, then counts its own writes; it measures again in the background after
``rescan_bytes`` of its own writes (``max_bytes / 64``, between 4 KiB and
1 MiB), and on its own thread only if the background has not done so by
``2 * rescan_bytes``. The folder may therefore exceed ``max_bytes`` by at most
``2 * rescan_bytes`` plus one record per concurrent writer. Once full,
``append`` returns ``False`` at once (no folder scan on the caller's thread);
the background measures again at most every :data:`FULL_RECHECK_SECONDS` to
notice space freed by a replay.

Durability (fsync policy): each record is handed to the operating system with
one ``write()`` as it is accepted, so a crash of the process (even SIGKILL)
loses nothing written. A short write (disk full, ``RLIMIT_FSIZE``) is undone
(the segment is truncated back to its last whole record) and raised as
``OSError``: the record is not in the spool. ``fsync`` runs on a background
thread within :data:`FSYNC_INTERVAL_SECONDS` of a write, and for a full
segment after it is handed over at rotation; ``flush()`` and ``close()`` fsync
on the caller's thread (bounded wait). A power cut can lose what was written
in the last second or so.
"""

import atexit
import collections
import errno
import os
import re
import stat
import struct
import threading
import time
import weakref
import zlib
from pathlib import Path
from typing import (
    Callable,
    Deque,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
    overload,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

from . import _forksafe, _lifecycle, _log
from .codec import Record, decode
from .codec._wire import LEN, keys, varint
from .exceptions import VDTError
from .models import Event
from .transport import SPOOL_FULL, SPOOL_WRITE_ERROR, Counters, Transport

MAGIC = b"VDTSPL1\n"
SEGMENT_SUFFIX = ".vdtspool"
TEMP_PREFIX = ".tmp-"
QUARANTINE_DIR = "quarantine"
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
FSYNC_INTERVAL_SECONDS = 1.0
FULL_RECHECK_SECONDS = 0.5
CLOSE_WAIT_SECONDS = 5.0
STALE_TEMP_SECONDS = 60.0
YOUNG_EMPTY_SECONDS = 60.0
_HEADER = struct.Struct(">II")
_READ_CHUNK = 1024 * 1024
_TICK_SECONDS = 0.25
# append_many writes its frames in runs of about this size: one syscall each.
_BATCH_WRITE_BYTES = 256 * 1024

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | _O_NONBLOCK | _O_NOFOLLOW | _O_CLOEXEC
_NONZERO = re.compile(rb"[^\x00]")

PathLike = Union[str, "os.PathLike[str]"]


# -- the frame ----------------------------------------------------------------------
# The payload is written directly (no generated code): the fields in number
# order, empty ones left out (proto3), as SpoolRecord.SerializeToString() does;
# test_spool_frame.py checks the bytes against it. Readers parse it with the
# generated code, so the format is unchanged.

# Key bytes of each field, in the order named (dicts keep it).
_TOPIC_KEY, _KEY_KEY, _VALUE_KEY, _HEADERS_KEY = keys(
    "SpoolRecord", {"topic": LEN, "key": LEN, "value": LEN, "headers": LEN}
).values()
_HEADER_NAME_KEY, _HEADER_VALUE_KEY = keys(
    "Header", {"key": LEN, "value": LEN}
).values()
_pack_header = _HEADER.pack
_crc32 = zlib.crc32

# What comes before a value, cached: the topic field, by topic; the value's key
# and length, by length; a header sub-message's key, length, name and value
# key, by name and value length. The first header seen with a name and value
# length is cached whole too (prefix and value), by header: the event type,
# schema version, content type and key id repeat, so they cost one lookup,
# while a header whose value changes on every record (the event id) is written
# from its prefix and never fills that cache (nor does a value over
# _FIELD_VALUE_MAX bytes). Bounded: emptied when full.
_CACHE_SIZE = 256
_FIELD_VALUE_MAX = 256
_topic_fields: Dict[str, bytes] = {}
_value_prefixes: Dict[int, bytes] = {}
_header_prefixes: Dict[Tuple[str, int], bytes] = {}
_header_fields: Dict[Tuple[str, bytes], bytes] = {}
_KEY_PREFIXES = [b""] + [_KEY_KEY + varint(size) for size in range(1, 0x80)]


def _topic_field(topic: str) -> bytes:
    raw = topic.encode()
    field = _TOPIC_KEY + varint(len(raw)) + raw if raw else b""
    if len(_topic_fields) >= _CACHE_SIZE:
        _topic_fields.clear()
    _topic_fields[topic] = field
    return field


def _value_prefix(size: int) -> bytes:
    if not size:
        return b""
    prefix = _VALUE_KEY + varint(size)
    if len(_value_prefixes) >= _CACHE_SIZE:
        _value_prefixes.clear()
    _value_prefixes[size] = prefix
    return prefix


def _header_field(header: Tuple[str, Optional[bytes]]) -> bytes:
    """One header sub-message field, from scratch (a cache miss)."""
    name, data = header
    if data is None:  # a header without a value (confluent-kafka allows it)
        data = b""
    size = len(data)
    prefix = _header_prefixes.get((name, size))
    if prefix is not None:
        return prefix + data
    raw = name.encode()
    body = _HEADER_NAME_KEY + varint(len(raw)) + raw if raw else b""
    if size:
        body += _HEADER_VALUE_KEY + varint(size)
    prefix = _HEADERS_KEY + varint(len(body) + size) + body
    field = prefix + data
    if len(_header_prefixes) >= _CACHE_SIZE:
        _header_prefixes.clear()
        _header_fields.clear()
    _header_prefixes[name, size] = prefix
    # Immutable (safe to keep) and small (the cache's memory stays bounded).
    if type(data) is bytes and type(name) is str and size <= _FIELD_VALUE_MAX:
        _header_fields[name, data] = field
    return field


def encode_record(record: Record) -> bytes:
    """One record in the spool's on-disk framing (length, CRC, payload).

    The payload is the SpoolRecord message, byte for byte the generated
    encoder's: cached prefixes and the data itself joined once (one copy of a
    large value).
    """
    topic, key, value, headers = record
    size = len(key)
    value_size = len(value)
    parts = [
        _topic_fields.get(topic) or _topic_field(topic),
        _KEY_PREFIXES[size] if size < 0x80 else _KEY_KEY + varint(size),
        key,
        _value_prefixes.get(value_size) or _value_prefix(value_size),
        value,
    ]
    append = parts.append
    fields = _header_fields
    prefixes = _header_prefixes
    try:
        for header in headers:
            field = fields.get(header)
            if field is None:  # a new value: the event id
                name, data = header
                prefix = prefixes.get((name, len(data)))
                field = _header_field(header) if prefix is None else prefix + data
            append(field)
    except TypeError:  # unhashable (a bytearray value, a list pair), None
        del parts[5:]
        for header in headers:
            append(_header_field(tuple(header)))  # type: ignore[arg-type]
    payload = b"".join(parts)
    return _pack_header(len(payload), _crc32(payload)) + payload


def _decode_payload(payload: bytes) -> Record:
    from .proto import events_pb2 as pb  # readers only: the writer needs none

    message = pb.SpoolRecord.FromString(payload)
    return Record(
        topic=message.topic,
        key=message.key,
        value=message.value,
        headers=[(h.key, h.value) for h in message.headers],
    )


def _expand(path: PathLike) -> Path:
    return Path(path).expanduser()


# -- reading ------------------------------------------------------------------------


class SegmentReadResult:
    """What one segment held.

    Attributes:
        records: the intact records, in write order.
        torn: ``True`` when the segment ends in unreadable bytes (a record cut
            short by a crash, or damage reaching the end).
        damaged_bytes: bytes that could not be read as records (skipped);
            0 for a clean segment. A torn tail counts.
        skipped_frames: stretches of unreadable bytes; each held at least one
            record, so this is a lower bound of the records lost.
        foreign: ``True`` when the file is not a spool segment (no magic);
            nothing was read from it.
        size: bytes of the file when it was read.
    """

    def __init__(
        self,
        records: List[Record],
        torn: bool,
        damaged_bytes: int = 0,
        skipped_frames: int = 0,
        foreign: bool = False,
        size: int = 0,
    ) -> None:
        self.records = records
        self.torn = torn
        self.damaged_bytes = damaged_bytes
        self.skipped_frames = skipped_frames
        self.foreign = foreign
        self.size = size

    @property
    def clean(self) -> bool:
        """``True`` when every byte of the segment was accounted for."""
        return self.damaged_bytes == 0 and not self.foreign

    def __repr__(self) -> str:
        return (
            f"SegmentReadResult(records={len(self.records)}, torn={self.torn}, "
            f"damaged_bytes={self.damaged_bytes}, "
            f"skipped_frames={self.skipped_frames}, foreign={self.foreign})"
        )


class _Damage(NamedTuple):
    start: int
    end: int


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, size)  # pragma: no cover


class _Window:
    """A forward-only view of a file: memory stays near one chunk plus a record."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.base = 0
        self.buf = b""

    def ensure(self, end: int) -> bool:
        """Makes bytes up to ``end`` available; ``False`` if the file is shorter."""
        have = self.base + len(self.buf)
        if end <= have:
            return True
        want = min(max(end - have, _READ_CHUNK), self.size - have)
        parts = [self.buf]
        while want > 0:
            chunk = _pread(self.fd, want, have)
            if not chunk:  # truncated under us
                self.size = have
                break
            parts.append(chunk)
            have += len(chunk)
            want -= len(chunk)
        self.buf = b"".join(parts)
        return end <= have

    def drop_before(self, offset: int) -> None:
        if offset - self.base >= _READ_CHUNK:
            self.buf = self.buf[offset - self.base :]
            self.base = offset


def _frame_at(win: _Window, pos: int) -> Optional[Tuple[Record, int]]:
    """The record framed at ``pos`` and where the next frame starts, if valid.

    Valid: a non-zero length within the file, a matching CRC-32 and a payload
    that parses as a SpoolRecord with a topic (our writers never write an
    empty record; 8 zero bytes would otherwise pass as one).
    """
    if win.size - pos < _HEADER.size or not win.ensure(pos + _HEADER.size):
        return None
    length, crc = _HEADER.unpack_from(win.buf, pos - win.base)
    start = pos + _HEADER.size
    if length == 0 or length > win.size - start:
        return None
    if not win.ensure(start + length):
        return None
    payload = win.buf[start - win.base : start - win.base + length]
    if zlib.crc32(payload) != crc:
        return None
    try:
        record = _decode_payload(payload)
    except Exception:  # a CRC-valid but unparsable payload
        return None
    if not record.topic:
        return None
    return record, start + length


def _scan(fd: int, size: int) -> Iterator[Union[Record, _Damage]]:
    """Records and damaged stretches of a segment whose magic was checked."""
    win = _Window(fd, size)
    pos = len(MAGIC)
    bad = -1  # start of the damaged stretch being skipped, -1 when in sync
    while pos < win.size:
        found = _frame_at(win, pos)
        if found is not None:
            if bad >= 0:
                yield _Damage(bad, pos)
                bad = -1
            record, pos = found
            win.drop_before(pos)
            yield record
            continue
        if bad < 0:
            bad = pos
        # Resync: a real frame's 4-byte length is never 0, so skip zero runs
        # (zero-filled blocks after a power cut) at C speed.
        nxt = pos + 1
        win.ensure(min(win.size, pos + _HEADER.size))
        rel = pos - win.base
        if win.buf[rel : rel + 4] == b"\x00\x00\x00\x00":
            hit = _NONZERO.search(win.buf, rel)
            nonzero = win.base + len(win.buf) if hit is None else win.base + hit.start()
            nxt = max(nxt, nonzero - 3)
        pos = nxt
        win.drop_before(pos)
    if bad >= 0:
        yield _Damage(bad, win.size)


def _head_kind(fd: int, size: int) -> str:
    """``segment``, ``empty``, ``torn`` (a magic cut short) or ``foreign``."""
    if size == 0:
        return "empty"
    head = _pread(fd, len(MAGIC), 0)
    if head == MAGIC:
        return "segment"
    if len(head) < len(MAGIC) and head and MAGIC.startswith(head):
        return "torn"
    return "foreign"


def _read_fd(fd: int, size: int) -> SegmentReadResult:
    kind = _head_kind(fd, size)
    if kind == "empty":
        return SegmentReadResult([], torn=False, size=0)
    if kind == "foreign":
        return SegmentReadResult([], torn=False, foreign=True, size=size)
    if kind == "torn":
        return SegmentReadResult(
            [], torn=True, damaged_bytes=size, skipped_frames=1, size=size
        )
    records: List[Record] = []
    damaged = skipped = 0
    torn = False
    for item in _scan(fd, size):
        if isinstance(item, _Damage):
            damaged += item.end - item.start
            skipped += 1
            torn = item.end >= size
        else:
            records.append(item)
    return SegmentReadResult(records, torn, damaged, skipped, size=size)


def _open_regular(path: PathLike) -> Optional[Tuple[int, os.stat_result]]:
    """Opens a regular file for reading without blocking or following a symlink.

    Returns ``None`` for anything else (FIFO, directory, symlink, device).
    Raises ``FileNotFoundError`` when it is gone.
    """
    try:
        fd = os.open(str(path), _READ_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EMLINK):
            return None
        raise
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def read_segment(path: PathLike) -> SegmentReadResult:
    """Reads every intact record of one segment file, skipping damaged bytes.

    A path that is not a regular file (FIFO, directory, symlink) or has no
    spool magic gives a result with ``foreign=True`` and no records.
    """
    opened = _open_regular(_expand(path))
    if opened is None:
        return SegmentReadResult([], torn=False, foreign=True)
    fd, st = opened
    try:
        return _read_fd(fd, st.st_size)
    finally:
        os.close(fd)


# -- listing ------------------------------------------------------------------------

_segment_inodes: Set[Tuple[int, int]] = set()  # files seen to start with MAGIC


def _owned(st: os.stat_result) -> bool:
    euid = os.geteuid() if hasattr(os, "geteuid") else 0
    return euid == 0 or st.st_uid == euid


def _kind_of(path: Path, st: os.stat_result) -> Optional[str]:
    """``None`` for a segment (or a would-be segment), else why it is foreign."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if not stat.S_ISREG(mode):
        return "special file"
    if not _owned(st):
        return f"owned by uid {st.st_uid}"
    if st.st_size == 0 or (st.st_dev, st.st_ino) in _segment_inodes:
        return None
    try:
        opened = _open_regular(path)
    except OSError:
        return None  # gone, or unreadable: the claim decides
    if opened is None:
        return "not a regular file"
    fd, fst = opened
    try:
        kind = _head_kind(fd, fst.st_size)
    finally:
        os.close(fd)
    if kind == "segment":
        if len(_segment_inodes) > 65536:
            _segment_inodes.clear()
        _segment_inodes.add((st.st_dev, st.st_ino))
        return None
    if kind == "torn":
        return None
    return "no spool header"


def _list(folder: Path) -> Tuple[List[Path], List[Tuple[Path, str]]]:
    segments: List[Path] = []
    foreign: List[Tuple[Path, str]] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    for entry in entries:
        name = entry.name
        if not name.endswith(SEGMENT_SUFFIX) or name.startswith("."):
            continue
        path = folder / name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        why = _kind_of(path, st)
        if why is None:
            segments.append(path)
        else:
            foreign.append((path, why))
            _log.log_once(
                f"spool-foreign:{path}",
                "WARNING",
                "skipping an entry of the spool folder that is not a spool segment",
                path=path,
                reason=why,
            )
    segments.sort()
    foreign.sort()
    return segments, foreign


def segment_paths(directory: PathLike) -> List[Path]:
    """The segment files of a spool folder, oldest first.

    Foreign entries (see :func:`foreign_entries`), temporary files and
    ``quarantine/`` are left out.
    """
    return _list(_expand(directory))[0]


def foreign_entries(directory: PathLike) -> List[Tuple[Path, str]]:
    """Entries named ``*.vdtspool`` that are not spool segments, with the reason.

    They are skipped by readers and replay, and never deleted.
    """
    return _list(_expand(directory))[1]


def quarantined(directory: PathLike) -> List[Path]:
    """Segments moved to ``<spool>/quarantine/`` because they held damaged bytes."""
    folder = _expand(directory) / QUARANTINE_DIR
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(folder / e.name for e in entries if e.is_file(follow_symlinks=False))


def quarantine_count(directory: PathLike) -> int:
    """How many segments are in quarantine (for ``stats()``)."""
    return len(quarantined(directory))


def _folder_bytes(folder: Path) -> int:
    """Bytes the spool holds on disk: what ``max_bytes`` caps."""
    total = 0
    for sub in (folder, folder / QUARANTINE_DIR):
        try:
            entries = list(os.scandir(sub))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = entry.name
            if sub is folder and not (
                name.endswith(SEGMENT_SUFFIX) or name.startswith(TEMP_PREFIX)
            ):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def spool_size(directory: PathLike) -> int:
    """Bytes used by a spool folder: segments, temporary files and quarantine."""
    return _folder_bytes(_expand(directory))


def _iter_segment(path: Path) -> Iterator[Union[Record, _Damage]]:
    """One segment, record by record; nothing for foreign or vanished files."""
    try:
        opened = _open_regular(path)
    except FileNotFoundError:  # removed by a concurrent sync
        return
    if opened is None:
        return
    fd, st = opened
    try:
        if not _owned(st):
            return
        kind = _head_kind(fd, st.st_size)
        if kind == "torn":
            yield _Damage(0, st.st_size)
        elif kind == "segment":
            yield from _scan(fd, st.st_size)
    finally:
        os.close(fd)


def _existing_folder(directory: PathLike) -> Path:
    """``directory`` with ``~`` expanded, checked to be a folder we may read.

    Readers refuse a folder that does not exist instead of yielding nothing: a
    mistyped path (or an unexpanded ``~``) would otherwise look like an empty
    spool.

    Raises:
        FileNotFoundError: no such folder.
        NotADirectoryError: the path is not a folder.
        PermissionError: the folder is writable by other users and not ours.
    """
    folder = _expand(directory)
    if not folder.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            "no such spool folder (nothing was ever spooled there; "
            "check spool_dir or the path)",
            str(folder),
        )
    _secure_directory(folder, create=False)
    return folder


def iter_records(directory: PathLike) -> Iterator[Record]:
    """Every intact record in a spool folder, oldest segment first (streamed).

    The folder is checked when this is called, before the first record.

    Args:
        directory: the spool folder (``~`` is expanded).

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the path is not a folder.
        PermissionError: the folder is writable by other users and not ours.
    """
    return _records_in(_existing_folder(directory))


def _records_in(folder: Path) -> Iterator[Record]:
    for path in segment_paths(folder):
        for item in _iter_segment(path):
            if not isinstance(item, _Damage):
                yield item


def iter_events(
    directory: PathLike,
    on_skip: Optional[Callable[[Record, VDTError], None]] = None,
) -> Iterator[Event]:
    """Every event in a spool folder, decoded, oldest segment first.

    A record that does not decode (written by another tool, or damaged in a
    way its checksum did not catch) never stops the reading: it is skipped,
    logged once, and passed to ``on_skip`` if given. It stays on disk.

    The folder is checked when this is called, before the first event.

    Args:
        directory: the spool folder (``~`` is expanded).
        on_skip: called with ``(record, error)`` for each record skipped.

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the path is not a folder.
        PermissionError: the folder is writable by other users and not ours.
    """
    return _events_in(iter_records(directory), on_skip)


def _events_in(
    records: Iterator[Record],
    on_skip: Optional[Callable[[Record, VDTError], None]],
) -> Iterator[Event]:
    for record in records:
        try:
            event = decode(record.value)
        except VDTError as exc:  # SerializationError; its message is redacted
            _log.log_once(
                "spool-undecodable",
                "WARNING",
                "skipped a spool record that is not a valid event",
                topic=record.topic,
                error=str(exc),
            )
            if on_skip is not None:
                on_skip(record, exc)
            continue
        yield event


class SpoolSummary:
    """What a spool folder holds (``vdt-ai spool status``).

    Attributes:
        directory: the spool folder.
        segments: segment files (including ones still being written).
        records: intact records in them.
        records_by_topic: intact records per topic.
        bytes: bytes on disk, as capped by ``max_bytes`` (segments,
            temporary files and quarantine).
        damaged_bytes: unreadable bytes in the segments (not in quarantine).
        damaged_segments: segments holding unreadable bytes.
        quarantined: segments moved to ``quarantine/``.
        foreign: entries named ``*.vdtspool`` that are not ours, with the reason.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.segments = 0
        self.records = 0
        self.records_by_topic: Dict[str, int] = {}
        self.bytes = 0
        self.damaged_bytes = 0
        self.damaged_segments: List[Path] = []
        self.quarantined: List[Path] = []
        self.foreign: List[Tuple[Path, str]] = []

    def __repr__(self) -> str:
        return (
            f"SpoolSummary(directory={str(self.directory)!r}, "
            f"segments={self.segments}, records={self.records}, "
            f"bytes={self.bytes}, damaged_bytes={self.damaged_bytes}, "
            f"quarantined={len(self.quarantined)}, foreign={len(self.foreign)})"
        )


def summarize(
    directory: PathLike, on_record: Optional[Callable[[Record], None]] = None
) -> SpoolSummary:
    """Describes a spool folder, reading one record at a time.

    Memory stays near one read chunk (1 MiB) plus the largest record, whatever
    the spool's size.

    Args:
        directory: the spool folder (``~`` is expanded).
        on_record: called with each intact record, e.g. to find the oldest.

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the path is not a folder.
        PermissionError: the folder is writable by other users and not ours.
    """
    folder = _existing_folder(directory)
    summary = SpoolSummary(folder)
    segments, summary.foreign = _list(folder)
    by_topic = summary.records_by_topic
    for path in segments:
        summary.segments += 1
        damaged = 0
        for item in _iter_segment(path):
            if isinstance(item, _Damage):
                damaged += item.end - item.start
                continue
            summary.records += 1
            by_topic[item.topic] = by_topic.get(item.topic, 0) + 1
            if on_record is not None:
                on_record(item)
        if damaged:
            summary.damaged_bytes += damaged
            summary.damaged_segments.append(path)
    summary.quarantined = quarantined(folder)
    summary.bytes = _folder_bytes(folder)
    return summary


# -- the folder -----------------------------------------------------------------------


def _secure_directory(folder: Path, create: bool) -> None:
    """Creates the spool folder 0700, or checks that no other user can write to it.

    An existing folder writable by group/others is set to 0700 (with a
    warning) when we own it, else refused.

    Raises:
        PermissionError: the folder is writable by others and not ours.
        NotADirectoryError: a file is where the folder should be.
    """
    if create:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        if create:
            raise
        return
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(
            errno.ENOTDIR, "spool_dir is not a folder", str(folder)
        )
    if not st.st_mode & 0o022 or not hasattr(os, "geteuid"):
        return
    if st.st_uid == os.geteuid():
        os.chmod(folder, 0o700)
        _log.log_once(
            f"spool-mode:{folder}",
            "WARNING",
            "the spool folder was writable by other users: set to 0700",
            directory=folder,
            mode=oct(stat.S_IMODE(st.st_mode)),
        )
        return
    raise PermissionError(
        errno.EPERM,
        f"spool folder is writable by other users and owned by uid {st.st_uid}, "
        "not by this user: refusing to use it (anyone could plant or remove "
        "segments); make it 0700 or choose another spool_dir",
        str(folder),
    )


def _clean_stale_temps(folder: Path) -> None:
    """Removes (or renames into place) temporary segments of crashed writers."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return
    now = time.time()
    for entry in entries:
        path = folder / entry.name
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_TEMP_SECONDS:
                continue
            opened = _open_regular(path)
        except OSError:
            continue
        if opened is None:
            continue
        fd, fst = opened
        try:
            if not _owned(fst) or not _try_lock(fd):
                continue  # its writer is alive
            cur = os.stat(path, follow_symlinks=False)
            if (cur.st_dev, cur.st_ino) != (fst.st_dev, fst.st_ino):
                continue
            kind = _head_kind(fd, fst.st_size)
            if kind == "segment" and fst.st_size > len(MAGIC):
                target = folder / (entry.name[len(TEMP_PREFIX) :] + SEGMENT_SUFFIX)
                if not target.exists():
                    os.rename(path, target)  # records in it: recover them
            elif kind in ("empty", "torn") or (
                kind == "segment" and fst.st_size == len(MAGIC)
            ):
                os.unlink(path)  # holds nothing
        except OSError:
            continue
        finally:
            os.close(fd)


# -- claims -------------------------------------------------------------------------

_claims: "weakref.WeakSet[SegmentClaim]" = weakref.WeakSet()
_claims_by_path: "weakref.WeakValueDictionary[str, SegmentClaim]" = (
    weakref.WeakValueDictionary()
)


class SegmentClaim:
    """An exclusive claim on a closed segment, for replay.

    Holds the segment's ``flock`` until :meth:`retire` or :meth:`release`, so
    no writer or other replayer (in any process) uses it meanwhile.

    Attributes:
        path: the segment file.
        result: what it held when claimed.
    """

    def __init__(self, path: Path, fd: int, result: SegmentReadResult) -> None:
        self.path = path
        self.result = result
        self._fd: Optional[int] = fd
        self._lock = threading.Lock()
        _claims.add(self)
        _claims_by_path[str(path)] = self

    @property
    def held(self) -> bool:
        """``True`` until retired or released."""
        return self._fd is not None

    def retire(self) -> str:
        """Removes the segment once its records are safe elsewhere.

        A clean segment is deleted; one holding any unreadable byte (or that
        changed since it was read) is moved to ``<spool>/quarantine/`` and
        reported. Releases the claim.

        Returns:
            ``"deleted"`` or ``"quarantined"``.

        Raises:
            RuntimeError: the claim was already retired or released.
            OSError: the quarantine folder cannot be made (claim released,
                the segment stays where it is).
        """
        with self._lock:
            fd = self._fd
            if fd is None:
                raise RuntimeError(f"claim on {self.path} was already released")
            try:
                result = self.result
                unchanged = os.fstat(fd).st_size == result.size
                if result.clean and unchanged:
                    try:
                        os.unlink(str(self.path))
                    except FileNotFoundError:
                        pass
                    return "deleted"
                return _quarantine(self.path, result)
            finally:
                self._release_locked()

    def release(self) -> None:
        """Keeps the segment where it is and drops the claim (idempotent)."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    def _forget_after_fork(self) -> None:
        # A child's copy of the descriptor would keep the parent's lock alive.
        self._lock = threading.Lock()
        self._release_locked()

    def __enter__(self) -> "SegmentClaim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"SegmentClaim(path={str(self.path)!r}, held={self.held})"


def _quarantine(path: Path, result: SegmentReadResult) -> str:
    qdir = path.parent / QUARANTINE_DIR
    qdir.mkdir(mode=0o700, exist_ok=True)
    target = qdir / path.name
    n = 0
    while target.exists():
        n += 1
        target = qdir / f"{path.name}.{n}"
    try:
        os.rename(str(path), str(target))
    except FileNotFoundError:  # removed by someone else meanwhile
        return "deleted"
    _log.log_once(
        f"spool-quarantine:{target}",
        "WARNING",
        "a spool segment held unreadable bytes: its intact records were kept "
        "and it was moved to quarantine, not deleted",
        path=target,
        records=len(result.records),
        damaged_bytes=result.damaged_bytes,
    )
    return "quarantined"


def claim(path: PathLike) -> Optional[SegmentClaim]:
    """Locks a closed segment for replay and reads it.

    Returns:
        The claim, or ``None`` when the segment is locked (being written, or
        claimed by another replayer), gone, not a regular file, not owned by
        this user, not a spool segment, or an empty file younger than a minute
        (possibly an older SDK's writer between creating and locking it).

    Raises:
        PermissionError: the folder is writable by other users and not ours.
    """
    path = _expand(path)
    _secure_directory(path.parent, create=False)
    try:
        opened = _open_regular(path)
    except FileNotFoundError:
        return None
    if opened is None:
        return None
    fd, st = opened
    keep = False
    try:
        if not _owned(st) or not _try_lock(fd):
            return None
        try:
            current = os.stat(str(path), follow_symlinks=False)
        except FileNotFoundError:
            return None  # retired by another replayer after we opened it
        if (current.st_dev, current.st_ino) != (st.st_dev, st.st_ino):
            return None
        size = os.fstat(fd).st_size
        if size == 0 and time.time() - current.st_mtime < YOUNG_EMPTY_SECONDS:
            return None
        result = _read_fd(fd, size)
        if result.foreign:
            return None
        keep = True
        return SegmentClaim(path, fd, result)
    finally:
        if not keep:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class _LegacyClaim:
    """Context manager of the first API: yields the read result or ``None``."""

    def __init__(self, path: PathLike) -> None:
        self._claim = claim(path)

    def __enter__(self) -> Optional[SegmentReadResult]:
        return None if self._claim is None else self._claim.result

    def __exit__(self, *exc: object) -> None:
        if self._claim is not None:
            self._claim.release()


def claim_segment(path: PathLike) -> _LegacyClaim:
    """Locks a closed segment for replay and reads it (first API; see :func:`claim`).

    Yields ``None`` when the segment cannot be claimed. Inside the ``with``
    block, :func:`remove_segment` retires it (a damaged one is quarantined).
    """
    return _LegacyClaim(path)


def remove_segment(path: PathLike) -> None:
    """Retires a replayed segment: a segment claimed in this process is deleted
    when clean and quarantined when damaged; an unclaimed path is deleted
    (missing is fine)."""
    held = _claims_by_path.get(str(_expand(path)))
    if held is not None and held.held:
        held.retire()
        return
    try:
        os.unlink(str(path))
    except FileNotFoundError:
        pass


# -- writing ------------------------------------------------------------------------

_writers: "weakref.WeakSet[SpoolWriter]" = weakref.WeakSet()


class _Worker:
    """One background thread per process: fsync, rotation hand-off, cap rescans."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._kicked = False
        self._thread: Optional[threading.Thread] = None

    def kick(self) -> None:
        with self._cond:
            self._kicked = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="vdt-ai-spool-sync", daemon=True
                )
                if not _lifecycle.start_thread(self._thread):
                    # At interpreter shutdown (an exit purge spooling): the
                    # writers' own paths do the work (close() syncs the
                    # hand-offs, _admit rescans).
                    self._thread = None
                    return
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._kicked:
                    self._cond.wait(_TICK_SECONDS)
                self._kicked = False
            for writer in list(_writers):
                try:
                    writer._background()
                except Exception as exc:  # never let the thread die
                    _log.log_once(
                        f"spool-background:{type(exc).__name__}",
                        "ERROR",
                        "spool background fsync failed",
                        error=repr(exc),
                    )


_worker = _Worker()


class SpoolAppendError(OSError):
    """A batch append stopped at a write the disk refused.

    Attributes:
        written: records of the batch written before the failure.
    """

    def __init__(self, written: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.written = written


class _Limit:
    """A writer's limit (an int attribute): setting it makes the next append
    take every check again."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = "_" + name

    @overload
    def __get__(self, writer: None, owner: type) -> "_Limit": ...

    @overload
    def __get__(self, writer: "SpoolWriter", owner: type) -> int: ...

    def __get__(
        self, writer: Optional["SpoolWriter"], owner: type
    ) -> Union[int, "_Limit"]:
        if writer is None:
            return self
        return getattr(writer, self._attr)  # type: ignore[no-any-return]

    def __set__(self, writer: "SpoolWriter", value: int) -> None:
        with writer._lock:
            setattr(writer, self._attr, value)
            writer._room = 0


class SpoolWriter:
    """Appends records to this process's own segment in a spool folder.

    Thread-safe (a re-entrant lock: a SIGTERM handler may run inside an
    append) and fork-aware: a forked child closes the parent's segment
    descriptors at once (so it never holds the parent's lock) and opens a
    segment of its own on its first append. ``append`` returns ``False`` (and
    writes nothing) when the folder would grow past ``max_bytes`` (see the
    module docstring for the bounded overshoot across writers).

    The folder is created 0700; an existing one writable by group/others is
    set to 0700 with a warning when this user owns it, else ``append``
    raises ``PermissionError`` (the event is counted ``failed``).
    """

    # The cap on every byte in the folder; the size at which a segment is
    # rotated; own writes after which the folder is measured again.
    max_bytes = _Limit()
    segment_bytes = _Limit()
    rescan_bytes = _Limit()
    _max_bytes: int
    _segment_bytes: int
    _rescan_bytes: int

    def __init__(
        self,
        directory: PathLike,
        max_bytes: int,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync_interval: float = FSYNC_INTERVAL_SECONDS,
    ) -> None:
        self.directory = _expand(directory)
        self._lock = threading.RLock()  # re-entrant: see _lifecycle (SIGTERM)
        _forksafe.register(self)
        # Bytes the next appends may write with no check but the lock: room in
        # the segment, under the cap and before the next rescan, as measured
        # after the last checked append (0: check the next one). Anything that
        # changes what the checks see sets it to 0.
        self._room = 0
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.rescan_bytes = min(1024 * 1024, max(4096, max_bytes // 64))
        self._io_lock = threading.Lock()  # the current fd: periodic fsync vs close
        self._fd: Optional[int] = None
        self._pid = os.getpid()
        self._segment_size = 0
        self._segment_path: Optional[Path] = None
        self._closed = False
        # The cap: folder bytes at the last scan + our writes since.
        self._scan_total: Optional[int] = None
        self._scan_mark = 0
        self._written = 0
        self._last_scan = 0.0
        self._full = False
        self._rescan_wanted = False
        # Durability: descriptors of rotated segments wait here for fsync+close.
        self._handoff: Deque[int] = collections.deque()
        self._inflight = 0
        self._dirty = False
        self._dir_dirty = False
        self._last_sync = time.monotonic()
        _writers.add(self)

    def append(self, record: Record) -> bool:
        """Writes one record; ``False`` if the spool is full or closed.

        Raises:
            OSError: the disk refused the write (full, file size limit,
                read-only, an unsafe folder, ...); nothing of the record
                stays in the spool.
        """
        frame = encode_record(record)
        size = len(frame)
        with self._lock:
            if size <= self._room:
                # The common case, checked by the last append: one write().
                fd = self._fd
                try:
                    written = os.write(fd, frame)  # type: ignore[arg-type]
                except OSError:
                    self._undo_partial()
                    raise
                if written != size:
                    self._short_write(written, size)
                self._room -= size
                self._segment_size += size
                self._written += size
                self._dirty = True
                return True
            return self._append_checked(frame)

    def _append_checked(self, frame: bytes) -> bool:
        """``append`` with every check (under the lock); sets ``_room``."""
        self._room = 0
        if self._closed:
            return False
        if self._pid != _forksafe.pid:  # getpid() is a system call
            self._forget_after_fork()
        new_segment = self._fd is None or self._segment_size >= self.segment_bytes
        if not self._admit(len(frame) + (len(MAGIC) if new_segment else 0)):
            return False
        if new_segment:
            self._open_segment()
        self._write(frame)
        self._room = self._unchecked_room()
        return True

    def _unchecked_room(self) -> int:
        """Bytes the next appends may write before ``_admit`` or a rotation
        would do anything but let them through (at most: it may be less)."""
        assert self._scan_total is not None
        since = self._written - self._scan_mark
        rescan_at = self._rescan_bytes * (2 if self._rescan_wanted else 1)
        return max(
            0,
            min(
                rescan_at - since,
                self._max_bytes - self._scan_total - since,
                self._segment_bytes - self._segment_size,
            ),
        )

    def append_many(self, records: Sequence[Record]) -> int:
        """Writes ``records`` in order under one lock, with one ``write()``
        per run of frames; stops at the first record that does not fit
        (spool full) or when the writer is closed.

        Returns:
            How many of ``records`` (from the start) were written.

        Raises:
            SpoolAppendError: the disk refused a write; its ``written`` says
                how many records were written before it (the rest of that
                run is cut off again: nothing of it stays in the spool).
        """
        frames = [encode_record(record) for record in records]
        written = 0
        with self._lock:
            self._room = 0  # its writes are not counted in it
            if self._closed:
                return 0
            if self._pid != _forksafe.pid:  # getpid() is a system call
                self._forget_after_fork()
            run: List[bytes] = []
            run_bytes = 0
            for frame in frames:
                new_segment = (
                    self._fd is None
                    or self._segment_size + run_bytes >= self.segment_bytes
                )
                needed = len(frame) + (len(MAGIC) if new_segment else 0)
                if not self._admit(needed + run_bytes):
                    break
                if new_segment or run_bytes >= _BATCH_WRITE_BYTES:
                    written += self._write_run(run, written)
                    run, run_bytes = [], 0
                    if new_segment:
                        self._open_segment()
                run.append(frame)
                run_bytes += len(frame)
            written += self._write_run(run, written)
        return written

    def _write_run(self, run: List[bytes], written: int) -> int:
        if not run:
            return 0
        try:
            self._write(b"".join(run))
        except OSError as exc:
            raise SpoolAppendError(written, exc) from exc
        return len(run)

    def _admit(self, needed: int) -> bool:
        """Whether ``needed`` more bytes keep the folder within ``max_bytes``."""
        if self._scan_total is None:
            self._prepare()
        assert self._scan_total is not None
        since = self._written - self._scan_mark
        if self._scan_total + since + needed > self.max_bytes:
            if not self._full or (
                time.monotonic() - self._last_scan >= FULL_RECHECK_SECONDS
            ):
                self._full = True
                _worker.kick()  # the background measures again
            return False
        self._full = False
        if since >= 2 * self.rescan_bytes:
            self._rescan()  # the background fell behind
            since = self._written - self._scan_mark
            if self._scan_total + since + needed > self.max_bytes:
                self._full = True
                return False
        elif since >= self.rescan_bytes and not self._rescan_wanted:
            self._rescan_wanted = True
            _worker.kick()
        return True

    def roll(self) -> Optional[Path]:
        """Closes the current segment if it holds records, so it can be replayed.

        The segment is fsynced and unlocked before this returns.

        Returns:
            The closed segment's path, or ``None`` when there was nothing to close.
        """
        with self._lock:
            if self._pid != os.getpid():
                return None
            fd, path = self._fd, self._segment_path
            if fd is None or self._segment_size <= len(MAGIC):
                fd = path = None
            else:  # the next append opens a new segment
                self._fd = self._segment_path = None
                self._room = 0
                self._dirty = False
        # The fsyncs (100 ms and more on a busy disk) run outside the writer's
        # lock: a caller spilling an event meanwhile is not held up (the
        # replayer rolls while Kafka is half down and callers spill).
        self._drain(CLOSE_WAIT_SECONDS)  # rotated segments: unlocked now
        if fd is None:
            return None
        with self._io_lock:  # not while the background fsyncs this one
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return path

    @property
    def has_open_records(self) -> bool:
        """``True`` when the current segment holds records not yet rolled."""
        return self._fd is not None and self._segment_size > len(MAGIC)

    def flush(self, timeout: float = CLOSE_WAIT_SECONDS) -> None:
        """Forces written records to stable storage (fsync), waiting up to
        ``timeout`` for rotated segments the background is syncing."""
        with self._lock:
            if self._pid != os.getpid():
                return
            self._drain(timeout)
            with self._io_lock:
                if self._fd is not None:
                    self._dirty = False
                    os.fsync(self._fd)
            self._sync_dir()

    def close(self, timeout: float = CLOSE_WAIT_SECONDS) -> None:
        """fsyncs and closes the current segment; later appends return False.

        Safe to call twice, from ``atexit`` and from a signal handler.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._room = 0
            _writers.discard(self)
            if self._pid != _forksafe.pid:  # getpid() is a system call
                self._forget_after_fork()
                return
            try:
                self._drain(timeout)
                self._close_current()
                self._sync_dir()
            finally:
                self._segment_path = None

    @property
    def segment_path(self) -> Optional[Path]:
        """The segment this process writes to now, if any."""
        return self._segment_path

    # -- caller side ----------------------------------------------------------------

    def _prepare(self) -> None:
        _secure_directory(self.directory, create=True)
        _clean_stale_temps(self.directory)
        self._scan_total = _folder_bytes(self.directory)
        self._scan_mark = self._written
        self._last_scan = time.monotonic()

    def _rescan(self) -> None:
        mark = self._written
        total = _folder_bytes(self.directory)
        with self._lock:
            if self._pid != os.getpid() or self._scan_total is None:
                return
            self._room = 0  # the checks see a new total
            if mark >= self._scan_mark:
                self._scan_total, self._scan_mark = total, mark
                self._last_scan = time.monotonic()
            self._rescan_wanted = False

    def _write(self, frame: bytes) -> None:
        fd = self._fd
        assert fd is not None
        try:
            written = os.write(fd, frame)
        except OSError:
            self._undo_partial()
            raise
        if written != len(frame):
            self._short_write(written, len(frame))
        self._segment_size += written
        self._written += written
        if not self._dirty:
            self._dirty = True

    def _short_write(self, written: int, size: int) -> None:
        self._undo_partial()
        raise OSError(
            errno.ENOSPC,
            f"short write to the spool ({written} of {size} bytes; "
            "disk full or file size limit): the record was not spooled",
            str(self._segment_path),
        )

    def _undo_partial(self) -> None:
        """Cuts the segment back to its last whole record after a failed write."""
        self._room = 0
        fd = self._fd
        if fd is None:  # pragma: no cover
            return
        try:
            os.ftruncate(fd, self._segment_size)
        except OSError:
            # Cannot cut: leave the torn tail (readers skip it, replay
            # quarantines the segment) and write no more after it.
            self._handoff_current()

    def _open_segment(self) -> None:
        self._handoff_current()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_CLOEXEC
        for _attempt in range(3):
            name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}"
            temp = self.directory / (TEMP_PREFIX + name)
            final = self.directory / (name + SEGMENT_SUFFIX)
            fd = os.open(str(temp), flags, 0o600)
            try:
                # Lock first, then give it its final name: a replayer never
                # sees an unlocked new segment.
                if not _try_lock(fd):  # pragma: no cover - taken by a cleaner
                    os.close(fd)
                    continue
                written = os.write(fd, MAGIC)
                if written != len(MAGIC):
                    raise OSError(
                        errno.ENOSPC, "short write of a spool segment header", str(temp)
                    )
                os.rename(str(temp), str(final))
            except FileNotFoundError:  # pragma: no cover - removed by a cleaner
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                try:
                    os.unlink(str(temp))
                except OSError:
                    pass
                raise
            break
        else:  # pragma: no cover
            raise OSError(errno.EAGAIN, "cannot create a spool segment", str(temp))
        self._fd = fd
        self._segment_path = final
        self._segment_size = len(MAGIC)
        self._written += len(MAGIC)
        self._dir_dirty = True

    def _handoff_current(self) -> None:
        """Gives the current segment to the background for fsync and close."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        self._room = 0
        self._handoff.append(fd)
        self._dirty = False
        _worker.kick()

    def _close_current(self) -> None:
        with self._io_lock:
            fd, self._fd = self._fd, None
            self._room = 0
            self._dirty = False
            if fd is not None:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def _drain(self, timeout: float) -> None:
        """fsyncs and closes the handed-off segments (bounded wait)."""
        while self._sync_one_handoff():
            pass
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.001)

    def _sync_one_handoff(self) -> bool:
        """fsyncs and closes one rotated segment; ``False`` when none is left."""
        try:
            fd = self._handoff.popleft()
        except IndexError:
            return False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _sync_dir(self) -> None:
        if not self._dir_dirty or not hasattr(os, "O_DIRECTORY"):
            return
        self._dir_dirty = False
        try:
            fd = os.open(str(self.directory), os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - some filesystems refuse
            pass
        finally:
            os.close(fd)

    # -- background side ------------------------------------------------------------

    def _background(self) -> None:
        if self._pid != os.getpid():
            return
        while True:
            self._inflight += 1
            try:
                if not self._sync_one_handoff():
                    break
            finally:
                self._inflight -= 1
        now = time.monotonic()
        if self._dirty and now - self._last_sync >= self.fsync_interval:
            with self._io_lock:
                if self._fd is not None and self._dirty:
                    self._dirty = False
                    self._last_sync = now
                    os.fsync(self._fd)
        if self._dir_dirty:
            self._sync_dir()
        if self._scan_total is not None and (
            self._rescan_wanted
            or (self._full and now - self._last_scan >= FULL_RECHECK_SECONDS)
        ):
            self._rescan()

    def _forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors (and so its locks)."""
        self._io_lock = threading.Lock()
        fds = list(self._handoff)
        self._handoff = collections.deque()
        if self._fd is not None:
            fds.append(self._fd)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
        self._fd = None
        self._room = 0
        self._segment_path = None
        self._segment_size = 0
        self._scan_total = None
        self._inflight = 0
        self._dirty = self._dir_dirty = False
        self._full = self._rescan_wanted = False
        self._pid = os.getpid()


def _after_fork_in_child() -> None:
    global _worker
    _worker = _Worker()
    for writer in list(_writers):
        writer._forget_after_fork()
    for held in list(_claims):
        held._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _flush_all_at_exit() -> None:
    for writer in list(_writers):
        if writer._pid != os.getpid() or not writer._lock.acquire(timeout=1.0):
            continue
        try:
            writer.flush(timeout=1.0)
        except Exception:
            pass
        finally:
            writer._lock.release()


atexit.register(_flush_all_at_exit)


class SpoolTransport(Transport):
    """Writes every record to the local spool: offline mode.

    Events stay on disk until sent later (``vdt-ai sync``) or read with
    :func:`iter_events`.
    """

    def __init__(self, directory: PathLike, max_bytes: int) -> None:
        self.writer = SpoolWriter(directory, max_bytes)
        self._append = self.writer.append
        # The "spooled" ticker of the counters last seen (a client passes the
        # same ones on every call): one lock-free tick per event.
        self._counters: Optional[Counters] = None
        self._spooled: Callable[[], int] = int

    @property
    def directory(self) -> Path:
        """The spool folder."""
        return self.writer.directory

    def send(self, record: Record, counters: Counters) -> None:
        """Appends ``record`` to the spool; counts it spooled, or dropped if full."""
        try:
            written = self._append(record)
        except OSError as exc:
            counters.add("failed", reason=SPOOL_WRITE_ERROR)
            _log.log_once(
                f"spool-error:{self.directory}",
                "ERROR",
                "cannot write to the spool; events are being lost",
                directory=self.directory,
                error=exc.strerror or type(exc).__name__,
            )
            return
        if written:
            if counters is not self._counters:
                self._spooled = counters.ticker("spooled")
                self._counters = counters
            self._spooled()
        else:
            counters.add("dropped", reason=SPOOL_FULL)
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
    "SpoolSummary",
    "SegmentClaim",
    "SegmentReadResult",
    "claim",
    "quarantined",
    "quarantine_count",
    "foreign_entries",
    "summarize",
    "iter_events",
    "iter_records",
    "read_segment",
    "segment_paths",
    "spool_size",
    "encode_record",
    "claim_segment",
    "remove_segment",
]
