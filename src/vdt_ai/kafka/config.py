"""librdkafka configuration built from the SDK's settings."""

import os
from typing import Any, Dict, Optional

from .._version import __version__
from ..config import Settings

# Which SDK setting a librdkafka property comes from, to name it in errors.
CONF_TO_SETTING = {
    "ssl.ca.location": "ssl_ca_location",
    "ssl.certificate.location": "ssl_certificate_location",
    "ssl.key.location": "ssl_key_location",
    "message.timeout.ms": "delivery_timeout",
    "linger.ms": "delivery_timeout",
    "queue.buffering.max.kbytes": "max_buffer_kbytes",
    "queue.buffering.max.messages": "max_buffer_kbytes",
    "compression.type": "compression",
    "compression.codec": "compression",
    "sasl.mechanism": "sasl_mechanism",
    "security.protocol": "security_protocol",
    "bootstrap.servers": "bootstrap_servers",
    "message.max.bytes": "max_event_bytes",
}

# Room for the key, headers and record framing around an event's value: the
# producer must never refuse an event the SDK accepted (max_event_bytes).
_RECORD_OVERHEAD_BYTES = 64 * 1024
_LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES = 1_000_000

# Messages the local queue may hold per KiB of max_buffer_kbytes: the byte cap
# stays the binding limit for events of 256 bytes or more...
_MESSAGES_PER_KBYTE = 4
# ...up to this many. What is still queued when close() (or the exit flush)
# reaches its deadline is purged and spooled, ~12-25 us a record on 2 cores:
# a bounded queue keeps that near 0.2 s, so the deadline holds. Events past
# the bound go to the spool at once (durable; replayed when Kafka acks again).
MAX_QUEUED_MESSAGES = 10_000

# How long librdkafka lets a batch fill (linger.ms). Not shorter than an
# acks=all round trip on a replicated cluster (10-60 ms, longer under load):
# with an idempotent producer, librdkafka (2.x, rdkafka_broker.c
# rd_kafka_toppar_producer_serve) holds a partition's next batch while
# RD_KAFKA_IDEMP_MAX_INFLIGHT (5) is not above rktp_msgs_inflight, a count of
# *messages*, so in practice until the previous request is acked; a batch
# that has lingered its full time meanwhile has already set the broker
# thread's next wakeup to "now", so that thread busy-loops until the ack,
# taking the client's and the partition's locks each turn. produce() needs
# both locks and confluent-kafka holds the GIL in it. Logging steadily to a
# 3-node cluster with 20 ms, that loop took 5% of a core (24% with a node
# paused), against 0.2% with 100 ms, and stalled every Python thread.
LINGER_MS = 100
# ...but below message.timeout.ms, as librdkafka requires (a delivery_timeout
# of 0.02 s or less is refused, as before).
_MIN_LINGER_MS = 20


def _path(value: Optional[str]) -> Optional[str]:
    return os.path.expanduser(value) if value else value


def connection_config(settings: Settings) -> Dict[str, Any]:
    """Brokers, client id, security and TLS: what every client of ``settings``'
    cluster (producer, consumer, admin) needs.

    Raises:
        ValueError: ``settings`` has no ``bootstrap_servers``.
    """
    if settings.bootstrap_servers is None:
        raise ValueError("bootstrap_servers is not set")
    conf: Dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"vdt-ai-python/{__version__}",
        "security.protocol": settings.security_protocol,
    }
    if settings.security_protocol.startswith("SASL"):
        conf["sasl.mechanism"] = settings.sasl_mechanism
        conf["sasl.username"] = settings.api_key_id
        conf["sasl.password"] = settings.api_key_secret
    if settings.security_protocol.endswith("SSL"):
        conf["ssl.endpoint.identification.algorithm"] = "https"
        # File settings expand ``~`` like every other path the SDK takes.
        if settings.ssl_ca_location:
            conf["ssl.ca.location"] = _path(settings.ssl_ca_location)
        if settings.ssl_certificate_location:
            conf["ssl.certificate.location"] = _path(settings.ssl_certificate_location)
            conf["ssl.key.location"] = _path(settings.ssl_key_location)
    return conf


def producer_config(settings: Settings) -> Dict[str, Any]:
    """The confluent_kafka.Producer configuration for ``settings``.

    Raises:
        ValueError: ``settings`` has no ``bootstrap_servers``.
    """
    conf = connection_config(settings)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": settings.compression,
            "linger.ms": min(
                LINGER_MS,
                max(_MIN_LINGER_MS, int(settings.delivery_timeout * 1000) // 2),
            ),
            "queue.buffering.max.kbytes": settings.max_buffer_kbytes,
            "queue.buffering.max.messages": min(
                MAX_QUEUED_MESSAGES,
                max(1000, settings.max_buffer_kbytes * _MESSAGES_PER_KBYTE),
            ),
            "message.timeout.ms": int(settings.delivery_timeout * 1000),
            "message.max.bytes": max(
                _LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES,
                settings.max_event_bytes + _RECORD_OVERHEAD_BYTES,
            ),
            # Reconnect quickly after an outage, but without hammering the broker.
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 5000,
        }
    )
    return conf
