"""Holding signals while the main thread serves delivery reports.

Python runs signal handlers on the main thread, between two bytecodes. On a
delivery callback served there, an exception from a handler cuts the report
short: confluent-kafka drops the rest of the callback (its record is neither
spooled nor counted) and stops serving, so a Ctrl-C during ``close()`` lost
every record still queued. The same goes for any handler that raises (a
SIGALRM timeout, gunicorn's SIGQUIT and SIGABRT, which call ``sys.exit``),
and the SDK's SIGTERM handler would flush the producer from inside its own
``poll()``. While the main thread serves reports, every Python signal handler
is replaced by one that only records the signal; :meth:`HeldSignals.release`
puts them back and calls them, outside any callback.
"""

import importlib
import signal
from typing import Any, Callable, Dict, List, Optional, Tuple

# The C functions: signal's wrappers convert to enums (62 signals: 75 vs 3 us).
_getsignal: Callable[[int], Any] = signal.getsignal
_setsignal: Callable[[int, Any], Any] = signal.signal
try:
    _c_signal: Any = importlib.import_module("_signal")
    _getsignal, _setsignal = _c_signal.getsignal, _c_signal.signal
except ImportError:  # pragma: no cover - not CPython
    pass

HELD_SIGNALS = tuple(sorted(int(s) for s in signal.valid_signals()))


class HeldSignals:
    """Holds every Python signal handler (main thread only).

    A signal that comes meanwhile is recorded, and :meth:`release` restores
    the handlers and calls them with it. Called, not raised again: a wakeup
    fd, as asyncio's, was written once already.
    """

    __slots__ = ("saved", "caught")

    def __init__(self) -> None:
        self.saved: Dict[int, Any] = {}
        self.caught: List[Tuple[int, Any]] = []
        try:
            for signum in HELD_SIGNALS:
                handler = _getsignal(signum)
                if callable(handler):  # SIG_DFL/SIG_IGN run no Python code
                    self.saved[signum] = handler  # before: restore() sees it
                    try:
                        _setsignal(signum, self._catch)
                    except (ValueError, OSError):  # pragma: no cover - not main
                        del self.saved[signum]
        except BaseException:
            # A handler that ran meanwhile raised (sys.exit in a SIGTERM
            # handler, a SIGALRM timeout): nothing stays held, or every later
            # Ctrl-C is lost.
            self.restore()
            raise

    def _catch(self, signum: int, frame: Any) -> None:
        self.caught.append((signum, frame))

    def has(self, signum: Optional[int] = None) -> bool:
        """Whether a signal (``signum``, or any) came while held."""
        return any(signum is None or s == signum for s, _ in self.caught)

    def restore(self) -> None:
        """Puts the saved handlers back without calling them."""
        for signum, handler in self.saved.items():
            _setsignal(signum, handler)

    def release(self) -> None:
        """Restores the handlers; calls them with the signals held meanwhile.

        Every held signal's handler runs; the first exception one of them
        raised (KeyboardInterrupt from SIGINT's default) comes out after.
        """
        self.restore()
        caught, self.caught = self.caught, []
        first: Optional[BaseException] = None
        for signum, frame in caught:
            try:
                self.saved[signum](signum, frame)
            except BaseException as exc:
                if first is None:
                    first = exc
        if first is not None:
            raise first
