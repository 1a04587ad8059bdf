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
from typing import Dict, Iterator, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[2]
KAFKA_DEV = ROOT / "scripts" / "kafka-dev"
BOOTSTRAP = "127.0.0.1:9092"
BROKER_LOCK = Path("/tmp/vdt-broker.lock")


def _ancestors() -> Set[int]:
    pids = set()
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent
    return pids


def lock_held_above(path: Path = BROKER_LOCK) -> bool:
    """True when this process or one of its ancestors holds a flock on ``path``."""
    try:
        st = path.stat()
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return False
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    ancestors = _ancestors()
    for line in locks:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (a waiter has "->")
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        pid, where = int(fields[4]), fields[5]
        if where.lower() == ident.lower() and pid in ancestors:
            return True
    return False


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
    """Runs scripts/kafka-dev with ``args`` (and ``env`` added to the environment)."""
    return subprocess.run(
        ["bash", str(KAFKA_DEV), *args],
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
