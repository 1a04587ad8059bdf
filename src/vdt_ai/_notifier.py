"""Delivers ``on_error`` callbacks on an SDK thread, once per kind per interval.

Problems are detected on librdkafka's threads (inside ``poll()``) or on the
replay thread. A user's callback must not run there: one that calls
``flush()`` or ``close()`` from inside ``poll()`` aborts the process
(librdkafka forbids it), and a slow one stalls every delivery report. So the
detecting thread only enqueues (cheap, never blocks); one daemon thread per
notifier runs the callback, which may call any public method, ``close()``
included.

Each kind of problem (a key such as ``"auth:SASL_AUTHENTICATION_FAILED"``) is
passed on at most once per ``interval`` seconds: an outage that fails 100,000
deliveries gives one call, not 100,000.
"""

import os
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Optional, Tuple

from . import _forksafe, _lifecycle, _log
from .exceptions import VDTError

Callback = Callable[[VDTError], None]

DEFAULT_INTERVAL_SECONDS = 60.0
_MAX_QUEUED = 100  # kinds waiting at once; more would be the same story again


class ErrorNotifier:
    """Runs ``callback(error)`` on its own thread, once per kind per interval.

    Args:
        callback: the user's ``on_error``.
        interval: seconds during which repeats of one kind are not passed on.
    """

    def __init__(
        self, callback: Callback, interval: float = DEFAULT_INTERVAL_SECONDS
    ) -> None:
        self._callback = callback
        self._interval = interval
        self._last: Dict[str, float] = {}
        self._queue: Deque[Tuple[str, VDTError]] = deque(maxlen=_MAX_QUEUED)
        self._ready = threading.Event()
        self._lock = threading.RLock()
        _forksafe.register(self)
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        self._busy = False
        self.calls = 0

    def notify(self, kind: str, error: VDTError) -> None:
        """Queues ``error`` unless its kind was passed on within the interval."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                return
            self._last[kind] = now
            self._queue.append((kind, error))
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="vdt-ai-on-error", daemon=True
                )
                if not _lifecycle.start_thread(self._thread):
                    # At interpreter shutdown: the callback cannot run now,
                    # and the caller (an exit purge spooling its records)
                    # must not fail for that.
                    self._thread = None
                    for dropped, _ in self._queue:  # not passed on: the next
                        self._last.pop(dropped, None)  # of its kind may be
                    self._queue.clear()
                    return
        self._ready.set()

    def wait_idle(self, timeout: float) -> bool:
        """Waits up to ``timeout`` for queued callbacks to run (tests, close)."""
        deadline = time.monotonic() + timeout
        while self._queue or self._busy:
            if threading.current_thread() is self._thread:
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            while self._queue:
                try:
                    kind, error = self._queue.popleft()
                except IndexError:  # pragma: no cover - raced another pop
                    break
                self.calls += 1
                self._busy = True
                try:
                    self._callback(error)
                except Exception as exc:  # the user's callback must not stop us
                    _log.log_once(
                        f"on-error-raised:{type(exc).__name__}",
                        "ERROR",
                        "on_error callback raised",
                        error=type(exc).__name__,
                    )
                finally:
                    self._busy = False
