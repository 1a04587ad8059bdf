"""Release checks: the packages users install, the examples, the dev broker script.

The dev broker is shared by everything on a machine, so a test that stops or
restarts it holds ``/tmp/vdt-broker.lock`` (the lock every script that starts,
stops or pauses the broker takes) unless a process above it already holds it,
e.g. ``flock /tmp/vdt-broker.lock bash .ci/run``.
"""

import fcntl
import os
import subprocess
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest

from .._broker import BROKER_LOCK, lock_held_above, under_broker_lock

ROOT = Path(__file__).resolve().parents[2]
KAFKA_DEV = ROOT / "scripts" / "kafka-dev"
BOOTSTRAP = "127.0.0.1:9092"
READ_ONLY = ("status", "logs")


@pytest.fixture
def broker_lock() -> Iterator[None]:
    """Holds the shared broker's lock for the test (see the module docstring)."""
    if lock_held_above():
        yield
        return
    handle = os.open(BROKER_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def kafka_dev(
    *args: str, timeout: float = 300, env: Optional[Dict[str, str]] = None
) -> "subprocess.CompletedProcess[str]":
    """Runs scripts/kafka-dev with ``args`` (and ``env`` added to the environment);
    under the broker's lock unless it only reads (``status``, ``logs``)."""
    command = ["bash", str(KAFKA_DEV), *args]
    if args[0] not in READ_ONLY:
        command = under_broker_lock(command)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def broker() -> str:
    """The dev broker's address; started when it does not answer."""
    if kafka_dev("status").returncode != 0:
        result = kafka_dev("up")
        assert result.returncode == 0, result.stderr[-3000:]
    return BOOTSTRAP
