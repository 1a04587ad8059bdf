"""One confluent_kafka producer per process per cluster configuration.

Every client (and transport) in a process that points at the same cluster with
the same settings shares one :class:`SharedProducer`: one librdkafka instance,
one set of broker connections, one background thread that serves delivery
reports. It never crosses ``fork()``: a child gets a fresh registry and builds
its own producer when it first sends. The parent's producer object is kept
referenced in the child, never destroyed there, because destroying a librdkafka
handle whose threads did not survive the fork hangs.

**Exit ownership.** The registry, not the client objects (which users drop
without ``close()``), owns the records queued in its producers: at exit (and
at the end of a multiprocessing child, and on SIGTERM) :func:`shutdown_all`
flushes every producer of this process within one deadline and purges what is
left, so that the delivery callbacks write it to the spool.

**Fatal errors.** A producer that reports a fatal error (``error.fatal()``,
possible with idempotence) is unusable. confluent-kafka does not pass a fatal
error to ``error_cb``: it raises it as a ``KafkaException`` out of whichever
``poll()`` or ``flush()`` serves it, on any thread, so every call that serves
reports goes through :meth:`SharedProducer.serve`. The producer is marked dead,
taken out of the registry at once (the next send builds a new one) and retired
on a thread of its own: its records are purged, so their callbacks spool them
for the replay.
"""

import logging
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _forksafe, _lifecycle, _log
from . import errors as kafka_errors

ErrorListener = Callable[[Any], None]
PurgeListener = Callable[[], None]

_lock = threading.RLock()  # re-entrant: see _lifecycle (SIGTERM)
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
_registry: Dict[Tuple[Tuple[str, str], ...], "SharedProducer"] = {}
_inherited: List[Any] = []  # producers of a parent process: never destroyed here

POLL_INTERVAL = 0.1
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
# Serving purged reports (each one spools its record) may run past a deadline;
# it stops only when no report came for this long (then none ever will).
PURGE_STALL_SECONDS = 5.0
# The last user of a producer retired after a fatal error waits this long
# (at least) for the retirement: a purge, then up to 1.5 s of re-purges.
RETIRE_WAIT_SECONDS = PURGE_STALL_SECONDS + 2.0
# The poll thread finishes the callback it is in (which may be writing a
# record to the spool) before a spool is closed behind it.
_POLL_JOIN_SECONDS = 10.0
_state = {"shut_down_pid": 0}


class ProducerUnavailable(Exception):
    """No producer can be handed out now (process exiting, or build failed)."""


class _RdkafkaLogHandler(logging.Handler):
    """Routes librdkafka's own log lines to the SDK's redacted, quiet logging."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover
            return
        if record.levelno >= logging.WARNING:
            # librdkafka repeats connection errors on every retry: once a kind.
            kind = message.split(":", 1)[0][:60]
            _log.log_once(f"rdkafka:{kind}", "WARNING", f"librdkafka: {message}")
        else:
            _log.debug(f"librdkafka: {message}")


def _rdkafka_logger() -> logging.Logger:
    logger = logging.getLogger("vdt_ai.librdkafka")
    if not logger.handlers:
        logger.addHandler(_RdkafkaLogHandler())
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    return logger


class SharedProducer:
    """A producer, its poll thread, and what it has seen of the cluster's health.

    Attributes:
        last_outcome_ok: ``True`` when the last delivery report was an ack,
            ``False`` after a failed report or a client-level error.
        dead: ``True`` once a fatal error made the producer unusable.
        finalizing: ``True`` once its last user began the final purge: a
            record produced after that may never be served by the poll thread.
        purging: ``True`` while :meth:`purge_and_serve` serves the reports of
            purged messages; delivery callbacks may then hold them back and
            spool them in one batch when the purge listeners are called.
    """

    def __init__(self, conf: Dict[str, Any], shutdown_timeout: float) -> None:
        from confluent_kafka import Producer

        self.pid = os.getpid()
        self.built_at = time.monotonic()
        self.died_at: Optional[float] = None  # when a fatal error took it out
        self.retired = threading.Event()  # set when _retire() has ended
        self.last_outcome_ok = False
        self.dead = False
        self.finalizing = False
        self.purging = False
        self.shutdown_timeout = shutdown_timeout
        self._listeners: List[ErrorListener] = []
        self._purge_listeners: List[PurgeListener] = []
        self._users = 0
        self._stop = threading.Event()
        self._conf_key = _key(conf)
        full = dict(conf)
        # Weakly: confluent_kafka's Producer is not tracked by the cycle
        # collector, so a Producer -> bound method -> self -> Producer cycle
        # would never be freed (a leak of librdkafka's threads and pipes per
        # closed producer).
        full["error_cb"] = _weak_error_callback(weakref.ref(self))
        full["logger"] = _rdkafka_logger()
        self.producer = Producer(full)
        self._thread: Optional[threading.Thread] = None
        # Refused at interpreter shutdown (a client built inside an atexit
        # handler: its reports are served by its flush and close) or past a
        # thread limit: polled() tries again when the queue is full.
        self.polled()

    def polled(self) -> bool:
        """``True`` when the poll thread serves the reports; one that could
        not start before (a thread limit, interpreter shutdown) is started
        now if the interpreter allows it."""
        if self._thread is None and not self._stop.is_set():
            with _lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._poll_loop, name="vdt-ai-kafka-poll", daemon=True
                    )
                    if _lifecycle.start_thread(thread):
                        self._thread = thread
        return self._thread is not None

    # -- health ---------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """``True`` when the last delivery outcome was an ack."""
        return self.last_outcome_ok and not self.dead

    def add_error_listener(self, listener: ErrorListener) -> None:
        """Calls ``listener(KafkaError)`` for each client-level error.

        Listeners run on the poll thread inside ``poll()``: they must only
        record or enqueue (see :mod:`vdt_ai._notifier`), never call the producer.
        """
        self._listeners.append(listener)

    def remove_error_listener(self, listener: ErrorListener) -> None:
        """Stops calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_purge_listener(self, listener: PurgeListener) -> None:
        """Calls ``listener()`` after each purge, once its reports are served."""
        self._purge_listeners.append(listener)

    def remove_purge_listener(self, listener: PurgeListener) -> None:
        """Stops calling ``listener``."""
        if listener in self._purge_listeners:
            self._purge_listeners.remove(listener)

    def _on_error(self, error: Any) -> None:
        self.last_outcome_ok = False
        if kafka_errors.classify(error) == kafka_errors.FATAL:
            self.mark_fatal(error)
        for listener in list(self._listeners):
            try:
                listener(error)
            except Exception:  # pragma: no cover - a listener must not stop polling
                pass

    def mark_fatal(self, error: Any) -> None:
        """Takes this producer out of service and retires it off this thread."""
        with _lock:
            if self.dead:
                return
            self.dead = True
            self.died_at = time.monotonic()
            if _registry.get(self._conf_key) is self:
                del _registry[self._conf_key]
            _retiring.append(self)
        _log.log_once(
            f"fatal:{kafka_errors.describe(error)[:80]}",
            "ERROR",
            "the Kafka producer failed fatally; a new one is built and its "
            "records are spooled and replayed",
            error=kafka_errors.describe(error),
        )
        retire = threading.Thread(
            target=self._retire, name="vdt-ai-kafka-retire", daemon=True
        )
        if not _lifecycle.start_thread(retire):
            # At interpreter shutdown (the exit flush serving the fatal
            # error): retire it on this thread.
            self._retire()

    def _retire(self) -> None:
        try:
            self.finalizing = True
            self.purge_and_serve()
            self.stop()
            # A send that checked ``dead`` just before it was set may still
            # have produced here: purge again until the queue stays empty.
            # Until then the producer stays listed, so the exit flush drains
            # it too.
            for _ in range(3):
                time.sleep(0.5)
                if len(self) == 0:
                    break
                self.purge_and_serve()
            # Unlisted even if the queue is not empty: its broker threads go
            # on queueing errors and log lines (len() counts them) that no
            # poll thread serves now, so waiting for an empty queue kept every
            # retired producer, threads and connections, for the life of the
            # process. Any record left after 1.5 s of purges is not ours to
            # wait for: no send produces to a dead producer.
            with _lock:
                if self in _retiring:
                    _retiring.remove(self)
        finally:
            self.retired.set()

    # -- background -------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self.serve(POLL_INTERVAL, flush=False)

    def serve(self, timeout: float, flush: bool = True) -> None:
        """Serves delivery reports (``flush()``, or ``poll()``) up to ``timeout``.

        Never raises: a fatal error that confluent-kafka raises out of the call
        (instead of passing it to ``error_cb``) is handled as the error
        callback would (the producer is retired, listeners are told); an
        exception out of a callback is logged. The reports not served yet stay
        queued for the next call.
        """
        try:
            if flush:
                self.producer.flush(max(0.0, timeout))
            else:
                self.producer.poll(max(0.0, timeout))
        except Exception as exc:
            error = kafka_errors.error_of(exc)
            if hasattr(error, "code"):
                self._on_error(error)
            else:  # pragma: no cover - our callbacks catch their own errors
                _log.log_once(
                    "poll-error", "ERROR", "delivery poll failed", error=repr(exc)
                )

    def flush(self, timeout: float) -> int:
        """Serves delivery reports until the queue is empty or ``timeout`` passes.

        Returns:
            Messages still queued or in flight.
        """
        self.serve(timeout)
        return len(self.producer)

    def purge_and_serve(self) -> int:
        """Fails every queued and in-flight message, then serves their reports.

        Their delivery callbacks see ``_PURGE_QUEUE``/``_PURGE_INFLIGHT`` and
        spool them: used when a deadline passes with messages not yet acked.
        Every report is served, however long that takes (an unserved report
        is a lost record: a busy host thread slows this down, it must not cut
        it short); it gives up only when no report at all was served for
        :data:`PURGE_STALL_SECONDS`.

        While the reports are served, :attr:`purging` is set: a transport's
        callback then only holds the message back, and the purge listeners
        spool all of them at the end in one batch (per record, serving and
        spooling one by one cost ~30 us; a close with 100,000 queued would
        overrun its deadline by seconds).

        Returns:
            Reports still not served (0 unless librdkafka withheld some).
        """
        self.purging = True
        try:
            try:
                self.producer.purge(in_queue=True, in_flight=True, blocking=True)
            except Exception as exc:  # pragma: no cover
                _log.log_once("purge-error", "ERROR", "purge failed", error=repr(exc))
            left = len(self.producer)
            last_progress = time.monotonic()
            while left > 0 and time.monotonic() - last_progress < PURGE_STALL_SECONDS:
                self.serve(0.1)
                now_left = len(self.producer)
                if now_left < left:
                    last_progress = time.monotonic()
                left = now_left
        finally:
            # Callbacks read the flag under their listener's lock, which the
            # listener takes too: a report served after this line is spooled
            # on its own, one served before it is in the listener's batch.
            self.purging = False
            for listener in list(self._purge_listeners):
                try:
                    listener()
                except Exception as exc:  # pragma: no cover - spools its own errors
                    _log.log_once(
                        "purge-listener",
                        "ERROR",
                        "purge listener failed",
                        error=repr(exc),
                    )
        return left

    def stop(self) -> None:
        """Stops the poll thread (reports are then served only by flush)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join(timeout=_POLL_JOIN_SECONDS)

    def __len__(self) -> int:
        return len(self.producer)


_retiring: List[SharedProducer] = []


def _weak_error_callback(ref: "weakref.ref[SharedProducer]") -> Callable[[Any], None]:
    def on_error(error: Any) -> None:
        shared = ref()
        if shared is not None:
            shared._on_error(error)

    return on_error


def _key(conf: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in conf.items()))


def acquire(
    conf: Dict[str, Any], shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
) -> SharedProducer:
    """The process's producer for ``conf``, created on first use.

    Raises:
        ProducerUnavailable: the process is past its exit flush.
        KafkaException: librdkafka refused the configuration.
    """
    key = _key(conf)
    pid = os.getpid()
    with _lock:
        if _state["shut_down_pid"] == pid:
            raise ProducerUnavailable("the process is exiting")
        shared = _registry.get(key)
        if shared is None or shared.pid != pid or shared.dead or shared.finalizing:
            shared = SharedProducer(conf, shutdown_timeout)
            _registry[key] = shared
        shared._users += 1
        shared.shutdown_timeout = max(shared.shutdown_timeout, shutdown_timeout)
        return shared


def release(shared: SharedProducer, timeout: float) -> bool:
    """Drops one user of ``shared``; the last one shuts it down.

    Queued messages are flushed up to ``timeout`` seconds, then purged so that
    their callbacks spool them. The producer stays in the registry until that
    is done, so an exit flush or SIGTERM arriving meanwhile still sees it.

    Returns:
        ``True`` when this was the last user and the producer was shut down.
    """
    with _lock:
        shared._users -= 1
        if shared._users > 0:
            return False
        shared.finalizing = True  # acquire() builds a new one from now on
    wait_retired(shared, timeout)
    drained = False
    try:
        if shared.pid == os.getpid() and not shared.dead:
            _drain([shared], timeout)
        drained = True
    finally:
        with _lock:
            if _registry.get(shared._conf_key) is shared:
                del _registry[shared._conf_key]
            if not drained and shared not in _retiring:
                # An exception cut the drain short (a signal handler's, run
                # inside a delivery callback): unlisted, the records still
                # queued were lost with the producer; the exit procedure
                # drains what is left.
                _retiring.append(shared)
    return True


def wait_retired(shared: SharedProducer, timeout: float) -> bool:
    """Waits for the retirement of ``shared`` if it failed fatally in this
    process (at least :data:`RETIRE_WAIT_SECONDS`).

    Its retirement (on a thread of its own) purges it: the reports it holds
    back reach the spool through its users' purge listeners, which must still
    be there (a client closed at once after a fatal error lost every record
    it had queued).

    Returns:
        ``False`` when the retirement had not ended in time.
    """
    if not shared.dead or shared.pid != os.getpid():
        return True
    return shared.retired.wait(max(timeout, RETIRE_WAIT_SECONDS))


def leave_dead(shared: SharedProducer) -> None:
    """Drops one user of ``shared``, which failed fatally and which that user
    has replaced: it retires on its own (see :func:`wait_retired`)."""
    with _lock:
        shared._users -= 1


def _drain(producers: List[SharedProducer], timeout: float) -> None:
    """Flushes ``producers`` within ``timeout``; purges and spools what is left.

    A share of the deadline, in proportion to what is queued, is kept for the
    purge: serving its reports writes each record to the spool.
    """
    deadline = time.monotonic() + timeout
    for shared in producers:
        queued = len(shared)
        reserve = min(timeout, 0.1 + queued * _SPOOL_SECONDS_PER_RECORD)
        flush_until(shared, deadline - reserve)
    for shared in producers:
        shared.finalizing = True
        if len(shared) > 0:
            shared.purge_and_serve()
    for shared in producers:
        shared.stop()


# flush_until() waits in slices this long: a held signal waits at most one.
FLUSH_SLICE_SECONDS = 0.2


def flush_until(
    shared: SharedProducer,
    deadline: float,
    stop: Callable[[], bool] = _lifecycle.interrupted,
) -> int:
    """Serves reports until none is pending, ``deadline`` or ``stop()``.

    In slices of :data:`FLUSH_SLICE_SECONDS`: a Ctrl-C held by
    ``_lifecycle.closing()`` ends the wait for acks within one slice (what is
    still queued is then purged into the spool, and the interrupt comes out
    after).

    Returns:
        Messages still queued or in flight.
    """
    while True:
        left = deadline - time.monotonic()
        pending = shared.flush(max(0.0, min(left, FLUSH_SLICE_SECONDS)))
        if not pending or left <= FLUSH_SLICE_SECONDS or stop():
            return pending


# What spooling one purged record costs (rebuild headers, frame, write; about
# 30k records a second on 2 cores). When more is queued than the deadline
# leaves time to spool, the purge runs past it: an unwritten record is lost.
_SPOOL_SECONDS_PER_RECORD = 30e-6


def shutdown_all(timeout: Optional[float] = None) -> None:
    """Flushes and stops every producer of this process within one deadline.

    Runs at exit (atexit, multiprocessing finalizer, SIGTERM), whether or not
    any client object is still alive; what is not acked by the deadline is
    purged, and the delivery callbacks write it to the spool. Later sends in
    this process go straight to the spool.
    """
    pid = os.getpid()
    with _lock:
        producers = [
            p
            for p in list(_registry.values()) + list(_retiring)
            if p.pid == pid and (not p._stop.is_set() or len(p) > 0)
        ]
        _state["shut_down_pid"] = pid
        _registry.clear()
    if not producers:
        return
    if timeout is None:
        timeout = max(p.shutdown_timeout for p in producers)
    _drain(producers, timeout)


def _forget_after_fork() -> None:
    # The parent's producers belong to the parent: keep them alive (destroying
    # them here would wait on threads that do not exist) and start afresh.
    _inherited.extend(_registry.values())
    _inherited.extend(_retiring)
    _registry.clear()
    del _retiring[:]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)

# After the live clients are closed, whatever producers remain (their clients
# were dropped without close()) are flushed and their leftovers spooled.
_lifecycle.add_exit_hook(shutdown_all)
