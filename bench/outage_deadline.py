"""Broker down: peak RSS and caller latency; does ``close()`` keep its deadline.

Two measurements, each in a fresh subprocess so that ``ru_maxrss`` (peak RSS)
belongs to that measurement alone. The broker is "down" throughout: clients
point at 127.0.0.1:1, where nothing listens (the dev broker is left alone).

1. Outage: ``--events`` calls (default 1,000,000; 300,000 when the temp
   folder has under 5 GB free), alternating ``log_metric`` and
   ``log_model_call`` (the sketch's payload), default settings except a
   temporary ``spool_dir`` and ``spool_max_bytes`` = 2 GiB. Each call is timed
   with ``perf_counter_ns`` into a preallocated array. Peak RSS is compared
   with a baseline process that imports vdt_ai and allocates the same timing
   array, but builds no client. Then ``close()`` (default
   ``shutdown_timeout``) is timed, and the spool's records are counted.
2. Close deadline: N events (``--close-events``, default 20,000 and 131,000)
   queued with ``max_buffer_kbytes`` = 256 MiB, then ``close(1.0)`` is timed
   (goal: 1 s +- 0.5 s). The spool is read back with
   ``vdt_ai.spool.iter_events`` and matched, by event id, with the ids the
   ``log_*`` calls returned: right after ``close()`` returns, and again after
   the process has exited (its exit flush included). Every accepted event must
   be there. Each N runs ``--repeat`` times; the median is printed.

``--compare SRC`` runs the same children with ``PYTHONPATH=SRC`` (e.g. an old
release's ``src``) and prints both side by side, with ratios this/compare.

Run: ``python bench/outage_deadline.py [--events N] [--compare /path/to/src]``.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from array import array
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from _common import SKETCH, percentile

CLOSED_PORT = "127.0.0.1:1"  # nothing listens there: the broker is down
SPOOL_MAX_BYTES = 2 * 1024**3
CLOSE_BUFFER_KBYTES = 256 * 1024
MIN_FREE_FOR_1M = 5 * 1000**3
SMALL_RUN = 300_000

Result = Dict[str, Any]


# -- helpers used in the children ---------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def latency_row(values_ns: Sequence[int]) -> Dict[str, float]:
    """p50, p99, p99.9 and max in microseconds."""
    ordered = sorted(values_ns)
    return {
        "p50_us": percentile(ordered, 0.5) / 1000,
        "p99_us": percentile(ordered, 0.99) / 1000,
        "p999_us": percentile(ordered, 0.999) / 1000,
        "max_us": ordered[-1] / 1000,
    }


def new_client(spool: Path, **settings: Any) -> Any:
    from vdt_ai import VDTClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VDTClient(
            bootstrap_servers=CLOSED_PORT,
            spool_dir=spool,
            spool_max_bytes=SPOOL_MAX_BYTES,
            **settings,
        )


def code_location() -> str:
    import vdt_ai

    return str(Path(vdt_ai.__file__).parent)


def child_baseline(events: int) -> Result:
    # What a client loads (``import vdt_ai`` alone loads names on first use).
    from vdt_ai import VDTClient  # noqa: F401  (the import is what is measured)

    timings = array("q", bytes(8 * events))  # the same array as the outage run
    return {"peak_rss_mib": peak_rss_mib(), "timings": len(timings)}


def child_outage(events: int, workdir: Path) -> Result:
    import vdt_ai.spool

    timings = array("q", bytes(8 * events))
    rss_start = peak_rss_mib()
    spool = workdir / "spool"
    client = new_client(spool)
    log_metric = client.log_metric
    log_model_call = client.log_model_call
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for i in range(0, events - 1, 2):
        start = clock()
        log_metric("val_loss", 0.25, step=i)
        middle = clock()
        log_model_call(**SKETCH)
        timings[i] = middle - start
        timings[i + 1] = clock() - middle
    if events % 2:
        start = clock()
        log_metric("val_loss", 0.25, step=events)
        timings[events - 1] = clock() - start
    logging_s = time.perf_counter() - started
    at_loop_end = client.stats().as_dict()
    peak_logging = peak_rss_mib()
    started = time.perf_counter()
    client.close()
    close_s = time.perf_counter() - started
    after_close = client.stats().as_dict()
    peak = peak_rss_mib()
    records = sum(1 for _ in vdt_ai.spool.iter_records(spool))
    return {
        "events": events,
        "code": code_location(),
        "logging_s": logging_s,
        "rss_before_client_mib": rss_start,
        "peak_rss_logging_mib": peak_logging,
        "peak_rss_mib": peak,
        "shutdown_timeout": client.shutdown_timeout,
        "close_s": close_s,
        "stats_loop_end": at_loop_end,
        "stats_after_close": after_close,
        "spool_records": records,
        "spool_mib": folder_bytes(spool) / 1024**2,
        "all": latency_row(timings),
        "log_metric": latency_row(timings[0::2]),
        "log_model_call": latency_row(timings[1::2]),
    }


def count_spool(spool: Path, ids_file: Path) -> Dict[str, int]:
    """Spooled events, unique ids among them, and accepted ids not there."""
    from vdt_ai.spool import iter_events

    accepted = set(ids_file.read_text().split())
    seen: List[str] = [str(event.event_id) for event in iter_events(spool)]
    unique = set(seen)
    return {
        "spooled_events": len(seen),
        "unique": len(unique),
        "missing": len(accepted - unique),
        "extra": len(unique - accepted),
    }


def child_close(events: int, workdir: Path) -> Result:
    spool = workdir / "spool"
    client = new_client(spool, max_buffer_kbytes=CLOSE_BUFFER_KBYTES)
    ids: List[str] = []
    started = time.perf_counter()
    for _ in range(events):
        event_id = client.log_model_call(**SKETCH)
        if event_id is not None:
            ids.append(str(event_id))
    logging_s = time.perf_counter() - started
    (workdir / "ids.txt").write_text("\n".join(ids))
    before_close = client.stats().as_dict()
    started = time.perf_counter()
    client.close(1.0)
    close_s = time.perf_counter() - started
    after_close = client.stats().as_dict()
    counted = count_spool(spool, workdir / "ids.txt")
    return {
        "events": events,
        "code": code_location(),
        "logging_s": logging_s,
        "returned_ids": len(ids),
        "close_s": close_s,
        "stats_before_close": before_close,
        "stats_after_close": after_close,
        "at_close": counted,
        "peak_rss_mib": peak_rss_mib(),
    }


def child_count(workdir: Path) -> Result:
    return dict(count_spool(workdir / "spool", workdir / "ids.txt"))


def child_main(argv: List[str]) -> None:
    mode = argv[0]
    result: Result
    if mode == "baseline":
        result = child_baseline(int(argv[1]))
    elif mode == "outage":
        result = child_outage(int(argv[1]), Path(argv[2]))
    elif mode == "close":
        result = child_close(int(argv[1]), Path(argv[2]))
    else:
        result = child_count(Path(argv[1]))
    print("RESULT " + json.dumps(result), flush=True)


# -- the parent ---------------------------------------------------------------


def run_child(src: Optional[str], *argv: str, timeout: float = 600.0) -> Result:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: Result = json.loads(line[len("RESULT ") :])
            result["exit_code"] = done.returncode
            return result
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def measure_outage(src: Optional[str], events: int) -> Result:
    baseline = run_child(src, "baseline", str(events))
    workdir = Path(tempfile.mkdtemp(prefix="vdt-ai-outage-"))
    try:
        outage = run_child(src, "outage", str(events), str(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    outage["baseline_rss_mib"] = baseline.get("peak_rss_mib", float("nan"))
    return outage


def measure_close(src: Optional[str], events: int) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="vdt-ai-close-"))
    try:
        result = run_child(src, "close", str(events), str(workdir))
        if "error" not in result:
            result["after_exit"] = run_child(src, "count", str(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec)


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return ""
    return f"{a / b:.2f}x"


def print_rows(
    labels: Sequence[str],
    rows: Sequence[Sequence[Any]],
    spec: str = ",.0f",
    header: bool = False,
) -> None:
    """One line per row: a name, one column per code version, the ratio."""
    if header:
        print(f"  {'':34s}" + "".join(f"{label:>16s}" for label in labels), end="")
        print("   ratio" if len(labels) == 2 else "")
    for row in rows:
        name, values = row[0], row[1:]
        line = f"  {name:34s}" + "".join(f"{fmt(v, spec):>16s}" for v in values)
        if len(values) == 2:
            line += f"   {ratio(values[0], values[1])}"
        print(line)


def get(result: Result, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def report_outage(labels: Sequence[str], results: Sequence[Result]) -> None:
    events = results[0].get("events", 0)
    print(f"\n1. Outage: {events:,} log_* calls, broker down ({CLOSED_PORT})")
    for label, result in zip(labels, results):
        if "error" in result:
            print(f"  {label}: FAILED: {result['error']}")
    print_rows(
        labels,
        [
            ("baseline peak RSS (MiB)", *[r.get("baseline_rss_mib") for r in results]),
            (
                "peak RSS, logging (MiB)",
                *[r.get("peak_rss_logging_mib") for r in results],
            ),
            ("peak RSS, with close() (MiB)", *[r.get("peak_rss_mib") for r in results]),
            (
                "peak RSS - baseline (MiB)",
                *[
                    (
                        (r["peak_rss_mib"] - r["baseline_rss_mib"])
                        if "peak_rss_mib" in r
                        else None
                    )
                    for r in results
                ],
            ),
        ],
        header=True,
    )
    print_rows(
        labels,
        [("logging time (s)", *[r.get("logging_s") for r in results])]
        + [
            (f"close() (s), timeout {fmt(results[0].get('shutdown_timeout'), 'g')}",)
            + tuple(r.get("close_s") for r in results)
        ],
        ",.2f",
    )
    print("  caller latency per call (us):")
    for kind in ("all", "log_metric", "log_model_call"):
        print_rows(
            labels,
            [
                (f"{kind} {name}", *[get(r, kind, key) for r in results])
                for name, key in (
                    ("p50", "p50_us"),
                    ("p99", "p99_us"),
                    ("p99.9", "p999_us"),
                    ("max", "max_us"),
                )
            ],
            ",.1f",
        )
    rows: List[Sequence[Any]] = []
    for when in ("stats_loop_end", "stats_after_close"):
        for key in ("accepted", "spooled", "dropped", "failed", "delivered"):
            rows.append((f"{key} ({when[6:]})", *[get(r, when, key) for r in results]))
    rows.append(("records in the spool", *[r.get("spool_records") for r in results]))
    rows.append(("spool on disk (MiB)", *[r.get("spool_mib") for r in results]))
    print_rows(labels, rows)
    for label, result in zip(labels, results):
        if "error" in result:
            continue
        worst = result["all"]["max_us"] / 1000
        print(f"  {label}: max log_* {worst:.1f} ms (goal < 20 ms): ", end="")
        print("met" if worst < 20 else "NOT met")


def median_of(runs: Sequence[Result], *path: str) -> Any:
    values = [get(r, *path) for r in runs]
    numbers = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(numbers) if numbers else None


def report_close(
    labels: Sequence[str], results: Sequence[Dict[int, List[Result]]]
) -> None:
    print("\n2. close(1.0) with events queued, broker down, max_buffer_kbytes 256 MiB")
    for events in results[0]:
        runs = [by_n[events] for by_n in results]
        print(f"  {events:,} events queued, {len(runs[0])} runs each (median; all):")
        for label, per_code in zip(labels, runs):
            errors = [r["error"] for r in per_code if "error" in r]
            if errors:
                print(f"  {label}: FAILED: {errors[0]}")
        print_rows(
            labels,
            [
                ("close(1.0) (s)", *[median_of(rs, "close_s") for rs in runs]),
            ],
            ",.2f",
            header=True,
        )
        for label, per_code in zip(labels, runs):
            times = ", ".join(fmt(r.get("close_s"), ".2f") for r in per_code)
            print(f"  {'':4s}{label} close() each run: {times}")
        print_rows(
            labels,
            [
                (
                    "accepted (ids returned)",
                    *[median_of(rs, "returned_ids") for rs in runs],
                ),
                (
                    "stats accepted after close",
                    *[median_of(rs, "stats_after_close", "accepted") for rs in runs],
                ),
                (
                    "stats spooled after close",
                    *[median_of(rs, "stats_after_close", "spooled") for rs in runs],
                ),
                (
                    "stats dropped+failed after close",
                    *[
                        (
                            median_of(rs, "stats_after_close", "dropped")
                            + median_of(rs, "stats_after_close", "failed")
                            if median_of(rs, "stats_after_close", "dropped") is not None
                            else None
                        )
                        for rs in runs
                    ],
                ),
                (
                    "in spool when close() returns",
                    *[median_of(rs, "at_close", "spooled_events") for rs in runs],
                ),
                (
                    "  accepted ids missing",
                    *[median_of(rs, "at_close", "missing") for rs in runs],
                ),
                (
                    "in spool after the process exits",
                    *[median_of(rs, "after_exit", "spooled_events") for rs in runs],
                ),
                (
                    "  accepted ids missing",
                    *[median_of(rs, "after_exit", "missing") for rs in runs],
                ),
                (
                    "  duplicates",
                    *[
                        (
                            median_of(rs, "after_exit", "spooled_events")
                            - median_of(rs, "after_exit", "unique")
                            if median_of(rs, "after_exit", "unique") is not None
                            else None
                        )
                        for rs in runs
                    ],
                ),
                ("peak RSS (MiB)", *[median_of(rs, "peak_rss_mib") for rs in runs]),
            ],
        )
        for label, per_code in zip(labels, runs):
            ok = [r for r in per_code if "error" not in r]
            deadline = all(r["close_s"] <= 1.5 for r in ok) and len(ok) == len(per_code)
            complete = all(
                get(r, "after_exit", "missing") == 0
                and get(r, "at_close", "missing") == 0
                for r in ok
            ) and len(ok) == len(per_code)
            print(
                f"  {label}: deadline kept (<= 1.5 s) in every run: "
                f"{'yes' if deadline else 'NO'}; every accepted event spooled: "
                f"{'yes' if complete else 'NO'}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument(
        "--close-events",
        default="20000,131000",
        help="comma-separated queue sizes for the close() measurement",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--compare", metavar="SRC", help="also run with PYTHONPATH=SRC, side by side"
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child)
        return

    free = shutil.disk_usage(tempfile.gettempdir()).free
    events = args.events
    if events is None:
        events = 1_000_000 if free >= MIN_FREE_FOR_1M else SMALL_RUN
        if events == SMALL_RUN:
            print(
                f"note: {free / 1000**3:.1f} GB free in {tempfile.gettempdir()}, "
                f"under 5 GB: {SMALL_RUN:,} events instead of 1,000,000"
            )
    sources: List[Optional[str]] = [None]
    labels = ["this"]
    if args.compare:
        sources.append(args.compare)
        labels.append("compare")
    outage = [measure_outage(src, events) for src in sources]
    close_sizes = [int(n) for n in args.close_events.split(",") if n]
    closing: List[Dict[int, List[Result]]] = [{} for _ in sources]
    for n in close_sizes:
        for _ in range(args.repeat):  # alternate the code versions per run
            for index, src in enumerate(sources):
                closing[index].setdefault(n, []).append(measure_close(src, n))

    for label, result in zip(labels, outage):
        print(f"{label}: vdt_ai from {result.get('code', '?')}")
    print(f"{free / 1000**3:.0f} GB free in {tempfile.gettempdir()}")
    report_outage(labels, outage)
    report_close(labels, closing)


if __name__ == "__main__":
    main()
