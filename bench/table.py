"""Every row of the performance table, SDK beside its floor, in one run.

Rows (issue 12): the caller cost of ``log_model_call`` to the local broker,
acked throughput from one thread, the bulk ``log_model_calls`` on a no-op
transport (and the memory it holds after returning), offline spool appends,
and ``import vdt_ai``. Each floor is measured in the same process (the import
in subprocesses), in rounds that alternate with the SDK's so that machine
noise hits both alike; figures are medians over rounds.

Needs the broker for the first two rows: ``scripts/kafka-dev up`` (or pass
``--skip-kafka``). Run: ``python bench/table.py``.
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from _common import BOOTSTRAP, SKETCH, PollThread, bench_spool_dir, percentile

from vdt_ai import VDTClient
from vdt_ai.transport import Counters, Transport

Row = Tuple[str, str, str, str]
# For the chart: each row's cost as a multiple of its floor's (1 = the floor;
# a throughput ratio r is drawn as 1/r), and the target in the same
# terms.
COSTS: Dict[str, Tuple[float, Optional[float]]] = {}


class NoOpTransport(Transport):
    """Takes every record and forgets it (the bulk row's transport)."""

    def send(self, record: Any, counters: Counters) -> None:
        return None


def _quiet_client(**settings: Any) -> VDTClient:
    if settings.get("bootstrap_servers"):
        settings.setdefault("spool_dir", bench_spool_dir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VDTClient(handle_sigterm=False, **settings)


def _timed_calls(call: Callable[[], Any], calls: int, out: List[int]) -> None:
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        call()
        out.append(clock() - start)


def _median_p99(values_ns: List[int]) -> Tuple[float, float]:
    ordered = sorted(values_ns)
    return percentile(ordered, 0.5) / 1000, percentile(ordered, 0.99) / 1000


def _alternate(
    sdk_round: Callable[[], float], floor_round: Callable[[], float], rounds: int
) -> Tuple[float, float]:
    """Medians of the SDK's and the floor's rates, rounds alternating (after
    one warm-up round each)."""
    sdk_round()
    floor_round()
    sdk_rates: List[float] = []
    floor_rates: List[float] = []
    for _ in range(rounds):
        floor_rates.append(floor_round())
        sdk_rates.append(sdk_round())
    return statistics.median(sdk_rates), statistics.median(floor_rates)


def _sketch_call(client: VDTClient) -> Callable[[], Any]:
    log = client.log_model_call

    def call() -> Any:
        return log(
            model_name="recommendation_model",
            input_data={"user_id": 123},
            prediction={"items": [1, 2, 3]},
            latency_ms=45,
        )

    return call


def caller_cost(args: argparse.Namespace) -> List[Row]:
    """log_model_call to the broker vs json.dumps + raw produce."""
    from confluent_kafka import Producer

    from vdt_ai.kafka.config import producer_config

    prefix = "bench" + uuid.uuid4().hex[:8]
    client = _quiet_client(
        bootstrap_servers=args.bootstrap_servers, topic_prefix=prefix
    )
    raw = Producer(producer_config(client.settings))
    poller = PollThread(raw)
    topic = f"{prefix}.raw"
    dumps = json.dumps
    produce = raw.produce

    def on_delivery(error: Any, message: Any) -> None:
        pass

    def floor() -> None:
        produce(
            topic,
            dumps(SKETCH).encode(),
            b"recommendation_model",
            on_delivery=on_delivery,
        )

    sdk = _sketch_call(client)
    _timed_calls(sdk, 2000, [])
    _timed_calls(floor, 2000, [])
    client.flush(30)
    raw.flush(30)
    floor_ns: List[int] = []
    sdk_ns: List[int] = []
    gc.collect()
    for _ in range(args.rounds):
        _timed_calls(floor, args.calls, floor_ns)
        raw.flush(30)
        _timed_calls(sdk, args.calls, sdk_ns)
        client.flush(30)
    stats = client.stats()
    client.close()
    f_med, f_p99 = _median_p99(floor_ns)
    s_med, s_p99 = _median_p99(sdk_ns)
    delivered = stats.delivered == stats.accepted
    COSTS["single call, median"] = (s_med / f_med, 2.2)
    COSTS["single call, p99"] = (s_p99 / f_p99, 3.0)
    peer_rows = _peer_rows(args, floor) if args.peers else []
    poller.stop()
    return [
        (
            "log_model_call to broker, median / p99",
            f"{s_med:.1f} / {s_p99:.1f} µs",
            f"json.dumps+produce {f_med:.1f} / {f_p99:.1f} µs",
            f"{s_med / f_med:.2f}x / {s_p99 / f_p99:.2f}x"
            + ("" if delivered else f" (delivered {stats.delivered}!)"),
        )
    ] + peer_rows


def _peer_rows(args: argparse.Namespace, floor: Callable[[], None]) -> List[Row]:
    """Each peer's caller cost (bench/peers.py), one peer at a time, in rounds
    alternating with the same floor as the SDK's."""
    import peers

    rows: List[Row] = []
    for name in peers.PEERS:
        peer, why = peers.start(name, args.bootstrap_servers)
        if peer is None:
            print(f"peer left out: {why}")
            continue
        _, call, settle, close = peer
        _timed_calls(call, 1000, [])
        settle()
        floor_ns: List[int] = []
        peer_ns: List[int] = []
        for _ in range(args.rounds):
            _timed_calls(floor, args.peer_calls, floor_ns)
            _timed_calls(call, args.peer_calls, peer_ns)
            settle()
        close()
        f_med, f_p99 = _median_p99(floor_ns)
        p_med, p_p99 = _median_p99(peer_ns)
        COSTS[f"peer: {name}, median"] = (p_med / f_med, None)
        rows.append(
            (
                f"  peer: {name}, median / p99",
                f"{p_med:.1f} / {p_p99:.1f} µs",
                f"json.dumps+produce {f_med:.1f} / {f_p99:.1f} µs",
                f"{p_med / f_med:.2f}x / {p_p99 / f_p99:.2f}x",
            )
        )
    return rows


def throughput(args: argparse.Namespace) -> List[Row]:
    """Events acked per second from one thread vs raw produce of json.dumps."""
    from confluent_kafka import Producer

    from vdt_ai.kafka.config import producer_config

    prefix = "bench" + uuid.uuid4().hex[:8]
    client = _quiet_client(
        bootstrap_servers=args.bootstrap_servers, topic_prefix=prefix
    )
    raw = Producer(producer_config(client.settings))
    topic = f"{prefix}.raw"
    events: int = args.events

    spooled_before = client.stats().spooled

    def sdk_round() -> float:
        # Acked live or, past the 10,000-record queue, via the spool and replay.
        stats = client.stats()
        before = stats.delivered + stats.replayed
        log = client.log_model_call
        start = time.perf_counter()
        for _ in range(events):
            log(**SKETCH)
        client.flush(120)
        elapsed = time.perf_counter() - start
        stats = client.stats()
        done = stats.delivered + stats.replayed - before
        if done != events:
            raise SystemExit(f"SDK delivered {done} of {events}: {client.stats()}")
        return events / elapsed

    def floor_round() -> float:
        acked = [0]

        def on_delivery(error: Any, message: Any) -> None:
            if error is None:
                acked[0] += 1

        produce = raw.produce
        dumps = json.dumps
        start = time.perf_counter()
        for _ in range(events):
            value = dumps(SKETCH).encode()
            while True:
                try:
                    produce(
                        topic, value, b"recommendation_model", on_delivery=on_delivery
                    )
                    break
                except BufferError:
                    raw.poll(0.01)
            raw.poll(0)
        raw.flush(120)
        elapsed = time.perf_counter() - start
        assert acked[0] == events
        return events / elapsed

    sdk, floor = _alternate(sdk_round, floor_round, args.rounds)
    # Events that went through the spool (a full queue) rather than live.
    spooled = client.stats().spooled - spooled_before
    client.close()
    COSTS["acked throughput"] = (floor / sdk, 1 / 0.5)
    return [
        (
            "acked throughput, one thread",
            f"{sdk / 1000:.1f}k events/s ({spooled} spooled)",
            f"raw produce of json.dumps {floor / 1000:.1f}k msg/s",
            f"{sdk / floor:.2f}",
        )
    ]


def _bulk_rows(count: int) -> List[Dict[str, Any]]:
    return [
        {
            "input_data": {"user_id": i},
            "prediction": {"items": [i, i + 1, i + 2]},
            "latency_ms": 45.0 + i % 7,
        }
        for i in range(count)
    ]


def bulk(args: argparse.Namespace) -> List[Row]:
    """log_model_calls on a no-op transport vs json.dumps of each row."""
    rows = _bulk_rows(args.rows)
    client = _quiet_client(transport=NoOpTransport())
    dumps = json.dumps

    def sdk_round() -> float:
        start = time.perf_counter()
        ids = client.log_model_calls(rows, model_name="recommendation_model")
        elapsed = time.perf_counter() - start
        assert len(ids) == len(rows)
        del ids
        return len(rows) / elapsed

    def floor_round() -> float:
        start = time.perf_counter()
        for row in rows:
            dumps({"model_name": "recommendation_model", **row}).encode()
        return len(rows) / (time.perf_counter() - start)

    sdk, floor = _alternate(sdk_round, floor_round, args.rounds)
    # Memory still held once the call returned (the ids it returns included).
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = client.log_model_calls(rows, model_name="recommendation_model")
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del result
    # Full (generation 2) collections the call triggers.
    full = [0]

    def count_full(phase: str, info: Dict[str, int]) -> None:
        if phase == "start" and info.get("generation") == 2:
            full[0] += 1

    gc.callbacks.append(count_full)
    try:
        client.log_model_calls(rows, model_name="recommendation_model")
    finally:
        gc.callbacks.remove(count_full)
    client.close()
    COSTS["bulk rows"] = (floor / sdk, 1.0)
    return [
        (
            f"log_model_calls bulk, {len(rows) // 1000}k rows, no-op transport",
            f"{sdk / 1000:.1f}k rows/s",
            f"json.dumps per row {floor / 1000:.1f}k rows/s",
            f"{sdk / floor:.2f}",
        ),
        (
            "  memory held per row after the call / full GCs",
            f"{held / len(rows):.0f} B / {full[0]}",
            "",
            "",
        ),
    ]


def spool(args: argparse.Namespace) -> List[Row]:
    """Offline mode (every event appended to the spool) vs json.dumps."""
    with tempfile.TemporaryDirectory() as folder:
        client = _quiet_client(spool_dir=folder, bootstrap_servers=None)
        sdk = _sketch_call(client)
        dumps = json.dumps

        def floor() -> None:
            dumps(SKETCH).encode()

        _timed_calls(sdk, 2000, [])
        _timed_calls(floor, 2000, [])
        sdk_ns: List[int] = []
        floor_ns: List[int] = []
        sustained: List[float] = []
        for _ in range(args.rounds):
            _timed_calls(floor, args.calls, floor_ns)
            start = time.perf_counter()
            _timed_calls(sdk, args.calls, sdk_ns)
            sustained.append(args.calls / (time.perf_counter() - start))
        client.close()
    s_med, _ = _median_p99(sdk_ns)
    f_med, _ = _median_p99(floor_ns)
    COSTS["offline spool call"] = (s_med / f_med, 3.5)
    return [
        (
            "offline spool, per call / sustained",
            f"{s_med:.1f} µs / {statistics.median(sustained) / 1000:.0f}k events/s",
            f"json.dumps {f_med:.1f} µs",
            f"{s_med / f_med:.2f}x",
        )
    ]


# The whole start-up cost: the import, the first client and one call (a
# no-op transport, so no broker and no spool).
FIRST_CALL = (
    "from vdt_ai import VDTClient; from vdt_ai.transport import Transport\n"
    "class NoOp(Transport):\n"
    "    def send(self, record, counters): return True\n"
    "VDTClient(transport=NoOp()).log_model_call('m', {'x': 1}, 0.5, 1.0)"
)


def _import_us(statement: str) -> int:
    """Microseconds that ``statement`` takes in a fresh interpreter: all it
    imports, the names a package loads on first use included. Bytecode is
    cached as an installed package's is (PYTHONDONTWRITEBYTECODE would make
    every run compile vdt_ai's sources, and not pydantic's)."""
    code = (
        "import time; start = time.perf_counter_ns()\n"
        f"{statement}\nprint(time.perf_counter_ns() - start)"
    )
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return int(done.stdout.split()[-1]) // 1000


def import_time(args: argparse.Namespace) -> List[Row]:
    """import vdt_ai, the client, and the first client with one call vs import
    pydantic, fresh interpreters, alternating (after one run of each that
    writes the bytecode)."""
    statements = {
        "`import vdt_ai`": "import vdt_ai",
        "`from vdt_ai import VDTClient`": "from vdt_ai import VDTClient",
        "import, first `VDTClient()` and one call": FIRST_CALL,
    }
    for statement in statements.values():
        _import_us(statement)
    ours: Dict[str, List[int]] = {label: [] for label in statements}
    theirs: List[int] = []
    for _ in range(args.import_rounds):
        theirs.append(_import_us("import pydantic"))
        for label, statement in statements.items():
            ours[label].append(_import_us(statement))
    floor = statistics.median(theirs) / 1000
    rows: List[Row] = []
    for label in statements:
        sdk = statistics.median(ours[label]) / 1000
        if label == "`import vdt_ai`":
            COSTS["import vdt_ai"] = (sdk / floor, 1.6)
        rows.append(
            (
                f"{label} (fresh interpreter)",
                f"{sdk:.1f} ms",
                f"import pydantic {floor:.0f} ms",
                f"{sdk / floor:.2f}x",
            )
        )
    return rows


def print_table(rows: List[Row], title: Optional[str] = None) -> None:
    headers = ("path", "now", "floor in the same run", "ratio")
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(4)]
    if title:
        print(title)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls",
        type=int,
        default=8_000,
        help="calls per round (below the 10,000-record producer queue: a burst past"
        " it spools, in the SDK, and raises BufferError in the raw floor)",
    )
    parser.add_argument("--events", type=int, default=100_000, help="per round")
    parser.add_argument("--rows", type=int, default=100_000, help="bulk rows")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--import-rounds", type=int, default=15)
    parser.add_argument("--bootstrap-servers", default=BOOTSTRAP)
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument(
        "--only", choices=("caller", "throughput", "bulk", "spool", "import")
    )
    parser.add_argument(
        "--chart", metavar="PNG", help="also draw the ratios (needs matplotlib)"
    )
    parser.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="leave out the peers' caller cost (bench/peers.py)",
    )
    parser.add_argument("--peer-calls", type=int, default=2_000, help="per round")
    args = parser.parse_args()
    parts: List[Tuple[str, Callable[[argparse.Namespace], List[Row]]]] = [
        ("caller", caller_cost),
        ("throughput", throughput),
        ("bulk", bulk),
        ("spool", spool),
        ("import", import_time),
    ]
    rows: List[Row] = []
    for name, part in parts:
        if args.only and name != args.only:
            continue
        if args.skip_kafka and name in ("caller", "throughput"):
            continue
        rows.extend(part(args))
    title = f"Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    print_table(rows, title)
    if args.chart:
        from chart import draw

        draw(COSTS, args.chart, title)
        print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
