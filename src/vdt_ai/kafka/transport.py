"""KafkaTransport: produce without blocking, spool what Kafka does not take.

The caller's thread calls ``Producer.produce()``, which copies the record into
librdkafka's bounded queue and returns. The shared producer's background
thread serves delivery reports: an ack counts ``delivered``; a failure is
classified once (:mod:`vdt_ai.kafka.errors`): a record Kafka refuses for good
is counted ``failed``; anything else (broker down past ``delivery_timeout``,
refused credentials, purge at shutdown) writes the record to the disk spool,
from which the replayer sends it again once Kafka acks messages. A full queue
(``BufferError``) first serves the reports already waiting, on the caller's
thread, and spools the record if the queue is still full. Problems reach
``on_error`` through an SDK thread (:mod:`vdt_ai._notifier`), never from inside
librdkafka's ``poll()``."""

import functools
import itertools
import os
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .. import _forksafe, _lifecycle, _log
from .._held_signals import HeldSignals
from .._notifier import DEFAULT_INTERVAL_SECONDS, ErrorNotifier
from ..codec import Record
from ..config import Settings
from ..exceptions import ConfigError, TransportError, VDTError
from ..spool import SpoolAppendError, SpoolWriter, spool_size
from ..transport import (
    SPOOL_FULL,
    SPOOL_WRITE_ERROR,
    Counters,
    Transport,
    _count_value,
)
from . import errors as kafka_errors
from . import producer as shared_producers
from .config import CONF_TO_SETTING, producer_config
from .replay import Replayer
from .reports import record_from_report

ErrorCallback = Callable[[VDTError], None]

# After a producer could not be built at run time, sends go to the spool for
# this long before the next try (doubling up to the maximum).
_ATTACH_BACKOFF_SECONDS = 1.0
_ATTACH_BACKOFF_MAX_SECONDS = 60.0
# A producer that failed fatally sooner than this after it was built is
# rebuilt only after a backoff (see _attach).
_QUICK_FATAL_SECONDS = 30.0
# Seconds after a spill into a closed transport's spool before its segment
# is closed (see _roll_soon).
LATE_ROLL_SECONDS = 1.0
# A kind of problem is passed to on_error at most once in this many seconds.
REPORT_INTERVAL_SECONDS = DEFAULT_INTERVAL_SECONDS


class KafkaTransport(Transport):
    """Delivers records to Kafka through the process's shared producer.

    Args:
        settings: resolved settings (brokers, security, buffer, spool).
        counters: where replayed deliveries are counted (the client's).
        on_error: called with a :class:`vdt_ai.VDTError` once per kind of
            delivery problem per minute, from an SDK thread; it may call any
            public method, ``close()`` included.
        replay_in_background: start replaying a non-empty spool at once
            (``vdt-ai sync`` drives the replay itself instead).

    Raises:
        ConfigError: librdkafka refused the configuration (names the setting).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        counters: Optional[Counters] = None,
        on_error: Optional[ErrorCallback] = None,
        replay_in_background: bool = True,
    ) -> None:
        self._settings = settings
        self._conf = producer_config(settings)
        self._counters = counters if counters is not None else Counters()
        self._notifier = ErrorNotifier(on_error) if on_error is not None else None
        self._shared: Optional[shared_producers.SharedProducer] = None
        self._produce: Any = None
        self._callbacks: Dict[int, Any] = {}
        self._closed = False
        self._reported: Dict[str, float] = {}
        self._late_roll: Optional[threading.Timer] = None
        self._spool_left_open = False  # closed while others share the producer
        # Reports of purged messages, held while a purge is served and
        # spooled in one batch after it (see SharedProducer.purge_and_serve).
        self._purged: List[Tuple[Counters, Any]] = []
        self._purge_error: Any = None
        self._attach_retry_at = 0.0
        self._attach_backoff = _ATTACH_BACKOFF_SECONDS
        # The dead producer whose rebuild _attach has already timed. Weakly,
        # as are the next ones: a dead librdkafka instance keeps its threads,
        # broker connections and a queue nobody serves (kept until the next
        # fatal error, hours later perhaps); freed once retired.
        self._retry_after_fatal: (
            "Optional[weakref.ref[shared_producers.SharedProducer]]"
        ) = None
        self._fatal_backoff = _ATTACH_BACKOFF_SECONDS
        # Producers this transport replaced after they failed fatally: their
        # retirement may still purge our records, which reach our spool
        # through our purge listener (close() waits for it).
        self._replaced: "List[weakref.ref[shared_producers.SharedProducer]]" = []
        # What flush() returns: records produced less those whose delivery
        # report has been handled (acked, spooled or failed). Not
        # len(producer): librdkafka's rd_kafka_outq_len() adds the reports,
        # errors and log lines waiting to be served, and the producer's
        # other users' records. _produced changes under _lock,
        # _settled_in_batches under _purge_lock; _settled is ticked by the
        # reports, which several
        # threads may serve at once (next() on it is atomic).
        self._produced = 0
        self._settled = itertools.count()
        self._settled_in_batches = 0
        # Guards attach/close: the replay thread may attach while the client
        # closes; a producer attached after close would never be released.
        self._lock = threading.RLock()
        # Guards the purge's held reports (_purged, _settled_in_batches), and
        # is never taken by send(): the SIGTERM handler runs on the main
        # thread, possibly inside send() with _lock held, and purges; if the
        # poll thread serving that purge's reports needed _lock, it would
        # wait for the handler's end while the handler waited for the reports
        # (5 s, then every queued record lost: ~5% of SIGTERMs under load).
        self._purge_lock = threading.RLock()
        self._fork_locks = ("_lock", "_purge_lock")
        _forksafe.register(self)
        # Built now, so that a configuration librdkafka refuses is an error
        # here rather than every event silently failing later.
        self._build_first_producer()
        self.spool = SpoolWriter(
            settings.spool_dir.expanduser(), settings.spool_max_bytes
        )
        self.replayer = Replayer(
            self.spool,
            self._producer_for_replay,
            self._counters,
            self._report,
            settings.delivery_timeout,
            settings.api_key_id,
        )
        _lifecycle.install_process_hooks(settings.handle_sigterm)
        if replay_in_background and self.replayer.has_work():
            self.replayer.wake()

    def _build_first_producer(self) -> None:
        try:
            self._attach_now()
        except shared_producers.ProducerUnavailable:  # exiting: spool only
            pass
        except Exception as exc:
            text = kafka_errors.describe(exc)
            setting = next(
                (name for key, name in CONF_TO_SETTING.items() if key in text), None
            )
            raise ConfigError(
                f"the Kafka client refused the configuration"
                f"{f' (setting {setting})' if setting else ''}: {text}",
                setting=setting,
            ) from None

    # -- the hot path -----------------------------------------------------------

    def send(self, record: Record, counters: Counters) -> Optional[bool]:
        """Queues ``record`` for Kafka; spools it when the queue is full.

        Returns:
            ``False`` when the transport was closed and did not take the
            record (the client then counts it dropped), else ``None``.
        """
        # The lock makes "not closed, so produce" one step that close() waits
        # for: no record is produced after close() has begun its final purge.
        with self._lock:
            if self._closed:
                return False
            shared = self._shared
            if shared is None or shared.dead or shared.pid != _forksafe.pid:
                shared = self._attach()
                if shared is None:
                    self.spill(record, counters, reason="no producer")
                    return None
            callback = self._callbacks.get(id(counters))
            if callback is None:
                callback = self._callback_for(counters)
            try:
                self._produce(
                    record.topic,
                    record.value,
                    record.key,
                    headers=record.headers,
                    on_delivery=callback,
                )
                self._produced += 1
                return None
            except BufferError:
                # Without a poll thread (refused) no report was served:
                # last_outcome_ok says nothing, the reports are served here.
                if not shared.last_outcome_ok and shared.polled():
                    # Kafka does not answer: the queue holds unacked messages
                    # and serving would free nothing (an outage pays this on
                    # every call).
                    self.spill(record, counters, reason="queue full")
                    return None
            except Exception as exc:  # KafkaException: refused at produce() time
                self._refused(exc, record, counters, shared)
                return None
        # The queue is full. Under a steady stream it is mostly full of acked
        # messages whose reports wait for the poll thread, which confluent-kafka
        # gives the GIL once per report (a busy caller thread lets it have the
        # GIL about every 5 ms): serve the reports waiting now from this thread,
        # outside our lock (a report of another client sharing the producer
        # may take that client's lock), then try once more before spilling.
        # Bounded by what Kafka has already answered; nothing blocks.
        main = threading.current_thread() is threading.main_thread()
        held = HeldSignals() if main else None
        try:
            serve_waiting_reports(shared)
            with self._lock:
                if self._closed:
                    return False
                if self._shared is not shared or shared.dead:
                    # Failed fatally (or was replaced) meanwhile: its
                    # produce() and this callback are the old producer's.
                    self.spill(record, counters, reason="queue full")
                    return None
                try:
                    self._produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=callback,
                    )
                    self._produced += 1
                except BufferError:
                    self.spill(record, counters, reason="queue full")
                except Exception as exc:
                    self._refused(exc, record, counters, shared)
        finally:
            if held is not None:
                held.release()  # their handlers run now, with this record settled
        return None

    def send_report(self, record: Record, counters: Counters) -> None:
        """Queues one of the SDK's own reports (the delivery ledger).

        Unlike :meth:`send`, a report that cannot be delivered is not
        spooled (a report about the spool must not grow it, and a stale one
        replayed later would be counted twice): it is counted ``dropped`` or
        ``failed`` in ``counters``, which are the ledger's own.
        """

        def on_delivery(error: Any, message: Any) -> None:
            counters.add("delivered" if error is None else "failed")

        with self._lock:
            if self._closed:
                counters.add("dropped")
                return
            shared = self._shared
            if shared is None or shared.dead or shared.pid != _forksafe.pid:
                shared = self._attach()
            if shared is None:
                counters.add("dropped")
                return
            try:
                self._produce(
                    record.topic,
                    record.value,
                    record.key,
                    headers=record.headers,
                    on_delivery=on_delivery,
                )
            except BufferError:
                counters.add("dropped")
            except Exception:  # refused at produce() time
                counters.add("failed")

    def spool_bytes(self) -> int:
        """Bytes the spool folder holds now (the ledger reports it)."""
        return spool_size(self.spool.directory)

    # -- outcomes -----------------------------------------------------------------

    def _callback_for(self, counters: Counters) -> Any:
        # Runs on the delivery thread once per event: keep the ack path to a
        # counter tick and one attribute store (the caller waits on the GIL).
        tick = counters.ticker("delivered")
        failed = functools.partial(self._delivered, counters)
        shared = self._shared
        assert shared is not None
        purged = kafka_errors.purge_codes()
        hold = self._hold_purged
        settled = self._settled.__next__

        def on_delivery(error: Any, message: Any) -> None:
            if error is None:
                tick()
                shared.last_outcome_ok = True
                settled()
            elif not (
                shared.purging
                and error.code() in purged
                and hold(shared, counters, error, message)
            ):
                try:
                    failed(error, message)
                finally:
                    settled()
            # else settled once _spool_purged has written its batch

        self._callbacks[id(counters)] = on_delivery
        return on_delivery

    def _delivered(self, counters: Counters, error: Any, message: Any) -> None:
        shared = self._shared
        if error is None:
            counters.add("delivered")
            if shared is not None:
                shared.last_outcome_ok = True
            return
        if shared is not None:
            shared.last_outcome_ok = False
        self._settle_failure(
            error, record_from_report(message, self._settings.api_key_id), counters
        )

    def _hold_purged(
        self,
        shared: shared_producers.SharedProducer,
        counters: Counters,
        error: Any,
        message: Any,
    ) -> bool:
        """Keeps a purged message for :meth:`_spool_purged`; ``False`` when
        the purge's batch was already written (then it is spooled alone)."""
        with self._purge_lock:
            if not shared.purging:
                return False
            shared.last_outcome_ok = False
            self._purged.append((counters, message))
            self._purge_error = error
            return True

    def _spool_purged(self) -> None:
        """Spools the messages held during a purge, in one batch."""
        with self._purge_lock:
            batch, self._purged = self._purged, []
            error, self._purge_error = self._purge_error, None
        if not batch:
            return
        self._report(error, batch[0][1].topic(), kafka_errors.RETRIABLE)
        key_id = self._settings.api_key_id
        groups: Dict[int, Tuple[Counters, List[Record]]] = {}
        for counters, message in batch:
            group = groups.get(id(counters))
            if group is None:
                group = groups[id(counters)] = (counters, [])
            group[1].append(record_from_report(message, key_id))
        count = len(batch)
        del batch
        try:
            for counters, records in groups.values():
                self.spill_many(records, counters, reason=_reason(error))
        finally:
            with self._purge_lock:
                self._settled_in_batches += count

    def _refused(
        self,
        exc: Exception,
        record: Record,
        counters: Counters,
        shared: shared_producers.SharedProducer,
    ) -> None:
        error = kafka_errors.error_of(exc)
        if kafka_errors.classify(error) == kafka_errors.FATAL:
            shared.mark_fatal(error)
        self._settle_failure(error, record, counters)

    def _settle_failure(self, error: Any, record: Record, counters: Counters) -> None:
        kind = kafka_errors.classify(error)
        self._report(error, record.topic, kind)
        if kind == kafka_errors.PERMANENT:
            counters.add("failed", reason=kafka_errors.refusal(error))
            _log.log_once(
                f"refused:{kafka_errors.describe(error)[:60]}",
                "ERROR",
                "Kafka refused an event for good; it was dropped",
                topic=record.topic,
                reason=kafka_errors.describe(error),
            )
            return
        self.spill(record, counters, reason=_reason(error))

    def spill(self, record: Record, counters: Counters, reason: str) -> None:
        """Writes ``record`` to the spool for a later replay; counts the outcome."""
        try:
            written = self.spool.append(record)
        except OSError as exc:
            self._spill_counted(counters, reason, 0, 1, exc)
            return
        self._spill_counted(counters, reason, int(written), 1)

    def spill_many(
        self, records: Sequence[Record], counters: Counters, reason: str
    ) -> None:
        """Writes ``records`` to the spool in one batch; counts the outcomes."""
        try:
            written = self.spool.append_many(records)
        except SpoolAppendError as exc:
            self._spill_counted(counters, reason, exc.written, len(records), exc)
            return
        self._spill_counted(counters, reason, written, len(records))

    def _spill_counted(
        self,
        counters: Counters,
        reason: str,
        written: int,
        total: int,
        error: Optional[OSError] = None,
    ) -> None:
        if written:
            if self._spool_left_open:
                self._roll_soon()
            counters.add("spooled", written)
            _log.log_once(
                f"spilled:{reason}",
                "WARNING",
                "events go to the local spool until Kafka takes them",
                reason=reason,
            )
            self.replayer.wake()
        if written == total:
            return
        if error is not None:
            # The first record not written met the error; a batch's rest was
            # never tried, but nothing of it is on disk either.
            counters.add("failed", total - written, reason=SPOOL_WRITE_ERROR)
            _log.log_once(
                "spool-error",
                "ERROR",
                "cannot write to the spool; events are being lost",
                error=error.strerror or type(error).__name__,
            )
        else:
            counters.add("dropped", total - written, reason=SPOOL_FULL)
            _log.log_once(
                "spool-full",
                "WARNING",
                "spool is full (spool_max_bytes); events are dropped and counted",
                max_bytes=self.spool.max_bytes,
            )

    def _roll_soon(self) -> None:
        """After close(), late reports of a shared producer still spill here:
        close that segment shortly after, so its lock and descriptor are not
        held and another replayer can take it."""
        timer = self._late_roll
        if timer is not None and timer.is_alive():
            return
        timer = threading.Timer(LATE_ROLL_SECONDS, self._late_roll_now)
        timer.daemon = True
        self._late_roll = timer
        if not _lifecycle.start_thread(timer):  # at interpreter shutdown
            self._late_roll_now()

    def _late_roll_now(self) -> None:
        # A spill while this roll runs (its fsync is outside the writer's
        # lock) opens a new segment: it must schedule a roll of its own.
        self._late_roll = None
        try:
            self.spool.roll()
        except OSError:  # pragma: no cover - the next spill tries again
            pass

    def _report(
        self, error: Any, topic: Optional[str] = None, kind: Optional[str] = None
    ) -> None:
        """Logs a problem once per kind and passes it to ``on_error`` (once per
        kind per interval).

        Called on librdkafka's poll thread, once per failed record: a repeat
        costs one dict lookup; it only logs and enqueues, never calls back.
        """
        if kind is None:
            kind = kafka_errors.classify(error)
        key = f"{kind}:{_reason(error)}"
        now = time.monotonic()
        last = self._reported.get(key)
        if last is not None and now - last < REPORT_INTERVAL_SECONDS:
            return
        self._reported[key] = now
        exc = kafka_errors.to_exception(error, topic)
        _log.log_once(f"kafka-error:{key}", "WARNING", str(exc))
        if self._notifier is not None:
            self._notifier.notify(key, exc)

    def _on_client_error(self, error: Any) -> None:
        self._report(error)

    # -- lifecycle ----------------------------------------------------------------

    def _attach_now(self) -> shared_producers.SharedProducer:
        with self._lock:
            if self._closed:
                raise TransportError("the Kafka transport is closed")
            shared = self._shared
            if shared is not None and shared.pid == os.getpid() and not shared.dead:
                return shared
            if (
                shared is not None
                and shared.died_at is not None
                and shared.pid == os.getpid()
            ):
                self._wait_after_fatal(shared)
            if shared is not None and shared.pid != os.getpid():
                # Forked: the parent's records are the parent's to settle.
                self._produced = self._settled_in_batches = 0
                self._settled = itertools.count()
                self._replaced = []
            dead = shared
            shared = shared_producers.acquire(
                self._conf, self._settings.shutdown_timeout
            )
            if dead is not None and dead.pid == os.getpid():
                dead.remove_error_listener(self._on_client_error)
                shared_producers.leave_dead(dead)
                self._replaced = [
                    ref for ref in self._replaced if not self._forget_retired(ref())
                ]
                self._replaced.append(weakref.ref(dead))
            shared.add_error_listener(self._on_client_error)
            shared.add_purge_listener(self._spool_purged)
            self._callbacks = {}
            self._produce = shared.producer.produce
            self._shared = shared
        _lifecycle.install_process_hooks(self._settings.handle_sigterm)
        return shared

    def _forget_retired(self, dead: Optional[shared_producers.SharedProducer]) -> bool:
        """Removes our purge listener from ``dead`` once its retirement has
        ended; ``True`` then (or when it is gone)."""
        if dead is None:
            return True
        if not dead.retired.is_set():
            return False
        dead.remove_purge_listener(self._spool_purged)
        return True

    def _wait_after_fatal(self, dead: shared_producers.SharedProducer) -> None:
        """Rebuilds at once after a producer that worked a while, with backoff
        when they keep failing fatally at once (a key refused an idempotent
        producer id: every new one fails within a round trip, and rebuilding
        for every event would churn librdkafka instances). Under the lock;
        the records meanwhile go to the spool.

        Raises:
            ProducerUnavailable: not yet.
        """
        now = time.monotonic()
        timed = self._retry_after_fatal
        if (timed is None or timed() is not dead) and dead.died_at is not None:
            self._retry_after_fatal = weakref.ref(dead)
            if dead.died_at - dead.built_at < _QUICK_FATAL_SECONDS:
                self._attach_retry_at = now + self._fatal_backoff
                self._fatal_backoff = min(
                    _ATTACH_BACKOFF_MAX_SECONDS, self._fatal_backoff * 2
                )
            else:
                self._fatal_backoff = _ATTACH_BACKOFF_SECONDS
        if now < self._attach_retry_at:
            raise shared_producers.ProducerUnavailable("rebuilt after a backoff")

    def _attach(self) -> Optional[shared_producers.SharedProducer]:
        """The producer to send with, or ``None`` (closed, or cannot be built
        now: retried with backoff, the records meanwhile go to the spool)."""
        if self._closed or time.monotonic() < self._attach_retry_at:
            return None
        try:
            shared = self._attach_now()
        except shared_producers.ProducerUnavailable:
            return None
        except TransportError:
            return None
        except Exception as exc:
            self._attach_retry_at = time.monotonic() + self._attach_backoff
            self._attach_backoff = min(
                _ATTACH_BACKOFF_MAX_SECONDS, self._attach_backoff * 2
            )
            _log.log_once(
                "producer-build",
                "ERROR",
                "cannot build the Kafka producer; events are spooled and it is "
                "retried with backoff",
                error=kafka_errors.describe(exc),
            )
            return None
        self._attach_backoff = _ATTACH_BACKOFF_SECONDS
        return shared

    def _producer_for_replay(self) -> Optional[shared_producers.SharedProducer]:
        shared = self._shared
        if shared is None or shared.dead or shared.pid != _forksafe.pid:
            return self._attach()
        return shared

    @property
    def shared(self) -> shared_producers.SharedProducer:
        """This process's producer (created on first use).

        Raises:
            TransportError: the transport is closed or no producer can be had.
        """
        shared = self._producer_for_replay()
        if shared is None:
            raise TransportError("no Kafka producer is available")
        return shared

    @property
    def counters(self) -> Counters:
        """Where replayed and failed records are counted."""
        return self._counters

    @property
    def closed(self) -> bool:
        """``True`` after :meth:`close`."""
        return self._closed

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits for queued records and the spool replay, up to ``timeout``.

        Returns:
            This transport's records whose delivery report has not been
            handled yet (neither acked nor spooled nor failed), plus 1 while
            the spool replay has not finished (spooled records remain).
        """
        wait = self._settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        pending = 0
        shared = self._shared
        # On the main thread the reports are served here: closing() holds the
        # signal handlers meanwhile (a KeyboardInterrupt inside a report lost
        # its record; the SDK's SIGTERM handler flushed the producer from
        # inside this flush, and the process died with every queued record
        # lost). The wait goes in slices and ends at a held SIGINT or SIGTERM;
        # the handlers run as closing() ends.
        with _lifecycle.closing():
            if shared is not None and shared.pid == os.getpid():
                shared_producers.flush_until(shared, deadline, _signalled)
                if _signalled():
                    deadline = time.monotonic()
                pending = self._records_in_flight()
            pending += self.replayer.wait_idle(
                max(0.0, deadline - time.monotonic()), _signalled
            )
            try:
                self.spool.flush()
            except OSError:  # pragma: no cover
                pass
        return pending

    def _records_in_flight(self) -> int:
        with self._lock:  # no send() between its produce() and its count
            return max(
                0,
                self._produced - self._settled_in_batches - _count_value(self._settled),
            )

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes up to ``timeout``; what is not acked by then is spooled.

        The producer is shared: when other clients still use it, only this
        client's wait ends; records in flight stay owned by the producer
        registry, which spools them at exit if they are not acked before.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            shared = self._shared
            replaced, self._replaced = self._replaced, []
        wait = self._settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with _lifecycle.closing():
            self.replayer.stop(join_timeout=max(0.0, min(0.5, wait / 4)))
            last = False
            # A retirement still under way after the wait for it (a slow
            # purge, or its thread waiting for a lock this one holds): its
            # reports of our records may still come.
            late = False
            if shared is not None and shared.pid == os.getpid():
                shared.remove_error_listener(self._on_client_error)
                last = shared_producers.release(
                    shared, max(0.0, deadline - time.monotonic())
                )
                if not last:
                    shared_producers.flush_until(shared, deadline)
                elif shared.dead and not shared.retired.is_set():
                    late = True
                else:
                    shared.remove_purge_listener(self._spool_purged)
            for ref in replaced:
                dead = ref()  # gone: its retirement has ended
                if dead is not None and dead.pid == os.getpid():
                    # Its purge spools our records through our listener: the
                    # spool must not be closed before (they were dropped).
                    if shared_producers.wait_retired(
                        dead, max(0.0, deadline - time.monotonic())
                    ):
                        dead.remove_purge_listener(self._spool_purged)
                    else:
                        late = True
            try:
                if (last or shared is None) and not late:
                    self.spool.close()  # no report of ours can come back now
                else:
                    # Late reports (of a producer others still use, or of a
                    # retirement not ended in time) spill here: our purge
                    # listener stays (it took them, and they were lost).
                    self._spool_left_open = True
                    self.spool.roll()
                    self.spool.flush()
            except OSError:  # pragma: no cover
                pass
        if self._notifier is not None:
            self._notifier.wait_idle(max(0.0, min(0.5, deadline - time.monotonic())))

    def __repr__(self) -> str:
        return f"KafkaTransport(bootstrap_servers={self._settings.bootstrap_servers!r})"


def _signalled() -> bool:
    # flush() ends at a held SIGTERM too: the exit procedure then runs.
    return _lifecycle.term_pending() or _lifecycle.interrupted()


def serve_waiting_reports(shared: shared_producers.SharedProducer) -> None:
    """Serves the delivery reports librdkafka holds ready, on this thread."""
    shared.serve(0, flush=False)


def _reason(error: Any) -> str:
    try:
        return str(error.name())
    except Exception:
        return type(error).__name__
