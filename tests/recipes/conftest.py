"""Recipe tests: the apps of examples/recipes run as their servers run them
(uvicorn, gunicorn, a Celery worker, a Jupyter kernel) against the dev broker,
and every event is counted by id with a consumer."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set

import pytest
from confluent_kafka import Consumer

from vdt_ai.codec import LOGGED_SUFFIXES

from .._broker import under_broker_lock

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "examples" / "recipes"
KAFKA_DEV = str(ROOT / "scripts" / "kafka-dev")
BOOTSTRAP = "127.0.0.1:9092"


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """The dev broker, started (under the shared lock) when not answering."""
    if subprocess.run(["bash", KAFKA_DEV, "status"], capture_output=True).returncode:
        done = subprocess.run(
            under_broker_lock(["bash", KAFKA_DEV, "up"]),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    yield BOOTSTRAP


@pytest.fixture
def app_env(broker: str, tmp_path: Path) -> Dict[str, str]:
    """Environment of a recipe's processes: the dev broker, a topic prefix of
    this test's own, private config/spool folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDT_AI_")}
    env.update(
        VDT_AI_BOOTSTRAP_SERVERS=broker,
        VDT_AI_TOPIC_PREFIX="rcp" + uuid.uuid4().hex[:10],
        VDT_AI_SPOOL_DIR=str(tmp_path / "spool"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        HOME=str(tmp_path),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(RECIPES)]),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, process: "subprocess.Popen[bytes]", timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


def count_by_id(
    prefix: str,
    expected: Set[str],
    timeout: float = 60.0,
    on_value: Optional[Callable[[bytes], None]] = None,
    at_least: int = 0,
) -> Dict[str, int]:
    """Reads the prefix's topics from the start until every expected event id
    (and ``at_least`` distinct ids) arrived, or ``timeout``; returns event id
    -> how many records carried it. ``on_value`` sees every record's value."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": "count-" + uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([f"{prefix}.{s}" for s in LOGGED_SUFFIXES])
    seen: Dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if expected <= set(seen) and len(seen) >= at_least:
                    break
                continue
            headers = dict(message.headers() or [])
            event_id = str(headers["vdt-event-id"], "ascii")  # type: ignore[arg-type]
            seen[event_id] = seen.get(event_id, 0) + 1
            if on_value is not None:
                on_value(message.value() or b"")
    finally:
        consumer.close()
    return seen


def assert_all_once(seen: Dict[str, int], expected: Set[str]) -> None:
    missing = expected - set(seen)
    assert not missing, f"{len(missing)} of {len(expected)} events never arrived"
    assert set(seen) == expected, "events nobody logged arrived"
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates == 0, f"{duplicates} duplicates"


def stop(process: "subprocess.Popen[bytes]", timeout: float = 30.0) -> List[str]:
    """SIGTERM, as a process manager stops a server; returns its output lines."""
    process.terminate()
    out, _ = process.communicate(timeout=timeout)
    return out.decode(errors="replace").splitlines()
