"""The CLI commands that touch Kafka, against the real dev broker."""

import json
import socket
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from click.testing import CliRunner, Result

from vdt_ai import VDTClient
from vdt_ai.cli import main

from .conftest import (
    BOOTSTRAP,
    SASL,
    assert_all_delivered,
    consume,
    grant,
    kafka_dev,
    make_key,
    topics_of,
)

pytestmark = pytest.mark.integration


def cli(*args: str, env: Dict[str, str], input: str = "") -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=input)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_test_connection_succeeds_on_plaintext(prefix: str) -> None:
    env = {"VDT_AI_BOOTSTRAP_SERVERS": BOOTSTRAP, "VDT_AI_TOPIC_PREFIX": prefix}
    result = cli("test-connection", "--timeout", "20", env=env)
    assert result.exit_code == 0, result.output
    for step in (
        "resolve brokers",
        "connect",
        "authenticate",
        "topics",
        "produce probe",
    ):
        assert step in result.output
    assert "read probe back" in result.output and "connection OK" in result.output
    assert " ms " in result.output


def test_test_connection_wrong_key_gives_authentication_diagnosis(prefix: str) -> None:
    _, secret, key = make_key()  # no such SCRAM user
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": SASL,
        "VDT_AI_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "VDT_AI_API_KEY": key,
        "VDT_AI_TOPIC_PREFIX": prefix,
    }
    start = time.monotonic()
    result = cli("test-connection", "--timeout", "15", env=env)
    assert result.exit_code == 1
    assert "AuthenticationError" in result.output
    assert "authentication failed" in result.output
    assert secret not in result.output and key not in result.output
    assert time.monotonic() - start < 15


def test_test_connection_with_the_dev_broker_stopped(restore_broker: None) -> None:
    kafka_dev("down")
    env = {"VDT_AI_BOOTSTRAP_SERVERS": BOOTSTRAP}
    start = time.monotonic()
    result = cli("test-connection", "--timeout", "5", env=env)
    assert result.exit_code == 1
    assert (
        "refused the connection" in result.output and "broker running" in result.output
    )
    assert time.monotonic() - start < 5


def test_test_connection_broker_down_fails_inside_its_timeout() -> None:
    env = {"VDT_AI_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    start = time.monotonic()
    result = cli("test-connection", "--timeout", "5", env=env)
    assert result.exit_code == 1
    assert "refused the connection" in result.output
    assert time.monotonic() - start < 5


def test_valid_key_without_acl_is_not_authorized_then_with_acl_passes(
    prefix: str, scram_user: Tuple[str, str, str]
) -> None:
    key_id, secret, key = scram_user
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": SASL,
        "VDT_AI_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "VDT_AI_API_KEY": key,
        "VDT_AI_TOPIC_PREFIX": prefix,
    }
    result = cli("test-connection", "--timeout", "20", env=env)
    assert result.exit_code == 1, result.output
    assert "AuthorizationError" in result.output and f"{prefix}." in result.output
    grant(key_id, prefix)
    result = cli("test-connection", "--timeout", "20", env=env)
    assert result.exit_code == 0, result.output
    assert f"as {key_id}" in result.output
    assert secret not in result.output


def test_send_then_tail_reads_the_events_back(prefix: str, tmp_path: Path) -> None:
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "VDT_AI_TOPIC_PREFIX": prefix,
        "VDT_AI_SPOOL_DIR": str(tmp_path / "spool"),
    }
    lines = "\n".join(
        json.dumps({"model_name": name, "latency_ms": 1.5}) for name in ("a", "b", "a")
    )
    sent = cli("send", "--type", "model_call", env=env, input=lines)
    assert sent.exit_code == 0, sent.output
    assert "sent 3 events (3 delivered" in sent.output
    tailed = cli(
        "tail", "--from-beginning", "--type", "model_call", "--model", "a",
        "-n", "2", "--json", "--timeout", "20", env=env,
    )  # fmt: skip
    assert tailed.exit_code == 0, tailed.output
    events = [json.loads(line) for line in tailed.output.splitlines()]
    assert [e["model_name"] for e in events] == ["a", "a"]
    assert all(e["event_type"] == "model_call" for e in events)
    human = cli("tail", "--from-beginning", "-n", "3", "--timeout", "20", env=env)
    assert human.output.count("model_call") == 3


def test_sync_sends_offline_events_and_empties_the_spool(
    prefix: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    with pytest.warns(Warning):
        offline = VDTClient(spool_dir=spool, topic_prefix=prefix)
    ids = {str(offline.log_metric("m", float(i))) for i in range(300)}
    offline.close()
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "VDT_AI_TOPIC_PREFIX": prefix,
        "VDT_AI_SPOOL_DIR": str(spool),
    }
    status = cli("spool", "status", env=env)
    assert "events:    300" in status.output
    result = cli("sync", env=env)
    assert result.exit_code == 0, result.output
    assert "sent 300 events" in result.output
    assert "events:    0" in cli("spool", "status", env=env).output
    assert cli("sync", env=env).output.strip().endswith("is empty")
    assert_all_delivered(consume(topics_of(prefix), ids), ids)


def test_sync_against_unreachable_brokers_keeps_everything(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with pytest.warns(Warning):
        offline = VDTClient(spool_dir=spool)
    for i in range(5):
        offline.log_metric("m", float(i))
    offline.close()
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "VDT_AI_SPOOL_DIR": str(spool),
    }
    result = cli("sync", env=env)
    assert result.exit_code == 1
    assert "5 remain" in result.output
    assert "events:    5" in cli("spool", "status", env=env).output


SECRET_COMMANDS: List[List[str]] = [
    ["validate-config"],
    ["validate-config", "--json"],
    ["test-connection", "--timeout", "5"],
    ["spool", "status"],
    ["sync"],
    ["send", "--type", "metric"],
    ["tail", "-n", "1", "--timeout", "2"],
    ["version"],
]


@pytest.mark.parametrize("args", SECRET_COMMANDS, ids=lambda a: " ".join(a))
def test_commands_against_the_broker_never_print_the_secret(
    args: List[str], tmp_path: Path
) -> None:
    _, secret, key = make_key()
    env = {
        "VDT_AI_BOOTSTRAP_SERVERS": SASL,
        "VDT_AI_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "VDT_AI_API_KEY": key,
        "VDT_AI_SPOOL_DIR": str(tmp_path / "spool"),
        "VDT_AI_SHUTDOWN_TIMEOUT": "1",
        "VDT_AI_DELIVERY_TIMEOUT": "2",
    }
    result = CliRunner().invoke(
        main, ["-vv"] + args, env=env, input=json.dumps({"name": "m", "value": 1})
    )
    from loguru import logger

    logger.remove()
    logger.disable("vdt_ai")
    assert secret not in result.output
    assert secret not in str(result.exception or "")
