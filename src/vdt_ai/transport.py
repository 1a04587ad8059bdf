"""The transport boundary: where encoded records leave the client.

A transport takes :class:`vdt_ai.codec.Record` objects and reports what became
of each through the client's :class:`Counters`. ``send`` must be cheap and
thread-safe, and must not raise for delivery problems: those are counted.
"""

import itertools
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional, Tuple

from . import _forksafe
from ._record import Record

COUNTER_NAMES = (
    "accepted",
    "delivered",
    "spooled",
    "dropped",
    "failed",
    "sampled_out",
    "replayed",
    "filtered",
    "integration_errors",
    "quarantined",
)

# The counters kept by reason as well (the ledger's ``*_by_reason``): every
# event counted in one of them is counted under exactly one reason.
REASONED = ("dropped", "failed")

# Reasons an event is dropped (discarded on purpose) ...
CLIENT_CLOSED = "client_closed"  # logged on (or racing) a closed client
SPOOL_FULL = "spool_full"  # spool_max_bytes reached
# ... or failed (lost to an error).
BEFORE_SEND_ERROR = "before_send_error"  # the before_send hook raised
BEFORE_SEND_INVALID = "before_send_invalid"  # it returned what cannot be sent
TRANSPORT_ERROR = "transport_error"  # the transport raised taking the event
SPOOL_WRITE_ERROR = "spool_write_error"  # the spool could not write it
# and "refused:<kafka error name>": Kafka refused it for good
# (vdt_ai.kafka.errors.refusal).
OTHER = "other"  # counted without a reason


@dataclass(frozen=True)
class Stats:
    """A snapshot of a client's event counts.

    Attributes:
        accepted: valid events handed to the transport.
        delivered: events the destination confirmed (Kafka ack, memory store).
        spooled: events written to the local disk spool.
        dropped: events discarded on purpose (spool full, client closed).
        failed: events lost to an unexpected transport error.
        sampled_out: valid events skipped by ``sample_rate``.
        replayed: spooled events (from this run, an earlier one or offline
            mode) that the spool replay delivered to Kafka later.
        filtered: valid events that ``before_send`` dropped.
        integration_errors: failures inside framework integrations that were
            caught so the user's call could go on.
        quarantined: spool segments holding damaged bytes that the replay
            moved to ``quarantine/`` after sending their intact records
            (a count of files, not events; see ``vdt-ai spool status``).
    """

    accepted: int = 0
    delivered: int = 0
    spooled: int = 0
    dropped: int = 0
    failed: int = 0
    sampled_out: int = 0
    replayed: int = 0
    filtered: int = 0
    integration_errors: int = 0
    quarantined: int = 0

    def as_dict(self) -> Dict[str, int]:
        """The counts as a plain dict."""
        return asdict(self)


class Counters:
    """Thread-safe event counters behind :meth:`VDTClient.stats`.

    Adding one, the per-event case, is ``next()`` on an ``itertools.count``:
    atomic in CPython and lock-free, so neither the caller nor the delivery
    thread waits. Larger amounts (replay batches) go to a locked total.
    ``dropped`` and ``failed`` (rare) are also counted by reason, under the
    lock, so that a snapshot's reasons always sum to its totals.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: see _lifecycle (SIGTERM)
        self._ticks = {name: itertools.count() for name in COUNTER_NAMES}
        self._bulk = dict.fromkeys(COUNTER_NAMES, 0)
        self._reasons: Dict[Tuple[str, str], int] = {}
        _forksafe.register(self)

    def add(self, name: str, amount: int = 1, reason: Optional[str] = None) -> None:
        """Adds ``amount`` to counter ``name``.

        Args:
            name: one of :data:`COUNTER_NAMES`.
            amount: how many events.
            reason: why, for the counters in :data:`REASONED` (``"other"``
                when not given); ignored for the others.
        """
        if name in REASONED:
            key = (name, reason or OTHER)
            with self._lock:
                self._bulk[name] += amount
                self._reasons[key] = self._reasons.get(key, 0) + amount
        elif amount == 1:
            next(self._ticks[name])
        else:
            with self._lock:
                self._bulk[name] += amount

    def ticker(self, name: str) -> Callable[[], int]:
        """A callable adding one to counter ``name`` (for per-event hot paths)."""
        return self._ticks[name].__next__

    def snapshot(self) -> Stats:
        """The current counts."""
        with self._lock:
            return Stats(
                **{
                    name: _count_value(ticks) + self._bulk[name]
                    for name, ticks in self._ticks.items()
                }
            )

    def snapshot_with_reasons(self) -> Tuple[Stats, Dict[str, Dict[str, int]]]:
        """The current counts, and those of :data:`REASONED` by reason
        (counter -> reason -> count), read together."""
        with self._lock:
            reasons: Dict[str, Dict[str, int]] = {name: {} for name in REASONED}
            for (name, reason), count in self._reasons.items():
                reasons[name][reason] = count
            return self.snapshot(), reasons


def _count_value(counter: "itertools.count[int]") -> int:
    # itertools.count has no read accessor; its repr is "count(N)".
    return int(repr(counter)[6:-1])


class Transport(ABC):
    """Where a client's encoded events go."""

    @abstractmethod
    def send(self, record: Record, counters: Counters) -> Optional[bool]:
        """Hands one record over; counts its outcome in ``counters``.

        Returns:
            ``False`` when the transport is closed and did not take the
            record (the client counts it dropped and returns ``None``).
        """

    def flush(self, timeout: Optional[float] = None) -> int:
        """Waits up to ``timeout`` seconds for sent records to settle.

        Returns:
            The number of records still pending.
        """
        return 0

    def close(self, timeout: Optional[float] = None) -> None:
        """Flushes, then releases resources. Further sends are dropped."""
        self.flush(timeout)
