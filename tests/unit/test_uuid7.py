"""UUIDv7 event ids."""

import os
import random
import signal
import subprocess
import sys
import time
import uuid
import warnings

import pytest

from vdt_ai._uuid7 import uuid7


def test_layout_version_variant_and_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after
    assert uuid.UUID(str(value)) == value  # a well-formed UUID object
    assert value == uuid.UUID(int=value.int) and hash(value) == hash(
        uuid.UUID(int=value.int)
    )


def test_monotonic_within_a_process_even_in_one_millisecond() -> None:
    ids = [uuid7() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_global_random_seed_does_not_repeat_ids() -> None:
    random.seed(42)
    first = uuid7()
    random.seed(42)
    assert uuid7() != first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
def test_forked_children_do_not_share_random_bits() -> None:
    read_end, write_end = os.pipe()
    pids = []
    for _ in range(2):
        with warnings.catch_warnings():  # 3.12+: fork() with threads alive
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            try:
                os.write(write_end, uuid7().bytes[-8:])
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    data = os.read(read_end, 16)
    os.close(read_end)
    os.close(write_end)
    assert len(data) == 16 and data[:8] != data[8:]


_HANDLER_INSIDE_THE_LOCKS = """
import signal
from vdt_ai import _redact, _uuid7
done = []

def handler(signum, frame):
    # What SIGTERM's exit procedure does: it closes the clients, whose final
    # SdkReport draws an id, and logs (redacted).
    done.append(_uuid7.uuid7())
    done.append(_redact.redact("vdt_abcdefabcdef_" + "x" * 32))

signal.signal(signal.SIGUSR1, handler)
for lock in (_uuid7._lock, _redact._lock):
    with lock:  # the main thread inside next_stamp() or redact()
        signal.raise_signal(signal.SIGUSR1)  # the handler runs in here
        done.append(None)
print(len(done))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
def test_a_signal_handler_inside_a_draw_draws_without_deadlock() -> None:
    # The handler runs between two bytecodes of the main thread; with a plain
    # Lock it waited for itself and the process hung (killed by the timeout).
    try:
        done = subprocess.run(
            [sys.executable, "-c", _HANDLER_INSIDE_THE_LOCKS],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a handler drawing an id inside next_stamp()'s lock deadlocked")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6"]
