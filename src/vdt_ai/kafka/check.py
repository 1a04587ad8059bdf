"""An end-to-end connection check, step by step, with a diagnosis a user can act on.

Used by ``vdt-ai test-connection`` and :meth:`vdt_ai.VDTClient.check_connection`.
Steps: resolve the broker hosts, open a TCP connection, authenticate and read
cluster metadata, check each topic exists (or will be created) and may be
written, produce a probe event and read it back. Everything runs within one
deadline. The probe is a Metric named ``vdt_ai.connection_probe`` with the tag
``vdt_probe=1`` on ``<prefix>.metrics``.
"""

import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .._redact import redact
from ..codec import Encoder, decode, topic_for
from ..config import Settings
from ..exceptions import (
    AuthenticationError,
    AuthorizationError,
    TransportError,
    VDTError,
)
from ..models import EventType, Metric
from . import errors as kafka_errors
from .config import connection_config, producer_config

PROBE_METRIC = "vdt_ai.connection_probe"


@dataclass
class Step:
    """One step of the check.

    Attributes:
        name: what was checked.
        ok: whether it passed.
        millis: how long it took.
        detail: what was found, or the diagnosis when it failed.
    """

    name: str
    ok: bool
    millis: float
    detail: str = ""


@dataclass
class ConnectionReport:
    """The outcome of :func:`check_connection`.

    Attributes:
        steps: the steps run, in order (the check stops at the first failure).
        error: the typed error of the failed step, if any.
    """

    steps: List[Step] = field(default_factory=list)
    error: Optional[VDTError] = None

    @property
    def ok(self) -> bool:
        """``True`` when every step passed."""
        return self.error is None


class _Failed(Exception):
    def __init__(self, error: VDTError) -> None:
        self.error = error


def check_connection(settings: Settings, timeout: float = 10.0) -> ConnectionReport:
    """Runs the connection check against ``settings``' cluster within ``timeout``."""
    report = ConnectionReport()
    deadline = time.monotonic() + timeout
    errors: List[Any] = []

    def remaining() -> float:
        return max(0.1, deadline - time.monotonic())

    def run(name: str, action: Callable[[], str]) -> None:
        start = time.monotonic()
        try:
            detail = action()
        except _Failed as failure:
            report.steps.append(Step(name, False, _ms(start), failure.error.message))
            raise
        report.steps.append(Step(name, True, _ms(start), detail))

    if settings.bootstrap_servers is None:
        error = TransportError(
            "no bootstrap_servers configured: set VDT_AI_BOOTSTRAP_SERVERS or run "
            "`vdt-ai configure --bootstrap-servers HOST:PORT`"
        )
        report.steps.append(Step("configuration", False, 0.0, error.message))
        report.error = error
        return report

    hosts = _parse_servers(settings.bootstrap_servers)
    conf = producer_config(settings)
    conf["error_cb"] = errors.append
    conf["message.timeout.ms"] = max(1000, int(timeout * 1000))
    conf["logger"] = _quiet_logger()
    state: Dict[str, Any] = {}
    try:
        run("resolve brokers", lambda: _resolve(hosts))
        run("connect", lambda: _connect(hosts, remaining()))
        run(
            f"authenticate ({settings.security_protocol})",
            lambda: _metadata(conf, settings, errors, remaining(), state),
        )
        run("topics", lambda: _topics(conf, settings, remaining(), state))
        run(
            "produce probe event",
            lambda: _produce(conf, settings, errors, remaining(), state),
        )
        run("read probe back", lambda: _read_back(conf, settings, remaining(), state))
    except _Failed as failure:
        report.error = failure.error
    return report


def _ms(start: float) -> float:
    return (time.monotonic() - start) * 1000


def _quiet_logger() -> Any:
    import logging

    logger = logging.getLogger("vdt_ai.check")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def _parse_servers(servers: str) -> List[Tuple[str, int]]:
    hosts = []
    for entry in servers.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host:
            host, port = port, "9092"
        hosts.append((host.strip("[]"), int(port) if port.isdigit() else 9092))
    return hosts


def _resolve(hosts: List[Tuple[str, int]]) -> str:
    for host, port in hosts:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise _Failed(
                TransportError(
                    f"cannot resolve broker host {host!r} ({exc.strerror}): check "
                    "bootstrap_servers and DNS"
                )
            ) from None
    return ", ".join(f"{h}:{p}" for h, p in hosts)


def _connect(hosts: List[Tuple[str, int]], timeout: float) -> str:
    problems = []
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
                return f"{host}:{port} accepts connections"
        except ConnectionRefusedError:
            problems.append(
                f"{host}:{port} refused the connection (is the broker running?)"
            )
        except socket.timeout:
            problems.append(f"{host}:{port} did not answer (firewall or wrong host?)")
        except OSError as exc:
            problems.append(f"{host}:{port} is unreachable ({exc.strerror})")
    raise _Failed(
        TransportError("cannot connect to any broker: " + "; ".join(problems))
    )


def _is_auth(error: Any) -> bool:
    from confluent_kafka import KafkaError

    return error.code() in (
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    )


def _is_tls(error: Any) -> bool:
    from confluent_kafka import KafkaError

    return bool(error.code() == KafkaError._SSL or "SSL handshake" in error.str())


def _diagnose(errors: List[Any], settings: Settings, what: str) -> VDTError:
    from confluent_kafka import KafkaError

    for error in errors:
        code = error.code()
        text = redact(error.str())
        if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
            return AuthenticationError(
                f"authentication failed for key id {settings.api_key_id!r} with "
                f"{settings.sasl_mechanism}: check the API key (wrong or revoked) and "
                f"sasl_mechanism ({text})"
            )
        if code == KafkaError._SSL or "SSL" in text or "certificate" in text:
            return TransportError(
                f"TLS handshake failed: check ssl_ca_location and the broker's "
                f"certificate and host name ({text})"
            )
    if errors:
        text = redact(errors[-1].str())
        return TransportError(f"{what} failed: {text}")
    return TransportError(f"{what} timed out: the broker did not answer in time")


def _metadata(
    conf: Any,
    settings: Settings,
    errors: List[Any],
    timeout: float,
    state: Dict[str, Any],
) -> str:
    from confluent_kafka.admin import AdminClient

    admin_conf = connection_config(settings)
    admin_conf.update(error_cb=conf["error_cb"], logger=conf["logger"])
    admin = AdminClient(admin_conf)
    state["admin"] = admin
    deadline = time.monotonic() + timeout
    metadata = None
    # Ask in short slices and serve the error callback in between, so a
    # refused key is reported at once instead of at the deadline.
    while metadata is None:
        try:
            metadata = admin.list_topics(
                timeout=min(1.0, max(0.1, deadline - time.monotonic()))
            )
        except Exception:
            admin.poll(0.1)
            if any(_is_auth(e) or _is_tls(e) for e in errors) or (
                time.monotonic() >= deadline
            ):
                raise _Failed(
                    _diagnose(errors, settings, "reading cluster metadata")
                ) from None
    auth_errors = _diagnose(errors, settings, "") if errors else None
    if isinstance(auth_errors, AuthenticationError):
        raise _Failed(auth_errors)
    state["metadata"] = metadata
    who = (
        f" as {settings.api_key_id}"
        if settings.security_protocol.startswith("SASL")
        else ""
    )
    return f"{len(metadata.brokers)} broker(s), cluster {metadata.cluster_id}{who}"


def _topics(
    conf: Any, settings: Settings, timeout: float, state: Dict[str, Any]
) -> str:
    from confluent_kafka import KafkaError, TopicCollection
    from confluent_kafka.admin import AclOperation  # type: ignore[attr-defined]

    admin = state["admin"]
    names = [topic_for(t, settings.topic_prefix) for t in EventType]
    futures = admin.describe_topics(
        TopicCollection(names),
        request_timeout=timeout,
        include_authorized_operations=True,
    )
    existing, missing = [], []
    for name in names:
        try:
            description = futures[name].result(timeout=timeout)
        except Exception as exc:
            error: Any = exc.args[0] if exc.args else None
            code = error.code() if hasattr(error, "code") else None
            if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                missing.append(name)
                continue
            if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise _Failed(
                    AuthorizationError(
                        f"key {settings.api_key_id!r} may not access topic {name}: "
                        "ask for WRITE (and DESCRIBE) on it",
                        topic=name,
                    )
                ) from None
            raise _Failed(
                TransportError(f"cannot describe topic {name}: {exc}")
            ) from None
        operations = description.authorized_operations
        if (
            operations is not None
            and AclOperation.WRITE not in operations
            and (AclOperation.ALL not in operations)
        ):
            raise _Failed(
                AuthorizationError(
                    f"key {settings.api_key_id!r} may not write to topic {name}",
                    topic=name,
                )
            )
        existing.append(name)
    detail = f"{len(existing)} exist and are writable"
    if missing:
        detail += (
            f"; {len(missing)} will be created on first write ({', '.join(missing)})"
        )
    return detail


def _produce(
    conf: Any,
    settings: Settings,
    errors: List[Any],
    timeout: float,
    state: Dict[str, Any],
) -> str:
    from confluent_kafka import KafkaError, KafkaException, Producer

    probe = Metric(
        name=PROBE_METRIC,
        value=1.0,
        run_id=f"probe-{uuid.uuid4().hex[:12]}",
        tags={"vdt_probe": "1"},
    )
    record = Encoder(settings.topic_prefix, settings.api_key_id).encode(probe)
    outcome: List[Any] = []
    producer = Producer(conf)
    producer.produce(
        record.topic,
        record.value,
        record.key,
        headers=list(record.headers),
        on_delivery=lambda error, message: outcome.append((error, message)),
    )
    try:
        producer.flush(timeout)
    except KafkaException as exc:
        # A fatal error (e.g. the idempotent producer's id refused) is raised
        # out of flush(), never passed to error_cb.
        producer.purge()
        raise _Failed(_fatal(kafka_errors.error_of(exc), settings, record.topic))
    if not outcome:
        producer.purge()
        raise _Failed(_diagnose(errors, settings, "producing the probe event"))
    error, message = outcome[0]
    if error is not None:
        if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise _Failed(
                AuthorizationError(
                    f"key {settings.api_key_id!r} may not write to {record.topic}",
                    topic=record.topic,
                )
            )
        raise _Failed(
            _diagnose([error] + errors, settings, f"producing to {record.topic}")
        )
    state["probe"] = (probe, message.topic(), message.partition(), message.offset())
    return f"{record.topic} partition {message.partition()} offset {message.offset()}"


def _fatal(error: Any, settings: Settings, topic: str) -> VDTError:
    from confluent_kafka import KafkaError

    text = redact(kafka_errors.describe(error))
    if error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
        return AuthorizationError(
            f"key {settings.api_key_id!r} may not write to {topic} (the broker "
            f"refused the idempotent producer's id: grant WRITE on the topics, "
            f"or IDEMPOTENT_WRITE on the cluster): {text}",
            topic=topic,
        )
    return TransportError(f"producing to {topic} failed fatally: {text}")


def _read_back(
    conf: Any, settings: Settings, timeout: float, state: Dict[str, Any]
) -> str:
    from confluent_kafka import Consumer, TopicPartition

    probe, topic, partition, offset = state["probe"]
    consumer_conf = connection_config(settings)
    consumer_conf.update(error_cb=conf["error_cb"], logger=conf["logger"])
    consumer_conf.update(
        {"group.id": f"vdt-ai-check-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer = Consumer(consumer_conf)
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            if message.offset() == offset:
                if decode(message.value() or b"").event_id != probe.event_id:
                    raise _Failed(TransportError("read back a different event"))
                return f"decoded event {probe.event_id}"
    finally:
        consumer.close()
    raise _Failed(
        AuthorizationError(
            f"the probe was written but could not be read back from {topic} "
            "(READ permission?) within the timeout",
            topic=topic,
        )
    )
