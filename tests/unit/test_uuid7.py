"""UUIDv7 event ids."""

import os
import random
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
