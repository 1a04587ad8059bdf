"""Closing clients when the process ends, however it ends.

* Normal interpreter exit: an ``atexit`` hook closes every live client with one
  shared deadline (the largest ``shutdown_timeout``), so queued events are
  acked or written to the spool.
* SIGTERM: Python's default is to die at once, skipping ``atexit``. When a
  Kafka client starts in the main thread and SIGTERM still has its default
  action, a handler is installed that closes every client (same deadline),
  then restores the default action and sends SIGTERM again: the process still
  ends "killed by SIGTERM", as before, but its events are acked or spooled
  first. A program with a SIGTERM handler of its own keeps it (and exits
  through ``atexit``, which closes the clients); ``handle_sigterm=False`` opts
  out. The handler runs between two bytecodes of the main thread, possibly
  inside an SDK call, so the SDK's locks on that path are re-entrant.
* ``multiprocessing`` children end with ``os._exit``, which skips ``atexit``;
  a multiprocessing finalizer closes their clients instead.
"""

import atexit
import os
import signal
import sys
import threading
import time
import weakref
from typing import Any, Optional

_closeables: "weakref.WeakSet[Any]" = weakref.WeakSet()
_hooks_pid = 0


def register(closeable: Any) -> None:
    """Closes ``closeable`` (``close(timeout)``, ``shutdown_timeout``) at exit."""
    _closeables.add(closeable)


def unregister(closeable: Any) -> None:
    """Forgets ``closeable`` (it was closed by its owner)."""
    _closeables.discard(closeable)


def close_all(timeout: Optional[float] = None) -> None:
    """Closes every registered client within one deadline."""
    items = list(_closeables)
    if not items:
        return
    if timeout is None:
        timeout = max(float(getattr(c, "shutdown_timeout", 5.0)) for c in items)
    deadline = time.monotonic() + timeout
    for closeable in items:
        try:
            closeable.close(max(0.0, deadline - time.monotonic()))
        except Exception:  # pragma: no cover - exit must go on
            pass


def _on_sigterm(signum: int, frame: Any) -> None:
    try:
        close_all()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def install_process_hooks(handle_sigterm: bool = True) -> None:
    """Installs the SIGTERM handler and multiprocessing finalizer (once per process)."""
    global _hooks_pid
    if _hooks_pid == os.getpid():
        return
    _hooks_pid = os.getpid()
    if (
        handle_sigterm
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)
    if "multiprocessing" in sys.modules:
        from multiprocessing import util

        util.Finalize(None, close_all, exitpriority=100)


atexit.register(close_all)
