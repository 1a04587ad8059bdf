"""Child programs for the fault tests: each runs in its own interpreter, so
exit, signals, fork and spawn are the real thing.

Run as ``python -m tests.faults._scripts SCENARIO JSON_ARGS``; a scenario
prints one JSON line (the ids it logged, the stats) as its last output.
"""

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List

from vdt_ai import VDTClient


def _client(args: Dict[str, Any], **extra: Any) -> VDTClient:
    settings = dict(
        bootstrap_servers=args["bootstrap"],
        spool_dir=args["spool"],
        topic_prefix=args["prefix"],
        shutdown_timeout=args.get("shutdown_timeout", 5.0),
        delivery_timeout=args.get("delivery_timeout", 120.0),
    )
    settings.update(extra)
    return VDTClient(**settings)


def _log_some(client: VDTClient, n: int, tag: str = "x") -> List[str]:
    ids = []
    for i in range(n):
        event_id = client.log_metric(f"fault.{tag}", float(i), step=i)
        if event_id is not None:
            ids.append(str(event_id))
    return ids


def _emit(payload: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def dropped(args: Dict[str, Any]) -> None:
    """A client made in a function, used and dropped without close()."""

    def work() -> List[str]:
        return _log_some(_client(args), args["n"])

    _emit({"ids": work()})


def _child(args: Dict[str, Any], queue: Any) -> None:
    queue.put(_log_some(_client(args), args["n"], tag=str(os.getpid())))


def children(args: Dict[str, Any]) -> None:
    """multiprocessing children (fork or spawn) that never call close()."""
    context = multiprocessing.get_context(args["method"])
    queue = context.Queue()
    processes = [
        context.Process(target=_child, args=(args, queue)) for _ in range(args["procs"])
    ]
    for process in processes:
        process.start()
    ids: List[str] = []
    for _ in processes:
        ids.extend(queue.get(timeout=120))
    for process in processes:
        process.join(120)
    _emit({"ids": ids, "exitcodes": [p.exitcode for p in processes]})


def sigterm_during(args: Dict[str, Any]) -> None:
    """SIGTERM arrives while close() (or the exit flush) runs."""
    client = _client(args)
    ids = _log_some(client, args["n"])
    _emit({"ids": ids})

    def term_later() -> None:
        time.sleep(args["after"])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=term_later, daemon=True).start()
    if args["during"] == "close":
        client.close()
    # else: fall off the end; the exit flush runs (the client is still alive)


def on_error_closes(args: Dict[str, Any]) -> None:
    """An on_error callback that calls flush() and close()."""
    holder: Dict[str, VDTClient] = {}
    calls: List[str] = []

    def on_error(error: Exception) -> None:
        calls.append(type(error).__name__)
        holder["client"].flush(0.1)
        holder["client"].close(1)

    holder["client"] = client = _client(args, on_error=on_error)
    ids = _log_some(client, args["n"])
    deadline = time.monotonic() + 20
    while not client.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    _emit({"ids": ids, "calls": calls, "closed": client.closed})


def close_deadline(args: Dict[str, Any]) -> None:
    """close(timeout) with a big queue and a broker that never answers."""
    client = _client(args, max_buffer_kbytes=256 * 1024)
    ids = _log_some(client, args["n"])
    start = time.monotonic()
    client.close(args["timeout"])
    _emit({"ids": ids, "close_seconds": time.monotonic() - start})


def sigterm_two_clients(args: Dict[str, Any]) -> None:
    """SIGTERM during one client's close() while another client still lives."""
    a = _client(args)
    b = _client(args)
    ids = _log_some(a, args["n"], "a") + _log_some(b, args["n"], "b")
    _emit({"ids": ids})

    def term_later() -> None:
        time.sleep(args["after"])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=term_later, daemon=True).start()
    a.close()
    time.sleep(30)  # the SIGTERM ends the process before this does


def thread_client_first(args: Dict[str, Any]) -> None:
    """The first client is built on a worker thread, a later one on main."""
    worker = threading.Thread(target=lambda: _client(args).close(0))
    worker.start()
    worker.join()
    client = _client(args)
    ids = _log_some(client, args["n"])
    _emit({"ids": ids, "handler": repr(signal.getsignal(signal.SIGTERM))})
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)


SCENARIOS = {
    "sigterm_two_clients": sigterm_two_clients,
    "thread_client_first": thread_client_first,
    "dropped": dropped,
    "children": children,
    "sigterm_during": sigterm_during,
    "on_error_closes": on_error_closes,
    "close_deadline": close_deadline,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](json.loads(sys.argv[2]))
