"""Helpers for testing code that uses vdt-ai, without Kafka or disk.

Example::

    from vdt_ai import VDTClient
    from vdt_ai.testing import MemoryTransport

    transport = MemoryTransport()
    client = VDTClient(transport=transport)
    client.log_metric("loss", 0.25, step=1)
    assert transport.events[0].value == 0.25
"""

import threading
from typing import List, Optional, Type, TypeVar

from . import _forksafe
from .codec import Record, decode
from .models import Event
from .transport import Counters, Transport

E = TypeVar("E", bound=Event)


class MemoryTransport(Transport):
    """Keeps every record in memory, exactly as it would go to Kafka.

    Attributes:
        records: the records sent, in order; each has ``topic``, ``key``,
            ``value`` (protobuf bytes) and ``headers``.
    """

    def __init__(self) -> None:
        self.records: List[Record] = []
        self._lock = threading.Lock()
        _forksafe.register(self)

    def send(self, record: Record, counters: Counters) -> None:
        """Stores ``record`` and counts it delivered."""
        with self._lock:
            self.records.append(record)
        counters.add("delivered")

    @property
    def events(self) -> List[Event]:
        """The records decoded back into event models, in order."""
        with self._lock:
            records = list(self.records)
        return [decode(record.value) for record in records]

    def events_of(self, kind: Type[E]) -> List[E]:
        """The decoded events of one model class, e.g. ``ModelCall``."""
        return [event for event in self.events if isinstance(event, kind)]

    def clear(self) -> None:
        """Forgets every record."""
        with self._lock:
            self.records.clear()

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"MemoryTransport(records={len(self.records)})"


def find_event(events: List[Event], event_id: object) -> Optional[Event]:
    """The event with ``event_id`` (a UUID or its string) in ``events``, if any."""
    wanted = str(event_id)
    return next((e for e in events if str(e.event_id) == wanted), None)
