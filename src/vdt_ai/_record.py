"""The Kafka record a transport takes (:class:`vdt_ai.codec.Record`).

Its own module, free of the event models and pydantic, so that
``vdt_ai.transport`` (and ``from vdt_ai import VDTClient``) can name it
without loading the codec; :mod:`vdt_ai.codec` re-exports it.
"""

from typing import List, NamedTuple, Tuple

Headers = List[Tuple[str, bytes]]


class Record(NamedTuple):
    """One Kafka record, ready to produce.

    Attributes:
        topic: destination topic, e.g. ``vdt.model_calls``.
        key: partitioning key (UTF-8), keeps one entity's events in order.
        value: the protobuf-encoded event.
        headers: ``(name, bytes)`` pairs: event type, event id, schema
            version, content type and, when a key is configured, the API key id.
    """

    topic: str
    key: bytes
    value: bytes
    headers: Headers
