"""Sends spooled records to Kafka once it takes messages again.

One replayer thread per KafkaTransport, started when the spool folder holds
segments (left by an outage, an earlier run or offline mode) or when records
spill. It works only while Kafka looks healthy (a recent ack, or a metadata
request that succeeds), one closed segment at a time:

1. claim the segment (an exclusive lock: a segment still being written, or
   claimed by another process's replayer, is skipped) and read its records;
2. produce them all and wait for every report. Each record's outcome is
   classified once (:mod:`vdt_ai.kafka.errors`): acked; refused for good
   (counted ``failed``, logged once with the reason, and replay moves on past
   it); or to be retried (spooled again);
3. write the records to retry to the spool again, then retire the segment
   (deleted, or moved to ``quarantine/`` when it held damaged bytes). A
   segment is retired only after each of its records was acked, refused for
   good, or written elsewhere: with no room to spool its retries again, it is
   kept. When the reports do not come back in time, the claim is kept until
   they do (or the process ends), so no other replayer sends it meanwhile.

A crash between an ack and the retirement sends those records again on the
next replay: duplicates are possible, never loss; consumers can drop them by
the ``vdt-event-id`` header.

The replayer's inputs are narrow (a spool writer, a producer getter, counters,
a report callback), so it does not know the transport that owns it.
"""

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from .. import _lifecycle, _log
from .. import spool as spool_files
from ..codec import Record
from ..spool import SpoolWriter
from ..transport import Counters
from . import errors as kafka_errors
from .producer import FLUSH_SLICE_SECONDS, SharedProducer
from .reports import record_from_report

IDLE_CHECK_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 3.0
_PROBE_SLICE_SECONDS = 0.25

ProducerGetter = Callable[[], Optional[SharedProducer]]
ReportCallback = Callable[[Any, Optional[str]], None]


class _Batch:
    """Delivery outcome of one segment's records."""

    def __init__(self, expected: int, api_key_id: Optional[str]) -> None:
        self.expected = expected
        self._api_key_id = api_key_id
        self.acked = 0
        self.retry: List[Record] = []
        # (record, what Kafka said, the ledger's reason)
        self.refused: List[Tuple[Record, str, str]] = []
        self.errors: List[Tuple[Any, str]] = []
        self.done = threading.Event()
        self._lock = threading.Lock()
        if expected == 0:
            self.done.set()

    def _settled(self) -> None:
        if self.acked + len(self.retry) + len(self.refused) >= self.expected:
            self.done.set()

    def callback(self, error: Any, message: Any) -> None:
        with self._lock:
            if error is None:
                self.acked += 1
            else:
                record = record_from_report(message, self._api_key_id)
                self.outcome(record, error)
            self._settled()

    def outcome(self, record: Record, error: Any) -> None:
        """Settles ``record`` after ``error`` (a report or a produce refusal)."""
        if kafka_errors.classify(error) == kafka_errors.PERMANENT:
            self.refused.append(
                (record, kafka_errors.describe(error), kafka_errors.refusal(error))
            )
        else:
            self.retry.append(record)
        self.errors.append((error, record.topic))

    def refuse_now(self, record: Record, error: Any) -> None:
        with self._lock:
            self.outcome(record, error)
            self._settled()

    def retry_now(self, records: List[Record]) -> None:
        with self._lock:
            self.retry.extend(records)
            self._settled()


class Replayer:
    """The spool replay loop of one Kafka transport.

    Args:
        spool: this process's spool writer (its folder is replayed; retries
            are written to it).
        producer: returns the producer to send with, or ``None`` when none can
            be had now (closed transport, build failing).
        counters: where ``replayed`` and ``failed`` are counted.
        report: called with ``(KafkaError, topic)`` for each problem seen.
        delivery_timeout: the producer's ``message.timeout.ms`` in seconds.
        api_key_id: put back in the headers of records spooled again.
        report_grace: seconds past ``delivery_timeout`` to wait for a
            segment's reports before keeping its claim for a later pass.
    """

    def __init__(
        self,
        spool: SpoolWriter,
        producer: ProducerGetter,
        counters: Counters,
        report: ReportCallback,
        delivery_timeout: float,
        api_key_id: Optional[str] = None,
        report_grace: float = 10.0,
    ) -> None:
        self._report_wait = delivery_timeout + report_grace
        self._spool = spool
        self._producer = producer
        self._counters = counters
        self._report = report
        self._delivery_timeout = delivery_timeout
        self._api_key_id = api_key_id
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._backoff = 1.0
        self._progress: Optional[Callable[[int], None]] = None
        # Claims whose reports had not all come back: kept until they do.
        self._pending: List[Tuple[Any, _Batch]] = []

    def run_once(self, progress: Optional[Callable[[int], None]] = None) -> bool:
        """Replays the spool now, in this thread (``vdt-ai sync``).

        Args:
            progress: called with the number of records settled per segment.

        Returns:
            ``True`` when the spool is empty afterwards.
        """
        self._progress = progress
        try:
            return self.replay_all()
        finally:
            self._progress = None

    def has_work(self) -> bool:
        """``True`` when the spool folder holds any segment."""
        return bool(spool_files.segment_paths(self._spool.directory))

    def wake(self) -> None:
        """Asks the loop to look at the spool now (starting it if needed)."""
        if self._stop.is_set():
            return
        if self._wake.is_set() and not self._idle.is_set() and self._pid == os.getpid():
            return  # already asked (called once per spilled record)
        self._idle.clear()
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._pending = []  # a parent's claims are the parent's
            self._thread = threading.Thread(
                target=self._run, name="vdt-ai-spool-replay", daemon=True
            )
            if not _lifecycle.start_thread(self._thread):
                # At interpreter shutdown (an exit purge spilling): the spool
                # keeps the records for the next run, and the spill must not
                # fail for that.
                self._thread = None
                self._idle.set()
                return
        self._wake.set()

    def wait_idle(
        self, timeout: float, stop: Optional[Callable[[], bool]] = None
    ) -> int:
        """Waits up to ``timeout`` for the spool to be empty (or replay to stop).

        Args:
            timeout: seconds.
            stop: when given, the wait goes in slices of
                :data:`~vdt_ai.kafka.producer.FLUSH_SLICE_SECONDS` and ends
                when it returns ``True`` (a Ctrl-C held by a close).

        Returns:
            0 when idle, else 1 as a sign that spooled records remain.
        """
        if self._thread is None:
            return 0
        self._wake.set()  # once: a wake-up each slice would undo the backoff
        if stop is None:
            return 0 if self._idle.wait(timeout) else 1
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self._idle.wait(max(0.0, min(left, FLUSH_SLICE_SECONDS))):
                return 0
            if left <= FLUSH_SLICE_SECONDS or stop():
                return 1

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

    @property
    def stopped(self) -> bool:
        """``True`` after :meth:`stop`."""
        return self._stop.is_set()

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
                finished = self.replay_all()
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

    def _kafka_ready(self, shared: SharedProducer) -> bool:
        if shared.healthy:
            return True
        # In short slices: a stop() (the client closing) must not wait for the
        # probe, which holds the producer (and its threads and pipes) alive.
        deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
        while True:
            try:
                shared.producer.list_topics(timeout=_PROBE_SLICE_SECONDS)
                break
            except Exception:
                if self._stop.is_set() or time.monotonic() >= deadline:
                    return False
        # Metadata answers, but produce may still be refused (e.g. ACLs): the
        # batch outcome decides; failures go back to the spool.
        return True

    def replay_all(self) -> bool:
        """Replays every closed segment once; ``True`` when the spool is empty."""
        if self._stop.is_set():
            return False
        self._settle_pending()
        spool = self._spool
        if not spool_files.segment_paths(spool.directory) and not (
            spool.has_open_records
        ):
            return not self._pending
        shared = self._producer()
        if shared is None or not self._kafka_ready(shared):
            return False
        spool.roll()
        for path in spool_files.segment_paths(spool.directory):
            if self._stop.is_set():
                return False
            if not self._replay_segment(path):
                return False
        return (
            not spool_files.segment_paths(spool.directory)
            and not spool.has_open_records
            and not self._pending
        )

    def _replay_segment(self, path: Path) -> bool:
        claim = spool_files.claim(path)
        if claim is None:
            return True  # in use by a writer or another replayer
        records = claim.result.records
        batch = _Batch(len(records), self._api_key_id)
        shared = self._producer()
        if shared is None:
            claim.release()
            return False
        for index, record in enumerate(records):
            outcome = self._produce(shared, record, batch)
            if outcome == "stopped":
                # Reports of what was produced still come back: keep the claim.
                batch.retry_now(records[index:])
                break
            if outcome == "fatal":
                batch.retry_now(records[index:])
                break
        if not batch.done.wait(self._report_wait):
            self._pending.append((claim, batch))
            return False
        return self._settle(claim, batch)

    def _produce(self, shared: SharedProducer, record: Record, batch: _Batch) -> str:
        producer: Any = shared.producer
        while not self._stop.is_set():
            try:
                producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    headers=record.headers,
                    on_delivery=batch.callback,
                )
                return "queued"
            except BufferError:
                time.sleep(0.05)  # the live traffic fills the queue: wait our turn
            except Exception as exc:  # refused at produce(): classify it
                kind = kafka_errors.classify(exc)
                if kind == kafka_errors.FATAL:
                    shared.mark_fatal(kafka_errors.error_of(exc))
                    return "fatal"
                batch.refuse_now(record, kafka_errors.error_of(exc))
                return "refused"
        return "stopped"

    def _settle(self, claim: Any, batch: _Batch) -> bool:
        """Accounts for a segment whose reports all came back; retires it."""
        for record in batch.retry:
            try:
                written = self._spool.append(record)
            except OSError:
                written = False
            if not written:
                # No room to keep them elsewhere: keep the whole segment (its
                # acked records will be sent again: duplicates, never loss).
                claim.release()
                _log.log_once(
                    "replay-no-room",
                    "WARNING",
                    "no room in the spool to keep records that failed again; "
                    "their segment is kept",
                )
                return False
        for record, reason, refusal in batch.refused:
            self._counters.add("failed", reason=refusal)
            _log.log_once(
                f"replay-refused:{reason[:60]}",
                "ERROR",
                "Kafka refused a spooled record for good; it was dropped",
                topic=record.topic,
                reason=reason,
            )
        seen = set()
        for error, topic in batch.errors:
            key = kafka_errors.problem_key(error)
            if key not in seen:
                seen.add(key)
                self._report(error, topic)
        try:
            outcome = claim.retire()
        except (OSError, RuntimeError) as exc:  # kept in place: sent again later
            _log.log_once(
                "replay-retire", "ERROR", "cannot retire a replayed segment", error=exc
            )
            return False
        if outcome == "quarantined":
            self._counters.add("quarantined")
            _log.log_once(
                f"quarantined:{claim.path}",
                "WARNING",
                "a spool segment held damaged bytes; its intact records were "
                "sent and the segment was moved to quarantine/",
                segment=str(claim.path),
            )
        if self._progress is not None:
            self._progress(batch.expected)
        if batch.acked:
            self._counters.add("replayed", batch.acked)
        return not batch.retry

    def _settle_pending(self) -> None:
        still: List[Tuple[Any, _Batch]] = []
        for claim, batch in self._pending:
            if batch.done.is_set():
                self._settle(claim, batch)
            else:
                still.append((claim, batch))
        self._pending = still
