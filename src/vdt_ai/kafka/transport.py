"""KafkaTransport: produce without blocking, spool what Kafka does not take.

The caller's thread only calls ``Producer.produce()``, which copies the record
into librdkafka's bounded queue and returns. The shared producer's background
thread serves delivery reports: an ack counts ``delivered``; a failure (broker
down past ``delivery_timeout``, refused credentials, purge at shutdown) writes
the record to the disk spool, from which the replayer sends it again once
Kafka acks messages. A full queue (``BufferError``) spools at once.
"""

import functools
import os
import threading
import time
from typing import Any, Callable, Dict, Optional

from .. import _forksafe, _lifecycle, _log
from ..codec import Record, headers_for_value
from ..config import Settings
from ..exceptions import (
    AuthenticationError,
    AuthorizationError,
    SerializationError,
    TransportError,
    VDTError,
)
from ..spool import SpoolWriter
from ..transport import Counters, Transport
from . import producer as shared_producers
from .config import PERMANENT_ERROR_NAMES, producer_config
from .replay import Replayer

ErrorCallback = Callable[[VDTError], None]


class KafkaTransport(Transport):
    """Delivers records to Kafka through the process's shared producer.

    Args:
        settings: resolved settings (brokers, security, buffer, spool).
        counters: where replayed deliveries are counted (the client's).
        on_error: called with a :class:`vdt_ai.VDTError` for each kind of
            delivery problem, from a background thread; it must not block.
        replay_in_background: start replaying a non-empty spool at once
            (``vdt-ai sync`` drives the replay itself instead).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        counters: Optional[Counters] = None,
        on_error: Optional[ErrorCallback] = None,
        replay_in_background: bool = True,
    ) -> None:
        from confluent_kafka import KafkaError

        self._settings = settings
        self._conf = producer_config(settings)
        self._counters = counters if counters is not None else Counters()
        self._on_error = on_error
        self.spool = SpoolWriter(settings.spool_dir, settings.spool_max_bytes)
        self._permanent = {
            getattr(KafkaError, name)
            for name in PERMANENT_ERROR_NAMES
            if hasattr(KafkaError, name)
        }
        self._auth_codes = {
            KafkaError._AUTHENTICATION,
            KafkaError.SASL_AUTHENTICATION_FAILED,
        }
        self._acl_codes = {
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.CLUSTER_AUTHORIZATION_FAILED,
            KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        }
        self._shared: Optional[shared_producers.SharedProducer] = None
        self._produce: Any = None
        self._callbacks: Dict[int, Any] = {}
        self._closed = False
        # Guards attach/close: the replay thread may attach while the client
        # closes; a producer attached after close would never be released.
        self._lock = threading.RLock()
        _forksafe.register(self)
        self.replayer = Replayer(self)
        _lifecycle.install_process_hooks(settings.handle_sigterm)
        if replay_in_background and self.replayer.has_work():
            self.replayer.wake()

    # -- the hot path -----------------------------------------------------------

    def send(self, record: Record, counters: Counters) -> None:
        """Queues ``record`` for Kafka; spools it when the queue is full."""
        shared = self._shared
        if shared is None or shared.pid != os.getpid():
            shared = self._attach()
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
        except BufferError:
            self.spill(record, counters, reason="queue full")
        except Exception as exc:  # KafkaException: fatal producer, bad topic...
            self.spill(record, counters, reason=type(exc).__name__)

    # -- outcomes -----------------------------------------------------------------

    def _callback_for(self, counters: Counters) -> Any:
        # Runs on the delivery thread once per event: keep the ack path to a
        # counter tick and one attribute store (the caller waits on the GIL).
        tick = counters.ticker("delivered")
        failed = functools.partial(self._delivered, counters)
        shared = self._shared

        def on_delivery(error: Any, message: Any) -> None:
            if error is None:
                tick()
                shared.last_outcome_ok = True  # type: ignore[union-attr]
            else:
                failed(error, message)

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
        record = self.record_from_report(message)
        code = error.code()
        if code in self._permanent:
            counters.add("failed")
            self._report(error, record.topic)
            return
        self._report(error, record.topic)
        self.spill(record, counters, reason=error.name())

    def record_from_report(self, message: Any) -> Record:
        """Rebuilds the record of a delivery report (reports carry no headers)."""
        value = message.value()
        try:
            headers = headers_for_value(value, self._settings.api_key_id)
        except SerializationError:  # pragma: no cover - not produced by us
            headers = list(message.headers() or [])
        return Record(message.topic(), message.key() or b"", value, headers)

    def spill(self, record: Record, counters: Counters, reason: str) -> None:
        """Writes ``record`` to the spool for a later replay; counts the outcome."""
        try:
            written = self.spool.append(record)
        except OSError as exc:
            counters.add("failed")
            _log.log_once(
                "spool-error",
                "ERROR",
                "cannot write to the spool; events are being lost",
                error=exc.strerror or type(exc).__name__,
            )
            return
        if written:
            counters.add("spooled")
            _log.log_once(
                f"spilled:{reason}",
                "WARNING",
                "events go to the local spool until Kafka takes them",
                reason=reason,
            )
            self.replayer.wake()
        else:
            counters.add("dropped")
            _log.log_once(
                "spool-full",
                "WARNING",
                "spool is full (spool_max_bytes); events are dropped and counted",
                max_bytes=self.spool.max_bytes,
            )

    def _report(self, error: Any, topic: Optional[str] = None) -> None:
        code = error.code()
        if code in self._auth_codes:
            exc: VDTError = AuthenticationError(
                f"Kafka refused the API key: {error.str()}"
            )
        elif code in self._acl_codes:
            exc = AuthorizationError(
                f"not authorized to write to topic {topic}: {error.str()}", topic=topic
            )
        else:
            exc = TransportError(
                f"Kafka delivery problem: {error.name()}: {error.str()}"
            )
        _log.log_once(f"kafka-error:{error.name()}", "WARNING", str(exc))
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:  # the user's callback must not stop delivery
                _log.log_once("on-error-raised", "ERROR", "on_error callback raised")

    def _on_client_error(self, error: Any) -> None:
        self._report(error)

    # -- lifecycle ----------------------------------------------------------------

    def _attach(self) -> shared_producers.SharedProducer:
        with self._lock:
            if self._closed:
                raise TransportError("the Kafka transport is closed")
            shared = self._shared
            if shared is not None and shared.pid == os.getpid():
                return shared
            shared = shared_producers.acquire(self._conf)
            shared.add_error_listener(self._on_client_error)
            self._callbacks = {}
            self._produce = shared.producer.produce
            self._shared = shared
        _lifecycle.install_process_hooks(self._settings.handle_sigterm)
        return shared

    @property
    def shared(self) -> shared_producers.SharedProducer:
        """This process's producer (created on first use).

        Raises:
            TransportError: the transport is closed.
        """
        shared = self._shared
        if shared is None or shared.pid != os.getpid():
            shared = self._attach()
        return shared

    @property
    def closed(self) -> bool:
        """``True`` after :meth:`close`."""
        return self._closed

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits for queued records and the spool replay, up to ``timeout``.

        Returns:
            Records still queued in memory or waiting in the spool.
        """
        wait = self._settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        pending = 0
        shared = self._shared
        if shared is not None and shared.pid == os.getpid():
            pending = shared.flush(wait)
        pending += self.replayer.wait_idle(max(0.0, deadline - time.monotonic()))
        try:
            self.spool.flush()
        except OSError:  # pragma: no cover
            pass
        return pending

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes up to ``timeout``; what is not acked by then is spooled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            shared = self._shared
        wait = self._settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        self.replayer.stop(join_timeout=max(0.0, min(1.0, wait)))
        if shared is not None and shared.pid == os.getpid():
            shared.remove_error_listener(self._on_client_error)
            if not shared_producers.release(
                shared, max(0.0, deadline - time.monotonic())
            ):
                shared.flush(max(0.0, deadline - time.monotonic()))
        try:
            self.spool.flush()
        except OSError:  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return f"KafkaTransport(bootstrap_servers={self._settings.bootstrap_servers!r})"
