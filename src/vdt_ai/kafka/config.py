"""librdkafka configuration built from the SDK's settings."""

from typing import Any, Dict

from .._version import __version__
from ..config import Settings

# librdkafka error codes for which retrying the same bytes can never succeed.
# Everything else (timeouts, outages, auth and ACL refusals) goes to the spool.
PERMANENT_ERROR_NAMES = (
    "MSG_SIZE_TOO_LARGE",
    "INVALID_MSG",
    "INVALID_MSG_SIZE",
    "INVALID_RECORD",
    "RECORD_LIST_TOO_LARGE",
    "TOPIC_EXCEPTION",
)

# Messages the local queue may hold per KiB of max_buffer_kbytes: the byte cap
# stays the binding limit for events of 256 bytes or more.
_MESSAGES_PER_KBYTE = 4


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
        if settings.ssl_ca_location:
            conf["ssl.ca.location"] = settings.ssl_ca_location
        if settings.ssl_certificate_location:
            conf["ssl.certificate.location"] = settings.ssl_certificate_location
            conf["ssl.key.location"] = settings.ssl_key_location
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
            "linger.ms": 20,
            "queue.buffering.max.kbytes": settings.max_buffer_kbytes,
            "queue.buffering.max.messages": max(
                1000, settings.max_buffer_kbytes * _MESSAGES_PER_KBYTE
            ),
            "message.timeout.ms": int(settings.delivery_timeout * 1000),
            # Reconnect quickly after an outage, but without hammering the broker.
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 5000,
        }
    )
    return conf
