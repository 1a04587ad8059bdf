"""The shared dev broker's lock.

The dev broker (``scripts/kafka-dev``, 127.0.0.1:9092) is shared by everything
on a machine: every command that starts, stops, resets or pauses it runs under
``flock /tmp/vdt-broker.lock`` (``flock`` creates the file), unless a process
above already holds that lock, e.g. ``flock /tmp/vdt-broker.lock bash .ci/run``:
a second flock on it from below would wait for ever.
"""

import os
import shutil
from pathlib import Path
from typing import List, Set

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


def under_broker_lock(command: List[str]) -> List[str]:
    """``command`` prefixed with ``flock /tmp/vdt-broker.lock``, unless the
    lock is held above already or there is no ``flock`` (not Linux)."""
    if shutil.which("flock") is None or lock_held_above():
        return command
    return ["flock", str(BROKER_LOCK), *command]
