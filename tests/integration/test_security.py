"""Security on the real broker: keys as SCRAM credentials, ACLs, TLS, no leaks."""

import io
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from click.testing import CliRunner
from loguru import logger

from vdt_ai import (
    AuthenticationError,
    AuthorizationError,
    TransportError,
    VDTClient,
    VDTError,
    _log,
)
from vdt_ai.cli import main
from vdt_ai.spool import iter_records

from .conftest import (
    SASL,
    SSL,
    TLS_DIR,
    assert_all_delivered,
    consume,
    grant,
    make_key,
    topics_of,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    """Every SDK log record at TRACE, with bound fields."""
    sink = io.StringIO()
    handler = logger.add(sink, level="TRACE", format="{level} {message} {extra}")
    logger.enable("vdt_ai")
    _log.configure("TRACE")
    yield sink
    logger.remove(handler)
    logger.disable("vdt_ai")
    _log._state["min_level"] = 0


def sasl_client(key: str, prefix: str, tmp_path: Path, **settings: object) -> VDTClient:
    errors: List[VDTError] = []
    client = VDTClient(
        key,
        bootstrap_servers=SASL,
        security_protocol="SASL_PLAINTEXT",
        topic_prefix=prefix,
        spool_dir=tmp_path / "spool",
        handle_sigterm=False,
        on_error=errors.append,
        **settings,  # type: ignore[arg-type]
    )
    client.errors = errors  # type: ignore[attr-defined]
    return client


def test_valid_key_with_acl_writes_over_scram(
    prefix: str, tmp_path: Path, scram_user: Tuple[str, str, str], log_sink: io.StringIO
) -> None:
    key_id, secret, key = scram_user
    grant(key_id, prefix)
    client = sasl_client(key, prefix, tmp_path)
    ids = {str(client.log_model_call("m", {"i": i}, i)) for i in range(200)}
    assert client.flush(30) == 0
    assert client.stats().delivered == 200
    seen = consume(topics_of(prefix), ids)
    assert_all_delivered(seen, ids)
    record = next(iter(seen.values()))[0]
    assert dict(record.headers)["vdt-api-key-id"] == key_id.encode()
    client.close()
    assert secret not in log_sink.getvalue()


def test_wrong_key_in_the_background_never_raises_and_keeps_events(
    prefix: str, tmp_path: Path, log_sink: io.StringIO
) -> None:
    _, secret, key = make_key()  # no such SCRAM user
    client = sasl_client(key, prefix, tmp_path, delivery_timeout=3)
    for i in range(50):
        assert client.log_metric("m", float(i)) is not None  # never raises
    wait_for(lambda: client.stats().spooled == 50, 30, "events to be spooled")
    errors: List[VDTError] = client.errors  # type: ignore[attr-defined]
    assert any(isinstance(e, AuthenticationError) for e in errors)
    client.close(0.5)
    assert len(list(iter_records(tmp_path / "spool"))) == 50  # kept for later
    logs = log_sink.getvalue()
    assert logs.count("Kafka refused the API key") == 1  # logged once
    assert secret not in logs and key not in logs
    with pytest.raises(AuthenticationError) as info:
        sasl_client(key, prefix, tmp_path / "second").check_connection(timeout=10)
    assert secret not in str(info.value)


def test_key_without_write_acl_is_refused_naming_the_topic(
    prefix: str, tmp_path: Path, scram_user: Tuple[str, str, str], log_sink: io.StringIO
) -> None:
    key_id, secret, key = scram_user  # valid credentials, no ACLs
    client = sasl_client(key, prefix, tmp_path, delivery_timeout=5)
    for i in range(10):
        client.log_metric("m", float(i))
    wait_for(lambda: client.stats().spooled == 10, 40, "refused events to be spooled")
    errors: List[VDTError] = client.errors  # type: ignore[attr-defined]
    refusals = [e for e in errors if isinstance(e, AuthorizationError)]
    assert refusals and refusals[0].topic == f"{prefix}.metrics"
    client.close(0.5)
    with pytest.raises(AuthorizationError) as info:
        sasl_client(key, prefix, tmp_path / "second").check_connection(timeout=20)
    assert info.value.topic is not None and info.value.topic.startswith(prefix + ".")
    assert secret not in log_sink.getvalue()


def test_tls_with_the_right_ca_delivers(prefix: str, tmp_path: Path) -> None:
    client = VDTClient(
        bootstrap_servers=SSL,
        security_protocol="SSL",
        ssl_ca_location=str(TLS_DIR / "ca.pem"),
        topic_prefix=prefix,
        spool_dir=tmp_path / "spool",
        handle_sigterm=False,
    )
    report = client.check_connection(timeout=20)
    assert report.ok and any("SSL" in step.name for step in report.steps)
    ids = {str(client.log_metric("tls", float(i))) for i in range(20)}
    assert client.flush(30) == 0
    assert_all_delivered(consume(topics_of(prefix), ids), ids)
    client.close()


def test_tls_with_a_wrong_ca_fails_clearly_and_fast(prefix: str) -> None:
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": SSL,
        "VDT_AI_SECURITY_PROTOCOL": "SSL",
        "VDT_AI_SSL_CA_LOCATION": str(TLS_DIR / "other-ca.pem"),
        "VDT_AI_TOPIC_PREFIX": prefix,
    }
    start = time.monotonic()
    result = CliRunner().invoke(main, ["test-connection", "--timeout", "15"], env=env)
    assert result.exit_code == 1
    assert "TLS handshake failed" in result.output
    assert "ssl_ca_location" in result.output
    assert time.monotonic() - start < 10


def test_tls_error_is_typed_from_check_connection(prefix: str, tmp_path: Path) -> None:
    client = VDTClient(
        bootstrap_servers=SSL,
        security_protocol="SSL",
        ssl_ca_location=str(TLS_DIR / "other-ca.pem"),
        topic_prefix=prefix,
        spool_dir=tmp_path / "spool",
        handle_sigterm=False,
    )
    with pytest.raises(TransportError, match="TLS handshake failed"):
        client.check_connection(timeout=10)
    client.close(0)


def test_nothing_anywhere_holds_the_secret(
    prefix: str,
    tmp_path: Path,
    log_sink: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The client, every CLI command and the error paths, with one known secret;
    stdout, stderr (librdkafka included) and every log record are scanned."""
    _, secret, key = make_key()
    texts: List[str] = []
    client = sasl_client(key, prefix, tmp_path, delivery_timeout=2)
    texts += [repr(client), str(client.settings), repr(client.settings)]
    client.log_model_call("m", {"password": secret, "note": f"key={key}"}, 1)
    try:
        client.log_model_call("", {"k": key})
    except VDTError as exc:
        texts += [str(exc), repr(exc)]
    wait_for(lambda: client.stats().spooled == 1, 30, "the event to be spooled")
    try:
        client.check_connection(timeout=5)
    except VDTError as exc:
        texts += [str(exc), repr(exc)]
    texts += [repr(e) for e in client.errors]  # type: ignore[attr-defined]
    client.close(0.5)
    for record in iter_records(tmp_path / "spool"):
        assert secret.encode() not in record.value  # masked by the denylist
        assert key.encode() not in record.value
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": SASL,
        "VDT_AI_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "VDT_AI_API_KEY": key,
        "VDT_AI_SPOOL_DIR": str(tmp_path / "spool"),
        "VDT_AI_DELIVERY_TIMEOUT": "2",
        "VDT_AI_SHUTDOWN_TIMEOUT": "1",
        "VDT_AI_TOPIC_PREFIX": prefix,
    }
    commands = [
        ["version"],
        ["validate-config"],
        ["validate-config", "--json"],
        ["test-connection", "--timeout", "5"],
        ["spool", "status"],
        ["sync"],
        ["send", "--type", "metric"],
        ["tail", "-n", "1", "--timeout", "2"],
        ["configure", "--environment", "x"],
        ["configure", "--api-key", key[:-1]],  # malformed: refused without echo
    ]
    for command in commands:
        result = CliRunner().invoke(
            main, command, env=env, input='{"name": "m", "value": 1}\n'
        )
        texts += [result.output, str(result.exception or "")]
    captured = capfd.readouterr()
    everything = "\n".join(texts) + captured.out + captured.err + log_sink.getvalue()
    assert "SASL authentication" in everything or "authentication failed" in everything
    assert secret not in everything
    assert secret[:-1] not in everything


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_other_sasl_mechanisms_write(
    mechanism: str, prefix: str, tmp_path: Path
) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    if mechanism == "PLAIN":
        # PLAIN users live in the broker's JAAS config (scripts/kafka-dev).
        key_id, secret = "devplain0001", "DevPlainPasswordDevPlainPassword"
    else:
        key_id, secret, _ = make_key()
        admin = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
        upsert = UserScramCredentialUpsertion(
            key_id,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
            secret.encode(),
        )
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)
        time.sleep(1.0)
    grant(key_id, prefix)
    client = sasl_client(
        f"vdt_{key_id}_{secret}", prefix, tmp_path, sasl_mechanism=mechanism
    )
    ids = {str(client.log_metric("m", float(i))) for i in range(20)}
    assert client.flush(30) == 0, client.stats()
    assert_all_delivered(consume(topics_of(prefix), ids), ids)
    client.close()


def test_a_key_refused_an_idempotent_producer_id_does_not_churn_producers(
    prefix: str,
    tmp_path: Path,
    scram_user: Tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No ACL at all: every new producer is refused its idempotent id (a fatal
    # error) within a round trip. Rebuilding at once for each event would
    # churn librdkafka instances; the events wait in the spool instead.
    from vdt_ai.kafka import producer as shared_producers

    built: List[object] = []
    real_init = shared_producers.SharedProducer.__init__

    def counting(self: object, *args: object, **kwargs: object) -> None:
        built.append(self)
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shared_producers.SharedProducer, "__init__", counting)
    _, _, key = scram_user
    client = sasl_client(key, prefix, tmp_path, delivery_timeout=5)
    sent = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        client.log_metric("m", float(sent))
        sent += 1
        time.sleep(0.002)
    client.close(1)
    stats = client.stats()
    print(f"\nproducers built: {len(built)} for {sent} events; {stats}")
    assert stats.spooled + stats.failed == sent and stats.dropped == 0, stats
    assert len(built) <= 6, len(built)
