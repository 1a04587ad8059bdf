"""Sends spooled records to Kafka once it takes messages again.

One replayer thread per KafkaTransport, started when the spool folder holds
segments (left by an outage, an earlier run or offline mode) or when records
spill. It works only while Kafka looks healthy (a recent ack, or a metadata
request that succeeds), one closed segment at a time:

1. lock the segment (a segment still being written is locked by its writer
   and skipped), read its intact records;
2. produce them all through the shared producer and wait for every report;
3. write the ones that failed again to this process's spool, then delete the
   segment. A segment is deleted only after each of its records was acked or
   written elsewhere.

A crash between an ack and the delete sends those records again on the next
replay: duplicates are possible, never loss; consumers can drop them by the
``vdt-event-id`` header.
"""

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from .. import _log
from ..codec import Record
from ..spool import claim_segment, remove_segment, segment_paths

if TYPE_CHECKING:  # pragma: no cover
    from .transport import KafkaTransport

IDLE_CHECK_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 3.0


class _Batch:
    """Delivery outcome of one segment's records."""

    def __init__(self, expected: int, transport: "KafkaTransport") -> None:
        self.expected = expected
        self._transport = transport
        self.acked = 0
        self.failed: List[Record] = []
        self.done = threading.Event()
        self._lock = threading.Lock()
        if expected == 0:
            self.done.set()

    def callback(self, error: Any, message: Any) -> None:
        with self._lock:
            if error is None:
                self.acked += 1
            else:
                self.failed.append(self._transport.record_from_report(message))
            if self.acked + len(self.failed) >= self.expected:
                self.done.set()


class Replayer:
    """The spool replay loop of one :class:`KafkaTransport`."""

    def __init__(self, transport: "KafkaTransport") -> None:
        self._transport = transport
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._backoff = 1.0
        self._progress: Optional[Callable[[int], None]] = None

    def run_once(self, progress: Optional[Callable[[int], None]] = None) -> bool:
        """Replays the spool now, in this thread (``vdt-ai sync``).

        Args:
            progress: called with the number of records settled per segment.

        Returns:
            ``True`` when the spool is empty afterwards.
        """
        self._progress = progress
        try:
            return self._replay_all()
        finally:
            self._progress = None

    def has_work(self) -> bool:
        """``True`` when the spool folder holds any segment."""
        return bool(segment_paths(self._transport.spool.directory))

    def wake(self) -> None:
        """Asks the loop to look at the spool now (starting it if needed)."""
        if self._stop.is_set():
            return
        import os

        self._idle.clear()
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="vdt-ai-spool-replay", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def wait_idle(self, timeout: float) -> int:
        """Waits up to ``timeout`` for the spool to be empty (or replay to stop).

        Returns:
            0 when idle, else 1 as a sign that spooled records remain.
        """
        if self._thread is None:
            return 0
        self._wake.set()
        return 0 if self._idle.wait(timeout) else 1

    def stop(self, join_timeout: float = 0.0) -> None:
        """Stops the loop after the segment in progress.

        Args:
            join_timeout: seconds to wait for the thread to finish.
        """
        self._stop.set()
        self._wake.set()
        self._idle.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_timeout)

    # -- loop -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(
                self._backoff if not self._idle.is_set() else IDLE_CHECK_SECONDS
            )
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                finished = self._replay_all()
            except Exception as exc:  # never let the thread die
                _log.log_once(
                    "replay-error", "ERROR", "spool replay failed", error=repr(exc)
                )
                finished = False
            if finished:
                self._backoff = 1.0
                self._idle.set()
            else:
                self._backoff = min(MAX_BACKOFF_SECONDS, self._backoff * 2)

    def _kafka_ready(self) -> bool:
        shared = self._transport.shared
        if shared.healthy:
            return True
        try:
            shared.producer.list_topics(timeout=PROBE_TIMEOUT_SECONDS)
        except Exception:
            return False
        # Metadata answers, but produce may still be refused (e.g. ACLs): the
        # batch outcome decides; failures go back to the spool.
        return True

    def _replay_all(self) -> bool:
        """Replays every closed segment; ``True`` when the spool is empty."""
        if self._stop.is_set() or self._transport.closed:
            return False
        spool = self._transport.spool
        if not segment_paths(spool.directory) and not spool.has_open_records:
            return True
        if not self._kafka_ready():
            return False
        spool.roll()
        for path in segment_paths(spool.directory):
            if self._stop.is_set():
                return False
            if not self._replay_segment(path):
                return False
        return not segment_paths(spool.directory) and not spool.has_open_records

    def _replay_segment(self, path: Any) -> bool:
        with claim_segment(path) as content:
            if content is None:
                return True  # in use by a writer; a later pass takes it
            records = content.records
            batch = _Batch(len(records), self._transport)
            shared = self._transport.shared
            for record in records:
                if not self._produce(shared, record, batch):
                    return False
            timeout = self._transport._settings.delivery_timeout + 10
            if not batch.done.wait(timeout):
                return False  # keep the segment: reports will come back later
            for record in batch.failed:
                if not self._transport.spool.append(record):
                    self._transport._counters.add("dropped")
            remove_segment(path)
            if self._progress is not None:
                self._progress(len(records))
            if batch.acked:
                self._transport._counters.add("replayed", batch.acked)
            if content.torn:
                _log.log_once(
                    f"torn:{path}", "WARNING", "skipped a torn record in the spool"
                )
            return not batch.failed

    def _produce(self, shared: Any, record: Record, batch: _Batch) -> bool:
        while not self._stop.is_set():
            try:
                shared.producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    headers=record.headers,
                    on_delivery=batch.callback,
                )
                return True
            except BufferError:
                time.sleep(0.05)  # the live traffic fills the queue: wait our turn
        return False
