"""Offline mode, one ``log_model_call`` appended to the spool, beside its floor.

The row "offline spool" of ``table.py``, with more rounds and the steps that
make it up, each measured in the same process in rounds that alternate with
the ``json.dumps`` floor's:

- ``floor``: ``json.dumps`` of the call's fields, encoded;
- ``pipeline, no-op transport``: the call with a transport that drops the
  record (what the spool adds nothing to);
- ``pipeline + one write()``: that, plus one ``os.write`` of the event's bytes
  to a file on the same disk, the least a record on disk costs (the spool's
  promise: a record accepted is in the OS page cache when the call returns);
- ``offline spool``: the client with no brokers (``SpoolTransport``);
- with ``--ref REV``: the same client with the spool module of git revision
  ``REV`` (``git show REV:src/vdt_ai/spool.py``), to compare two versions of
  the spool side by side in one run.

Figures are medians over rounds of each round's median call; ratios are the
median of each round's ratio to the floor measured just before it.
Run: ``python bench/offline_spool.py [--rounds 21] [--ref main]``.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

from _common import SKETCH
from table import NoOpTransport, _median_p99, _quiet_client, _sketch_call, _timed_calls

from vdt_ai import VDTClient
from vdt_ai.transport import Counters


def _spool_at(rev: str) -> ModuleType:
    """``vdt_ai.spool`` as it is at git revision ``rev``, as its own module."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:src/vdt_ai/spool.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = "vdt_ai._spool_" + "".join(c if c.isalnum() else "_" for c in rev)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "vdt_ai"
    exec(compile(source, f"{rev}:spool.py", "exec"), module.__dict__)
    return module


class _OneWrite(NoOpTransport):
    """One ``write()`` of the event's bytes per record, nothing else."""

    def __init__(self, folder: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        self._fd = os.open(os.path.join(folder, "one-write"), flags, 0o600)

    def send(self, record: Any, counters: Counters) -> None:
        os.write(self._fd, record.value)

    def close(self, timeout: Optional[float] = None) -> None:
        os.close(self._fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=4_000, help="per round")
    parser.add_argument("--ref", metavar="REV", help="also the spool of git REV")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vdt-offline-bench-") as folder:
        run(args, folder)


def run(args: argparse.Namespace, folder: str) -> None:
    """Measures every path with its files under ``folder`` and prints them."""
    dumps = json.dumps

    def floor() -> None:
        dumps(SKETCH).encode()

    clients: Dict[str, VDTClient] = {
        "pipeline, no-op transport": _quiet_client(transport=NoOpTransport()),
        "pipeline + one write()": _quiet_client(transport=_OneWrite(folder)),
        "offline spool": _quiet_client(
            spool_dir=os.path.join(folder, "now"), bootstrap_servers=None
        ),
    }
    if args.ref:
        old = _spool_at(args.ref)
        transport = old.SpoolTransport(os.path.join(folder, "ref"), 1 << 30)
        clients[f"offline spool at {args.ref}"] = _quiet_client(transport=transport)
    paths: Dict[str, Callable[[], Any]] = {
        name: _sketch_call(client) for name, client in clients.items()
    }
    for call in [floor, *paths.values()]:
        _timed_calls(call, 2_000, [])  # warm-up
    floor_us: List[float] = []
    path_us: Dict[str, List[float]] = {name: [] for name in paths}
    ratios: Dict[str, List[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, call in paths.items():
            out: List[int] = []
            _timed_calls(floor, args.calls, out)
            floor_us.append(_median_p99(out)[0])
            out = []
            _timed_calls(call, args.calls, out)
            path_us[name].append(_median_p99(out)[0])
            ratios[name].append(path_us[name][-1] / floor_us[-1])
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"{args.rounds} rounds of {args.calls} calls"
    )
    for client in clients.values():
        client.close()
    print("| path | median µs | min of rounds µs | ratio to the floor |")
    print("|---|---|---|---|")
    print(
        f"| json.dumps floor | {statistics.median(floor_us):.2f} "
        f"| {min(floor_us):.2f} | 1.00x |"
    )
    for name in paths:
        print(
            f"| {name} | {statistics.median(path_us[name]):.2f} "
            f"| {min(path_us[name]):.2f} | {statistics.median(ratios[name]):.2f}x |"
        )


if __name__ == "__main__":
    main()
