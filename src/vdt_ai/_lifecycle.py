"""Settling every accepted event when the process ends, however it ends.

Who owns what at exit: clients are held weakly (users drop them without
``close()``), so the records they queued are owned by the modules that hold
them. One exit procedure, :func:`close_all`, runs with one deadline (the
largest ``shutdown_timeout``):

1. every client still alive is closed (its replay stops, its share of the
   producer is released);
2. the exit hooks run: the shared producer registry flushes every producer
   left (dropped clients' included) and purges the rest, whose delivery
   callbacks write them to the spool.

It runs from:

* ``atexit`` (normal interpreter exit);
* a ``multiprocessing`` finalizer (children end with ``os._exit``, which
  skips ``atexit``), in fork and spawn children alike;
* SIGTERM: Python's default is to die at once, skipping ``atexit``. When a
  Kafka client starts in the main thread and SIGTERM still has its default
  action, a handler is installed that runs the exit procedure, then restores
  the default action and sends SIGTERM again: the process still ends "killed
  by SIGTERM", with its events acked or spooled first. A SIGTERM that arrives
  while a ``close()`` or the exit procedure already runs does not cut it
  short: it is held until that finishes, then delivered (``flush()`` holds
  it too, ending early: see :func:`term_pending`; a Ctrl-C is held the same
  way, see :func:`closing`). A program with a
  SIGTERM handler of its own keeps it (and exits through ``atexit``);
  ``handle_sigterm=False`` opts out. The handler runs between two bytecodes of
  the main thread, possibly inside an SDK call, so the SDK's locks on that path
  are re-entrant.
"""

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional

from . import _forksafe
from ._held_signals import HeldSignals

_closeables: "weakref.WeakSet[Any]" = weakref.WeakSet()
_exit_hooks: List[Callable[[Optional[float]], None]] = []
_lock = threading.RLock()
_forksafe.register_module_lock(sys.modules[__name__], "_lock")
# The main thread's closing() depth and the signals its outermost one holds.
_main: Dict[str, Any] = {"depth": 0, "held": None}
_state = {
    "closing": 0,  # close() calls and exit procedures in progress
    "exiting": 0,  # exit procedures (close_all) in progress
    "term_pending": False,
    "finalizer_pid": 0,
    "sigterm_pid": 0,
}
DEFAULT_TIMEOUT = 5.0


def register(closeable: Any) -> None:
    """Closes ``closeable`` (``close(timeout)``, ``shutdown_timeout``) at exit."""
    _closeables.add(closeable)


def unregister(closeable: Any) -> None:
    """Forgets ``closeable`` (it was closed by its owner)."""
    _closeables.discard(closeable)


def add_exit_hook(hook: Callable[[Optional[float]], None]) -> None:
    """Runs ``hook(seconds_left)`` at exit, after the live clients are closed.

    Hooks are held strongly: they belong to modules that own records.
    """
    if hook not in _exit_hooks:
        _exit_hooks.append(hook)


@contextlib.contextmanager
def closing() -> Iterator[None]:
    """Marks a close in progress: a SIGTERM meanwhile waits until it ends.

    On the main thread, the outermost ``closing()`` also holds every Python
    signal handler (:class:`HeldSignals`): the reports served inside run on
    this thread, and a KeyboardInterrupt (or any handler's exception) in one
    lost every record still queued. The waits inside end early on a held Ctrl-C
    (:func:`interrupted`); the handlers run when the outermost one ends,
    after everything was delivered or spooled.
    """
    held: Optional[HeldSignals] = None
    main = threading.current_thread() is threading.main_thread()
    if main:
        # Held before counted: a handler raising before the hold leaves
        # nothing counted (a depth left above 0 held nothing ever again).
        if _main["depth"] == 0:
            held = HeldSignals()
            _main["held"] = held
        _main["depth"] += 1
    pid = os.getpid()
    with _lock:
        _state["closing"] += 1
    try:
        yield
    finally:
        if os.getpid() == pid:
            _end_closing(main, held)
        # else: forked inside; _after_fork_in_child reset the child's state,
        # and what was held belongs to the parent.


def _end_closing(main: bool, held: Optional[HeldSignals]) -> None:
    with _lock:
        _state["closing"] -= 1
        deliver = _state["closing"] == 0 and _state["term_pending"]
        in_exit = _state["exiting"] > 0
    if main:
        _main["depth"] -= 1
    try:
        if held is not None:
            _main["held"] = None
            held.release()  # a KeyboardInterrupt comes out here
    finally:
        # Even so: a SIGTERM that waited for this close is delivered (the
        # process ends by it; a KeyboardInterrupt must not keep it alive).
        if deliver:
            if in_exit:
                _die_by_sigterm()  # the exit procedure is done
            else:
                # A close() ended, but other clients and the producers still
                # hold records: run the whole exit procedure before dying.
                close_all()


def term_pending() -> bool:
    """Whether a SIGTERM waits for the close in progress to end."""
    return bool(_state["term_pending"]) or _held(getattr(signal, "SIGTERM", None))


def interrupted() -> bool:
    """Whether a Ctrl-C (SIGINT) waits for the close in progress to end.

    Waits for acks stop then: what is queued is spooled at once, and the
    KeyboardInterrupt comes out when the close ends.
    """
    return _held(signal.SIGINT)


def _held(signum: Optional[int]) -> bool:
    held = _main["held"]
    return signum is not None and held is not None and held.has(signum)


def close_all(timeout: Optional[float] = None) -> None:
    """Closes every live client, then runs the exit hooks, within one deadline."""
    with _lock:
        _state["exiting"] += 1
    try:
        _close_all(timeout)
    finally:
        with _lock:
            _state["exiting"] -= 1


def _close_all(timeout: Optional[float]) -> None:
    with closing():
        items = list(_closeables)
        if timeout is None and items:
            timeout = max(
                float(getattr(c, "shutdown_timeout", DEFAULT_TIMEOUT)) for c in items
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        for closeable in items:
            try:
                closeable.close(_left(deadline))
            except Exception:  # pragma: no cover - exit must go on
                pass
        for hook in list(_exit_hooks):
            try:
                # With no live client, each owner knows its own deadline.
                hook(_left(deadline))
            except Exception:  # pragma: no cover - exit must go on
                pass


def _left(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _die_by_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # From another thread, the handler runs again on the main thread, finds
    # nothing in progress and ends the process there.
    os.kill(os.getpid(), signal.SIGTERM)


def _on_sigterm(signum: int, frame: Any) -> None:
    with _lock:
        _state["term_pending"] = True
        busy = _state["closing"] > 0
    if busy:
        return  # the close in progress delivers SIGTERM when it ends
    close_all()  # delivers the pending SIGTERM as it ends


def install_process_hooks(handle_sigterm: bool = True) -> None:
    """Installs the SIGTERM handler and multiprocessing finalizer (once per process)."""
    pid = os.getpid()
    # The handler can only be installed from the main thread: a first client
    # built on a worker thread must not stop a later one from installing it.
    if (
        handle_sigterm
        and _state["sigterm_pid"] != pid
        and threading.current_thread() is threading.main_thread()
    ):
        _state["sigterm_pid"] = pid
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    if _state["finalizer_pid"] != pid and "multiprocessing" in sys.modules:
        _state["finalizer_pid"] = pid
        from multiprocessing import util

        util.Finalize(None, close_all, exitpriority=100)


def start_thread(thread: threading.Thread) -> bool:
    """Starts ``thread``; False where the interpreter refuses one.

    Python 3.12 starts no thread at interpreter shutdown (from an ``atexit``
    handler: "can't create new thread at interpreter shutdown"), and no
    process starts one past its thread limit. Each SDK thread has a fallback
    for that (the work done on the caller's thread, or at close), so a
    client used inside an exit handler, or an exit purge spooling records,
    never fails for it.
    """
    try:
        thread.start()
    except RuntimeError:
        return False
    return True


def _after_fork_in_child() -> None:
    # fork() from inside a close: the child starts with no close in progress
    # and its own handlers (the signals held in the parent stay the parent's).
    held, _main["held"] = _main["held"], None
    _main["depth"] = 0
    if held is not None:
        try:
            held.restore()
        except (ValueError, OSError):  # pragma: no cover - not the main thread
            pass
    _state["closing"] = 0
    _state["exiting"] = 0
    _state["term_pending"] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

atexit.register(close_all)
