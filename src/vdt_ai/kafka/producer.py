"""One confluent_kafka producer per process per cluster configuration.

Every client (and transport) in a process that points at the same cluster with
the same settings shares one :class:`SharedProducer`: one librdkafka instance,
one set of broker connections, one background thread that serves delivery
reports. It is created on first use and never crosses ``fork()``: a child gets
a fresh registry and builds its own producer when it first sends. The parent's
producer object is kept referenced in the child, never destroyed there, because
destroying a librdkafka handle whose threads did not survive the fork hangs.
"""

import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

from .. import _forksafe, _log

ErrorListener = Callable[[Any], None]

_lock = threading.RLock()  # re-entrant: see _lifecycle (SIGTERM)
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
_registry: Dict[Tuple[Tuple[str, str], ...], "SharedProducer"] = {}
_inherited: List[Any] = []  # producers of a parent process: never destroyed here

POLL_INTERVAL = 0.1


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
    """

    def __init__(self, conf: Dict[str, Any]) -> None:
        from confluent_kafka import Producer

        self.pid = os.getpid()
        self.last_outcome_ok = False
        self._listeners: List[ErrorListener] = []
        self._users = 0
        self._stop = threading.Event()
        full = dict(conf)
        full["error_cb"] = self._on_error
        full["logger"] = _rdkafka_logger()
        self.producer = Producer(full)
        self._thread = threading.Thread(
            target=self._poll_loop, name="vdt-ai-kafka-poll", daemon=True
        )
        self._thread.start()

    # -- health ---------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """``True`` when the last delivery outcome was an ack."""
        return self.last_outcome_ok

    def add_error_listener(self, listener: ErrorListener) -> None:
        """Calls ``listener(KafkaError)`` for each client-level error."""
        self._listeners.append(listener)

    def remove_error_listener(self, listener: ErrorListener) -> None:
        """Stops calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_error(self, error: Any) -> None:
        self.last_outcome_ok = False
        for listener in list(self._listeners):
            try:
                listener(error)
            except Exception:  # pragma: no cover - a listener must not stop polling
                pass

    # -- background -------------------------------------------------------------

    def _poll_loop(self) -> None:
        producer = self.producer
        while not self._stop.is_set():
            try:
                producer.poll(POLL_INTERVAL)
            except Exception as exc:  # pragma: no cover - a callback raised
                _log.log_once(
                    "poll-error", "ERROR", "delivery poll failed", error=repr(exc)
                )

    def flush(self, timeout: float) -> int:
        """Serves delivery reports until the queue is empty or ``timeout`` passes.

        Returns:
            Messages still queued or in flight.
        """
        return int(self.producer.flush(max(0.0, timeout)))

    def purge_and_serve(self, timeout: float = 1.0) -> None:
        """Fails every queued and in-flight message, then serves their reports.

        Their delivery callbacks see ``_PURGE_QUEUE``/``_PURGE_INFLIGHT`` and
        spool them: used when a deadline passes with messages not yet acked.
        """
        try:
            self.producer.purge(in_queue=True, in_flight=True, blocking=True)
        except Exception as exc:  # pragma: no cover
            _log.log_once("purge-error", "ERROR", "purge failed", error=repr(exc))
        self.producer.flush(max(0.0, timeout))

    def stop(self) -> None:
        """Stops the poll thread (reports are then served only by flush)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)

    def __len__(self) -> int:
        return len(self.producer)


def _key(conf: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in conf.items()))


def acquire(conf: Dict[str, Any]) -> SharedProducer:
    """The process's producer for ``conf``, created on first use."""
    key = _key(conf)
    with _lock:
        shared = _registry.get(key)
        if shared is None or shared.pid != os.getpid():
            shared = SharedProducer(conf)
            _registry[key] = shared
        shared._users += 1
        return shared


def release(shared: SharedProducer, timeout: float) -> bool:
    """Drops one user of ``shared``; the last one stops and forgets it.

    Queued messages are flushed up to ``timeout`` seconds, then purged so that
    their callbacks spool them.

    Returns:
        ``True`` when this was the last user and the producer was shut down.
    """
    with _lock:
        shared._users -= 1
        last = shared._users <= 0
        if last:
            for key, value in list(_registry.items()):
                if value is shared:
                    del _registry[key]
    if not last:
        return False
    if shared.pid == os.getpid():
        deadline = time.monotonic() + timeout
        if shared.flush(timeout) > 0:
            shared.purge_and_serve(max(0.5, deadline - time.monotonic()))
        shared.stop()
    return True


def _forget_after_fork() -> None:
    # The parent's producers belong to the parent: keep them alive (destroying
    # them here would wait on threads that do not exist) and start afresh.
    _inherited.extend(_registry.values())
    _registry.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
