"""Peak memory while logging with Kafka down.

Points a client at a port where no broker listens, so the broker is "down"
from the first call to the last (the dev broker, if running, is left alone),
and logs events with the sketch's payload. The in-memory queue holds
``max_buffer_kbytes``; the rest must spill to the disk spool, so resident
memory stays bounded however many events are logged. Prints the peak RSS, the
RSS before logging, the bound (``max_buffer_kbytes`` + 150 MiB) and where the
events went.

Run: ``python bench/outage_memory.py [--events 1000000]``.
"""

import argparse
import resource
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path

from _common import SKETCH

from vdt_ai import VDTClient


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--max-buffer-kbytes", type=int, default=32 * 1024)
    args = parser.parse_args()

    spool = Path(tempfile.mkdtemp(prefix="vdt-ai-outage-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = VDTClient(
            bootstrap_servers=f"127.0.0.1:{free_port()}",  # nothing listens there
            spool_dir=spool,
            max_buffer_kbytes=args.max_buffer_kbytes,
            spool_max_bytes=8 * 1024**3,
            shutdown_timeout=0.0,
            handle_sigterm=False,
        )
    client.log_model_call(**SKETCH)
    before = rss_mib()
    start = time.perf_counter()
    for _ in range(args.events - 1):
        client.log_model_call(**SKETCH)
    elapsed = time.perf_counter() - start
    after = rss_mib()
    stats = client.stats()
    queued = len(client.transport.shared)  # type: ignore[attr-defined]
    spool_bytes = sum(p.stat().st_size for p in spool.glob("*.vdtspool"))
    client.close(0.0)
    peak = peak_rss_mib()
    bound = args.max_buffer_kbytes / 1024 + 150

    print(f"events logged: {args.events:,} in {elapsed:.1f} s, broker unreachable")
    print(f"RSS before logging: {before:.0f} MiB, after: {after:.0f} MiB")
    print(
        f"peak RSS: {peak:.0f} MiB; bound: buffer "
        f"{args.max_buffer_kbytes / 1024:.0f} MiB + 150 MiB = {bound:.0f} MiB"
    )
    print(f"held to bound: {'yes' if peak <= bound else 'NO'}")
    print(
        f"in memory queue at the end: {queued:,}; spooled: {stats.spooled:,} "
        f"({spool_bytes / 1024**2:.0f} MiB on disk); dropped: {stats.dropped}; "
        f"failed: {stats.failed}"
    )
    shutil.rmtree(spool)


if __name__ == "__main__":
    main()
